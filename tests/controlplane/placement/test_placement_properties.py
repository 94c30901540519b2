"""Properties over random fleets, policies and workloads: no placement breaks a hard constraint, a cap, a
topology requirement or a capacity limit; gangs are whole or absent; the same input gives the same output."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.model import parse_manifests
from controlplane.placement import FleetSnapshot, Placer, place
from controlplane.placement.batch import batch_order
from controlplane.policy import merge, parse_policy_text
from providers.catalog import default_catalog
from providers.model import HealthStatus, Quota

CAT = default_catalog()
MODELS = ["H100", "H200", "GB200", "B200", "L4"]
# a manageable slice of the catalog: every offering of these models in a few regions per provider
REGIONS = {"aws": ["us-east-1", "eu-north-1", "us-west-2"], "gcp": ["us-central1", "europe-west4", "europe-west1"],
           "azure": ["eastus", "westeurope"], "coreweave": ["US-EAST-04", "EU-SOUTH-03", "RNO2"]}
BASE = FleetSnapshot.from_catalog(CAT, taken_at=datetime(2026, 10, 1, tzinfo=UTC))
POOLS = [p for p in BASE.pools if p.region in REGIONS.get(p.provider, [])
         and CAT.instance_type(p.provider, p.instance_type).gpu_model in MODELS]


@st.composite
def fleets(draw):
    pools = []
    for p in POOLS:
        if draw(st.booleans()):
            it = CAT.instance_type(p.provider, p.instance_type)
            n = draw(st.integers(0, 40)) // it.nodes_per_domain * it.nodes_per_domain if it.nodes_per_domain > 1 \
                else draw(st.integers(0, 12))
            pools.append(dataclasses.replace(p, available_nodes=n))
    health = {prov: draw(st.sampled_from(list(HealthStatus))) for prov in sorted(REGIONS) if draw(st.booleans())}
    quotas = ()
    if draw(st.booleans()):
        quotas = (Quota("aws", "us-east-1", "L-417A185B", "vcpus", limit=draw(st.integers(0, 3000)), used=0),)
    return dataclasses.replace(BASE, pools=tuple(pools), health=health, quotas=quotas)


@st.composite
def policy_sets(draw):
    parts = ["dataClasses: {eu-personal: {geo: [eu]}}"]
    if draw(st.booleans()):
        parts.append(f"providers: {{deny: [{draw(st.sampled_from(sorted(REGIONS)))}]}}")
    if draw(st.booleans()):
        parts.append(f"caps: {{providerShare: {{max: {draw(st.sampled_from([0.3, 0.5, 0.8]))}, minFleetGpus: 64}}}}")
    if draw(st.booleans()):
        parts.append(f"maxPricePerGpuHour: {draw(st.sampled_from([3, 6, 12]))}")
    if draw(st.booleans()):
        parts.append("preferences: {spread: 1.0}")
    if draw(st.booleans()):
        parts.append("commitments: [{name: c, provider: coreweave, gpuModel: GB200, gpus: 72,"
                     " start: 2026-01-01, end: 2028-01-01}]")
    return merge(parse_policy_text("metadata: {name: p}\nspec: {" + ", ".join(parts) + "}\n", "p.yaml"))


SHAPES = [  # (model, count, perNode, topology)
    ("H100", 8, 8, "any"), ("H100", 1, None, "any"), ("H100", 32, 8, "cluster"), ("H200", 16, 8, "zone"),
    ("GB200", 72, 4, "nvlink"), ("GB200", 144, 4, "nvlink"), ("B200", 24, 8, "any"), ("L4", 4, None, "any"),
    ("H100", 16, 8, "nvlink"),
]


@st.composite
def workloads(draw):
    out = []
    for i in range(draw(st.integers(1, 6))):
        model, count, per, topo = draw(st.sampled_from(SHAPES))
        kind = draw(st.sampled_from(["training", "inference", "batch"]))
        replicas = draw(st.integers(1, 3)) if kind == "inference" else 1
        cts = draw(st.sampled_from(["[on-demand]", "[spot, on-demand]", "[reserved, on-demand]", "[spot]"]))
        labels = "{data-class: eu-personal}" if draw(st.booleans()) else "{}"
        per_s = f", perNode: {per}" if per else ""
        size = ", domainSize: 72" if topo == "nvlink" and model == "GB200" else ""
        out.append(f"metadata: {{name: w{i}, team: t{i % 2}, labels: {labels}}}\n"
                   f"spec: {{kind: {kind}, replicas: {replicas}, priority: {draw(st.integers(0, 3))},"
                   f" capacityType: {cts}, gpus: {{model: {model}, count: {count}{per_s}}},"
                   f" topology: {{domain: {topo}{size}}}}}")
    return parse_manifests("\n---\n".join(out))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets(), policy_sets(), workloads())
def test_no_placement_breaks_a_rule(snap, ps, ws):
    result = place(ws, snap, ps)
    by_name = {w.name: w for w in ws}
    pools = {(p.provider, p.zone, p.instance_type, str(p.capacity_type)): p for p in snap.pools}
    used = Counter()
    for d in result.decisions:
        w = by_name[d.workload]
        if not d.placed:
            assert d.assignments == [] and d.unplaced_kind in {"no-capacity", "no-quota", "nothing-matches", "cap",
                                                               "budget"}
            continue
        groups = {}
        for a in d.assignments:
            groups.setdefault(a.replica_group, []).append(a)
            key = (a.provider, a.zone, a.instance_type, str(a.capacity_type))
            used[key] += a.nodes
            it = CAT.instance_type(a.provider, a.instance_type)
            region = CAT.region(a.provider, a.region)
            assert it.gpu_model in w.spec.gpus.model
            assert str(a.capacity_type) in [str(c) for c in w.spec.capacity_type]
            assert a.provider not in (ps.providers.deny or ())
            if w.metadata.labels.get("data-class") == "eu-personal":
                assert region.geo == "eu"
            if ps.max_price_per_gpu_hour is not None:
                assert a.list_price_per_hour / a.gpus <= ps.max_price_per_gpu_hour + 1e-9
            assert snap.health.get(a.provider) != HealthStatus.DOWN
            if w.spec.gpus.per_node:
                assert it.gpus == w.spec.gpus.per_node
        # whole gangs: every replica present, each with all its GPUs, inside its topology
        assert sorted(groups) == list(range(w.spec.replicas))
        for rows in groups.values():
            gpus_per_node = CAT.instance_type(rows[0].provider, rows[0].instance_type).gpus
            assert sum(a.gpus for a in rows) == max(w.spec.gpus.count, gpus_per_node) if w.spec.gpus.count < \
                gpus_per_node else sum(a.gpus for a in rows) == w.spec.gpus.count
            assert len({(a.provider, a.region, a.instance_type) for a in rows}) == 1
            topo = str(w.spec.topology.domain)
            if topo == "cluster":
                assert len(rows) == 1
            if topo == "zone":
                assert len({a.zone for a in rows}) == 1
            if topo == "nvlink":
                it = CAT.instance_type(rows[0].provider, rows[0].instance_type)
                size = w.spec.topology.domain_size or it.nvlink_domain_gpus
                assert all(a.gpus % min(size, w.spec.gpus.count) == 0 for a in rows)
    for key, n in used.items():
        assert n <= pools[key].available_nodes, key
    for q in snap.quotas:
        use = sum(a.nodes * CAT.instance_type(a.provider, a.instance_type).vcpus for a in result.assignments()
                  if a.provider == q.provider and a.region == q.region and str(a.capacity_type) != "reserved")
        assert use <= q.headroom
    if ps.provider_share is not None:
        _check_share_cap(ws, snap, ps)
    # same input, same output
    assert place(ws, snap, ps).to_json() == result.to_json()


def _check_share_cap(ws, snap, ps):
    """Replayed in decision order (no improvement pass): a placement that takes the fleet past minFleetGpus
    leaves its provider at most max of the fleet, unless only that provider can serve it."""
    cap = ps.provider_share
    placer = Placer(snap, ps)
    held: Counter = Counter()
    for w in batch_order(placer, ws):
        d = placer.place_one(w)
        exempt = d.placed and placer.index.lookup(w).groups[0].cap_exempt
        for r in sorted({a.replica_group for a in d.assignments}):     # the cap is checked per replica
            rows = [a for a in d.assignments if a.replica_group == r]
            for a in rows:
                held[a.provider] += a.gpus
            total = sum(held.values())
            if total > cap.min_fleet_gpus and not exempt:
                prov = rows[0].provider
                assert held[prov] <= cap.max_share * total + 1e-9, (w.name, prov, held, total)
