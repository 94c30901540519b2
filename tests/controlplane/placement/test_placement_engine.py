from collections import Counter

from placement_fleet import catalog_snapshot, policies, pool, snapshot, workload

from controlplane.placement import FleetSnapshot, Placer, place, place_one, placed_cost
from controlplane.policy import PolicySet
from providers.catalog import default_catalog
from providers.model import HealthStatus, Quota

H100_AWS = pool("aws", "us-east-1", "us-east-1a", "p5.48xlarge")
H100_GCP = pool("gcp", "europe-west1", "europe-west1-b", "a3-megagpu-8g")


def test_cheapest_pool_wins_and_explanation_lists_runner_up_and_rejections():
    snap = snapshot([H100_AWS, H100_GCP, pool("gcp", "us-central1", "us-central1-a", "g2-standard-48")])
    d = place_one(workload("{gpus: {model: H100, count: 16, perNode: 8}}"), snap, PolicySet.default())
    assert d.placed
    [a] = d.assignments
    prices = {"aws": 55.04, "gcp": None}
    assert a.nodes == 2 and a.gpus == 16
    assert a.provider in prices
    loser = "aws/us-east-1" if a.provider == "gcp" else "gcp/europe-west1"
    assert d.runners_up and f"{d.runners_up[0]['provider']}/{d.runners_up[0]['region']}" == loser
    assert d.rejections[loser].startswith("outscored")
    assert d.rejections["gcp/us-central1"].startswith("gpu: g2-standard-48 has L4")
    assert d.runners_up[0]["pricePerHour"] > a.price_per_hour


def test_residency_rejection_message():
    snap = snapshot([H100_AWS, H100_GCP])
    ps = policies("{dataClasses: {eu-personal: {geo: [eu]}}}")
    d = place_one(workload("{gpus: {model: H100, count: 8}}", labels="{data-class: eu-personal}"), snap, ps)
    assert d.assignments[0].region == "europe-west1"
    assert d.rejections["aws/us-east-1"] == \
        "residency: data-class eu-personal allows geo eu, region us-east-1 is us"


def test_nvlink_gang_takes_whole_racks_and_burns_commitment_first():
    snap = snapshot([
        pool("coreweave", "US-EAST-04", "US-EAST-04A", "gb200-4x", nodes=36),
        pool("coreweave", "US-EAST-04", "US-EAST-04B", "gb200-4x", nodes=30),   # one whole rack + 12 loose
        pool("aws", "us-east-1", "us-east-1a", "p6e-gb200.36xlarge", "reserved", nodes=36, reservation="cb-1"),
    ])
    ps = policies("{commitments: [{name: cw, provider: coreweave, gpuModel: GB200, gpus: 144,"
                  " start: 2026-01-01, end: 2028-01-01}]}")
    w = workload("{gpus: {model: GB200, count: 144, perNode: 4}, topology: {domain: nvlink, domainSize: 72}}")
    r = place([w], snap, ps)
    d = r.decisions[0]
    assert d.placed and {a.provider for a in d.assignments} == {"coreweave"}
    assert sum(a.nodes for a in d.assignments) == 36
    assert all(a.nodes % 18 == 0 for a in d.assignments)
    assert placed_cost(r) == 0.0                               # take-or-pay: no marginal cost
    assert r.summary()["commitments"]["cw"]["used"] == 144
    # a second gang no longer has the commitment: it pays, and only one whole rack is left at coreweave
    w2 = workload("{gpus: {model: GB200, count: 144, perNode: 4}, topology: {domain: nvlink, domainSize: 72}}",
                  name="w2")
    r2 = place([w, w2], snap, ps)
    d2 = r2.decisions[1]
    assert d2.placed and d2.assignments[0].provider == "aws" and d2.price_per_hour > 0


def test_cluster_topology_needs_one_pool():
    snap = snapshot([pool("aws", "us-east-1", "us-east-1a", "p5.48xlarge", nodes=3),
                     pool("aws", "us-east-1", "us-east-1b", "p5.48xlarge", nodes=3)])
    w = workload("{gpus: {model: H100, count: 32, perNode: 8}, topology: {domain: cluster}}")
    d = place_one(w, snap, PolicySet.default())
    assert not d.placed and d.unplaced_kind == "no-capacity"
    assert "capacity: us-east-1a p5.48xlarge has 3 nodes free, gang needs 4 in one pool" in d.reasons[1]
    w_any = workload("{gpus: {model: H100, count: 32, perNode: 8}, topology: {domain: any}}")
    assert sum(a.nodes for a in place_one(w_any, snap, PolicySet.default()).assignments) == 4


def test_quota_distinguished_from_capacity():
    q = Quota("aws", "us-east-1", "L-417A185B", "vcpus", limit=288, used=192)
    snap = snapshot([H100_AWS], quotas=(q,))
    d = place_one(workload("{gpus: {model: H100, count: 16, perNode: 8}}"), snap, PolicySet.default())
    assert not d.placed and d.unplaced_kind == "no-quota"
    assert "quota: L-417A185B headroom 96 vcpus < 384" in d.reasons[1]


def test_nothing_matches_and_down_provider():
    snap = snapshot([H100_AWS], health={"aws": HealthStatus.DOWN})
    d = place_one(workload("{gpus: {model: H100, count: 8}}"), snap, PolicySet.default())
    assert not d.placed and d.unplaced_kind == "nothing-matches"
    assert d.rejections["aws/us-east-1"] == "health: aws/us-east-1 is down"


def test_unplaced_reasons_lead_with_the_rule_that_shut_out_what_the_workload_asked_for():
    # Every other provider fails the workload's own region filter; what matters is why azure could not.
    w = workload("{gpus: {model: H100, count: 8}, location: {regions: ['azure:*']}}")
    d = place_one(w, catalog_snapshot(), policies("{providers: {allow: [aws, gcp, coreweave]}}"))
    assert not d.placed and d.unplaced_kind == "nothing-matches"
    assert d.reasons[1].startswith("azure/") and "azure not in allowed" in d.reasons[1]
    assert len({r.split("/", 1)[0] for r in d.reasons[1:]}) == len(d.reasons) - 1   # one per provider


def test_provider_share_cap_counts_existing():
    snap = snapshot([H100_AWS, H100_GCP])
    ps = policies("{caps: {providerShare: {max: 0.5, minFleetGpus: 16}}}")
    w = workload("{gpus: {model: H100, count: 16, perNode: 8}}")
    first = place_one(w, snap, ps)
    second = place_one(workload("{gpus: {model: H100, count: 16, perNode: 8}}", name="w2"), snap, ps,
                       existing=first.assignments)
    assert second.placed and second.assignments[0].provider != first.assignments[0].provider
    # with only the first provider available, the cap refuses and says so
    only = snapshot([pool(first.assignments[0].provider, first.assignments[0].region, first.assignments[0].zone,
                          first.assignments[0].instance_type)])
    d = place_one(workload("{gpus: {model: H100, count: 16, perNode: 8}}", name="w3"), only, ps,
                  existing=first.assignments)
    assert not d.placed and d.unplaced_kind == "cap" and "would hold 100% > 50% of 32 GPUs" in d.reasons[1]
    # until the fleet passes minFleetGpus the cap does not apply (issue 17, defect 2)
    young = policies("{caps: {providerShare: {max: 0.5, minFleetGpus: 64}}}")
    assert place_one(workload("{gpus: {model: H100, count: 16, perNode: 8}}", name="w3"), only, young,
                     existing=first.assignments).placed


def test_team_budget():
    snap = snapshot([H100_AWS])
    ps = policies("{caps: {teams: {t: {gpus: 16}}}}")
    r = place([workload("{gpus: {model: H100, count: 16}}", name="a"),
               workload("{gpus: {model: H100, count: 8}}", name="b")], snap, ps)
    assert [d.placed for d in r.decisions] == [True, False]
    assert r.decisions[1].unplaced_kind == "budget"


def test_spot_fallback_to_on_demand():
    snap = snapshot([pool("aws", "ap-northeast-1", "ap-northeast-1d", "p5.48xlarge", "spot", nodes=1),
                     pool("aws", "ap-northeast-1", "ap-northeast-1d", "p5.48xlarge", "on-demand", nodes=4)])
    placer = Placer(snap, PolicySet.default())
    spec = "{gpus: {model: H100, count: 8}, capacityType: [spot, on-demand]}"
    a = placer.place_one(workload(spec, name="a"))
    b = placer.place_one(workload(spec, name="b"))
    assert str(a.assignments[0].capacity_type) == "spot"
    assert str(b.assignments[0].capacity_type) == "on-demand"


def test_inference_replicas_spread_over_providers():
    snap = snapshot([H100_AWS, H100_GCP, pool("coreweave", "US-EAST-04", "US-EAST-04A", "gd-8xh100ib-i128")])
    ps = policies("{preferences: {spread: 1.0}}")
    w = workload("{kind: inference, replicas: 3, gpus: {model: H100, count: 8}}")
    d = place_one(w, snap, ps)
    assert sorted(a.provider for a in d.assignments) == ["aws", "coreweave", "gcp"]
    assert sorted(a.replica_group for a in d.assignments) == [0, 1, 2]
    packed = place_one(w, snap, policies("{preferences: {spread: 0}}"))
    assert len({a.provider for a in packed.assignments}) == 1


def test_priority_wins_contention():
    snap = snapshot([pool("aws", "us-east-1", "us-east-1a", "p5.48xlarge", nodes=2)])
    low = workload("{gpus: {model: H100, count: 16}, priority: 1}", name="low")
    high = workload("{gpus: {model: H100, count: 16}, priority: 9}", name="high")
    r = place([low, high], snap, PolicySet.default())
    assert [d.workload for d in r.decisions] == ["low", "high"]       # input order kept
    assert [d.placed for d in r.decisions] == [False, True]


def test_cel_rule_filters_and_is_explained():
    snap = snapshot([H100_AWS, H100_GCP])
    ps = policies("{rules: [{name: no-aws, expr: 'candidate.provider != \"aws\"', message: aws is out}]}")
    d = place_one(workload("{gpus: {model: H100, count: 8}}"), snap, ps)
    assert d.assignments[0].provider == "gcp"
    assert d.rejections["aws/us-east-1"] == "rule no-aws: aws is out"


def test_with_usage_subtracts_capacity():
    snap = catalog_snapshot()
    d = place_one(workload("{gpus: {model: H100, count: 16, perNode: 8}}"), snap, PolicySet.default())
    left = snap.with_usage(d.assignments)
    a = d.assignments[0]
    before = {(p.zone, p.instance_type, p.capacity_type): p.available_nodes for p in snap.pools}
    after = {(p.zone, p.instance_type, p.capacity_type): p.available_nodes for p in left.pools}
    k = (a.zone, a.instance_type, a.capacity_type)
    assert after[k] == before[k] - a.nodes
    assert snap.total_gpus() - left.total_gpus() == a.gpus


def test_catalog_snapshot_scales():
    small = FleetSnapshot.from_catalog(default_catalog())
    big = FleetSnapshot.from_catalog(default_catalog(), scale=4)
    assert big.total_gpus() == 4 * small.total_gpus()


def test_a_training_gang_never_goes_where_its_provider_cannot_gang_it():
    """Issue 13, item 7: a 2 x H100 training job was placed on Standard_NC40ads_H100_v5 (1 GPU, Ethernet),
    which the Azure component then refused ('has no InfiniBand'). One rule (providers.catalog.fabric)
    now serves both: placement chooses the InfiniBand size, or explains why not."""
    nc = pool("azure", "eastus", "eastus-1", "Standard_NC40ads_H100_v5", nodes=64)
    nd = pool("azure", "eastus", "eastus-2", "Standard_ND96isr_H100_v5", nodes=4)
    gang = workload("{kind: training, gpus: {model: H100, count: 2}}")
    d = place_one(gang, snapshot([nc, nd]), PolicySet.default())
    assert d.placed and {a.instance_type for a in d.assignments} == {"Standard_ND96isr_H100_v5"}
    alone = place_one(gang, snapshot([nc]), PolicySet.default())
    assert not alone.placed and "fabric: Standard_NC40ads_H100_v5 has no InfiniBand" in " ".join(alone.reasons) + \
        " ".join(alone.rejections.values())
    # one node needs no fabric, and inference is no gang: both may use the NC size
    for spec in ("{kind: training, gpus: {model: H100, count: 1}}", "{kind: inference, gpus: {model: H100, count: 2}}"):
        d = place_one(workload(spec), snapshot([nc]), PolicySet.default())
        assert d.placed and d.assignments[0].instance_type == "Standard_NC40ads_H100_v5", d.reasons


def test_undefined_data_class_fails_closed():
    """Issue 17, defect 4: a stored workload whose data class no policy defines is placed nowhere."""
    snap = snapshot([H100_AWS, H100_GCP])
    ps = policies("{dataClasses: {eu-personal: {geo: [eu]}}}")
    d = place_one(workload("{gpus: {model: H100, count: 8}}", labels="{data-class: eu-personel}"), snap, ps)
    assert not d.placed
    assert d.rejections["gcp/europe-west1"] == \
        "residency: data-class 'eu-personel' is not defined by the policies in force"


def _ec2_quotas(od_vcpus: float, spot_vcpus: float) -> tuple[Quota, Quota]:
    return (Quota("aws", "us-east-1", "L-417A185B", "vcpus", od_vcpus, 0.0, ("p5.48xlarge",), ("on-demand",)),
            Quota("aws", "us-east-1", "L-7212CCBC", "vcpus", spot_vcpus, 0.0, ("p5.48xlarge",), ("spot",)))


def test_spot_and_on_demand_quotas_are_metered_apart():
    """Issue 17, defect 1: spot work was refused against the on-demand limit (EC2 meters them apart)."""
    snap = snapshot([H100_AWS, pool("aws", "us-east-1", "us-east-1a", "p5.48xlarge", "spot")],
                    quotas=_ec2_quotas(0.0, 192.0))
    spot = workload("{gpus: {model: H100, count: 8}, capacityType: [spot]}", name="s")
    d = place_one(spot, snap, PolicySet.default())
    assert d.placed and d.assignments[0].capacity_type == "spot"
    od = workload("{gpus: {model: H100, count: 8}, capacityType: [on-demand]}", name="o")
    d2 = place_one(od, snap, PolicySet.default())
    assert not d2.placed and d2.unplaced_kind == "no-quota"
    assert "L-417A185B" in " ".join(d2.reasons + list(d2.rejections.values()))


def test_on_demand_usage_does_not_eat_spot_headroom():
    snap = snapshot([H100_AWS, pool("aws", "us-east-1", "us-east-1a", "p5.48xlarge", "spot")],
                    quotas=_ec2_quotas(192.0, 192.0))
    od = workload("{gpus: {model: H100, count: 8}, capacityType: [on-demand]}", name="o")
    spot = workload("{gpus: {model: H100, count: 8}, capacityType: [spot]}", name="s")
    r = place([od, spot], snap, PolicySet.default())
    assert [d.placed for d in r.decisions] == [True, True]
    used = snap.with_usage(a for d in r.decisions for a in d.assignments)
    assert [q.used for q in used.quotas] == [192.0, 192.0]


CAP = "{caps: {providerShare: {max: 0.6, minFleetGpus: 1024}}}"
GANG_640 = "{gpus: {model: H100, count: 640, perNode: 8}%s}"


def test_share_cap_does_not_bite_before_the_fleet_passes_min_fleet_gpus():
    """Issue 17, defect 2: on an empty fleet a 640-GPU gang was refused ('aws would hold 62% of 1024')."""
    snap = snapshot([pool("aws", "us-east-1", "us-east-1a", "p5.48xlarge", nodes=200),
                     pool("gcp", "europe-west1", "europe-west1-b", "a3-megagpu-8g", nodes=10)])
    first, second = workload(GANG_640 % "", name="a"), workload(GANG_640 % "", name="b")
    r = place([first, second], snap, policies(CAP), improve=False)
    a, b = r.decisions
    assert a.placed and a.gpus == 640 and a.assignments[0].provider == "aws"
    # the second would take the fleet past 1024 GPUs with aws at 100%: now the cap applies
    assert not b.placed and b.unplaced_kind == "cap"
    assert b.rejections["aws/us-east-1"].startswith("cap: aws would hold 100% > 60% of 1280 GPUs")


def test_a_workload_only_one_provider_serves_is_exempt_unless_the_policy_caps_it():
    """B300 is sold by AWS alone: the cap could only leave it pending, so it is exempt by default (its GPUs
    still count). H100, sold by four providers, is capped even when only AWS is in the snapshot."""
    snap = snapshot([pool("aws", "us-west-2", "us-west-2b", "p6-b300.48xlarge", nodes=200),
                     pool("aws", "us-east-1", "us-east-1a", "p5.48xlarge", nodes=200)])
    b300 = "{gpus: {model: B300, count: 640, perNode: 8}}"
    ws = [workload(b300, name="a"), workload(b300, name="b")]
    assert all(d.placed for d in place(ws, snap, policies(CAP)).decisions)
    h100 = place([*ws, workload(GANG_640 % "", name="c")], snap, policies(CAP)).decisions[2]
    assert not h100.placed and h100.unplaced_kind == "cap"
    capped = policies("{caps: {providerShare: {max: 0.6, minFleetGpus: 1024, soleProvider: capped}}}")
    assert [d.placed for d in place(ws, snap, capped).decisions] == [True, False]


def test_pinning_to_one_provider_is_not_a_way_around_the_cap():
    snap = snapshot([pool("aws", "us-east-1", "us-east-1a", "p5.48xlarge", nodes=200),
                     pool("gcp", "europe-west1", "europe-west1-b", "a3-megagpu-8g", nodes=10)])
    pinned = ", location: {regions: ['aws:*']}"
    ws = [workload(GANG_640 % pinned, name="a"), workload(GANG_640 % pinned, name="b")]
    assert [d.placed for d in place(ws, snap, policies(CAP)).decisions] == [True, False]


def test_a_reservation_at_full_price_earns_no_bonus():
    """Issue 17, defect 3: with no commitment in force a GB200 rack went to an AWS Capacity Block at $982.80/h
    over CoreWeave on-demand at $756/h. Committed capacity wins through its marginal cost only."""
    snap = snapshot([pool("aws", "us-east-1", "us-east-1a", "p6e-gb200.36xlarge", "reserved", nodes=36,
                          reservation="cb-1"),
                     pool("coreweave", "US-EAST-04", "US-EAST-04A", "gb200-4x", nodes=36)])
    rack = workload("{gpus: {model: GB200, count: 72, perNode: 4}, topology: {domain: nvlink, domainSize: 72}}")
    d = place_one(rack, snap, PolicySet.default())
    assert d.placed and d.assignments[0].provider == "coreweave" and round(d.price_per_hour, 2) == 756.0
    # the same capacity block paid for under a take-or-pay contract costs nothing more: it wins on price
    paid = policies("{commitments: [{name: cb, provider: aws, gpuModel: GB200, gpus: 72, start: 2026-01-01,"
                    " end: 2027-01-01, capacityTypes: [reserved]}]}")
    d2 = place_one(rack, snap, paid)
    assert d2.assignments[0].provider == "aws" and d2.price_per_hour == 0.0
    assert "committed 1.00" in d2.reasons[0]


def test_unplaced_explanation_leads_with_the_deciding_rule_per_provider():
    """Issue 17, defect 5: shape mismatches came first and the workload's own location filter stayed buried."""
    snap = catalog_snapshot()
    w = workload("{gpus: {model: H100, count: 8}, location: {regions: ['gcp:us-central1']}, capacityType: [spot],"
                 " maxPricePerGpuHour: 0.5}")
    d = place_one(w, snap, PolicySet.default())
    assert not d.placed and d.unplaced_kind == "nothing-matches"
    head, *lines = d.reasons
    assert head.startswith("nothing matches")
    by_provider = {line.split("/", 1)[0]: line for line in lines}
    assert set(by_provider) == {prov for prov, _ in snap.catalog.regions}     # one line per provider
    assert by_provider["gcp"].startswith("gcp/us-central1: price:")        # passed its filters, then price
    assert lines[0] == by_provider["gcp"]                                   # the furthest leads
    assert "location:" in by_provider["aws"] and "more aws regions by the same rule" in by_provider["aws"]


def test_providers_unreachable_is_said_when_that_is_the_cause():
    snap = snapshot([H100_AWS, H100_GCP], health={"gcp": HealthStatus.DOWN})
    w = workload("{gpus: {model: H100, count: 8}, location: {regions: ['gcp:*']}}")
    d = place_one(w, snap, PolicySet.default())
    assert d.reasons[0] == "providers unreachable: gcp could serve it but is down or blocked after failures"
    empty = place_one(w, snapshot([]), PolicySet.default())
    assert empty.reasons[0].startswith("providers unreachable: no provider reported capacity")


def test_an_exact_tie_is_called_a_tie():
    twin = pool("aws", "us-east-1", "us-east-1b", "p5.48xlarge")
    other = pool("aws", "us-west-2", "us-west-2a", "p5.48xlarge", price=H100_AWS.price_per_hour)
    snap = snapshot([twin, other])
    d = place_one(workload("{gpus: {model: H100, count: 8}}"), snap, PolicySet.default())
    loser = [v for k, v in d.rejections.items() if k != f"aws/{d.assignments[0].region}" and "p5" not in v]
    assert any(v.startswith("tied: ") and "the tie went to" in v for v in d.rejections.values()), d.rejections
    assert not any(" < winner " in v and v.split(" < winner ")[0].split()[-1] == v.split(" < winner ")[1].split()[0]
                   for v in d.rejections.values()), loser


def test_rejections_group_by_rule():
    from controlplane.placement.explain import group_rejections
    rej = {"aws/us-east-1": "location: aws:us-east-1 not in workload's regions [gcp:*]",
           "aws/us-west-2": "location: aws:us-west-2 not in workload's regions [gcp:*]",
           "gcp/us-central1": "price: a3 $9.80/GPU-h > workload max $1.00"}
    assert group_rejections(rej) == [("location", ["aws/us-east-1", "aws/us-west-2"], rej["aws/us-east-1"]),
                                     ("price", ["gcp/us-central1"], rej["gcp/us-central1"])]


def test_surplus_gpus_are_stated_with_their_cost_and_a_policy_may_forbid_them():
    """Issue 17, defect 6: 1 x A100 on a whole 8-GPU node with no note."""
    snap = snapshot([pool("aws", "us-east-1", "us-east-1a", "p4d.24xlarge")])
    w = workload("{gpus: {model: A100, count: 1}}")
    d = place_one(w, snap, PolicySet.default())
    assert d.placed and d.gpus == 8 and d.surplus_gpus == 7
    assert abs(d.surplus_cost_per_hour - d.price_per_hour * 7 / 8) < 1e-9
    j = d.to_json()
    assert j["surplusGpus"] == 7 and j["surplusCostPerHour"] == round(d.price_per_hour * 7 / 8, 4)
    assert d.reasons[-1].startswith("surplus: 7 GPU(s) beyond the 1 asked, $")
    exact = place_one(workload("{gpus: {model: A100, count: 8}}"), snap, PolicySet.default()).to_json()
    assert "surplusGpus" not in exact
    forbid = place_one(w, snap, policies("{surplusGpus: forbid}"))
    assert not forbid.placed and forbid.rejections["aws/us-east-1"].startswith("surplus: p4d.24xlarge has 8 GPUs")


def test_an_exact_fit_wins_over_a_whole_node():
    snap = snapshot([pool("gcp", "us-central1", "us-central1-a", "a3-highgpu-1g"), H100_AWS])
    d = place_one(workload("{gpus: {model: H100, count: 1}}"), snap, PolicySet.default())
    assert d.placed and d.gpus == 1 and d.surplus_gpus == 0


def test_replicas_spread_evenly_by_max_skew():
    """Issue 17, defect 7: spread told only 'new provider' from 'used', so 6 of 8 replicas landed on one."""
    w = workload("{kind: inference, replicas: 8, gpus: {model: H100, count: 8}}")
    snap = catalog_snapshot()
    d = place_one(w, snap, policies("{preferences: {spread: 0.5}, topologySpread: {maxSkew: 1}}"))
    per = Counter(dict({(a.replica_group, a.provider) for a in d.assignments}).values())
    h100_sellers = {it.provider for it in snap.catalog.instance_types.values() if it.gpu_model == "H100"}
    assert sum(per.values()) == 8 and set(per) == h100_sellers
    assert max(per.values()) - min(per.values()) <= 1, per
    # a provider that cannot take a replica does not hold the others back
    aws_only_two = snapshot([pool("aws", "us-east-1", "us-east-1a", "p5.48xlarge", nodes=2), H100_GCP])
    d = place_one(w, aws_only_two, policies("{topologySpread: {maxSkew: 1}}"))
    assert d.placed and Counter(dict({(a.replica_group, a.provider) for a in d.assignments}).values()) == \
        {"aws": 2, "gcp": 6}


def test_to_json_without_keeping_the_explanation_gives_the_same_text_again():
    """A streaming writer asks for each decision's JSON once and keeps nothing (plan_cmds.write_json);
    the explanation is rebuilt from the same captured data when read again, word for word."""
    ws = [workload("{gpus: {model: H100, count: 8, perNode: 8}}", name="a"),
          workload("{gpus: {model: H100, count: 100000}}", name="b")]
    r = place(ws, FleetSnapshot.from_catalog(default_catalog()), PolicySet.default())
    for d in r.decisions:
        once = d.to_json(keep=False)
        assert d._explanation is None and once["rejections"]
        assert d.to_json() == once and d._explanation is not None
