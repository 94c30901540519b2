"""GCPProvider against the GCP fake: the real SDK clients over HTTP, faults injected through /_mock/*."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from providers.catalog import CapacityType
from providers.config import ProviderConfig
from providers.errors import CapacityError, InvalidRequestError, QuotaError, UnavailableError
from providers.gcp.adapter import GCPProvider
from providers.gcp.naming import instance_request_id, resource_name
from providers.model import LABEL_OWNER, HealthStatus, NodeRequest, NodeState

ZONE, REGION = "us-central1-a", "us-central1"
OTHER_ZONE = "us-central1-b"


def _cfg(mock_gcp, **update) -> ProviderConfig:
    base = mock_gcp.config().providers["gcp"]
    return base.model_copy(update={"regions": [REGION, "europe-west4"], **update})


@pytest.fixture
def gcp(mock_gcp):
    provider = GCPProvider(_cfg(mock_gcp))
    provider.mock = mock_gcp
    provider.url = mock_gcp.urls["gcp"]
    yield provider
    provider.close()


def _req(pool="trainers", count=2, instance_type="a3-highgpu-8g", ct=CapacityType.ON_DEMAND, key="k-1",
         zone=ZONE, **kw) -> NodeRequest:
    return NodeRequest(pool=pool, workload="llm-7", region=zone.rsplit("-", 1)[0], zone=zone,
                       instance_type=instance_type, capacity_type=ct, count=count, idempotency_key=key, **kw)


def _names(pool: str, key: str, count: int) -> list[str]:
    return [resource_name(pool, i, key) for i in range(count)]


def _fault(gcp, **body) -> int:
    return httpx.post(gcp.url + "/_mock/faults", json=body).json()["id"]


def test_offerings_are_catalog_rows_confirmed_live(gcp):
    offers = gcp.offerings()
    keys = {(o.zone, o.instance_type, o.capacity_type) for o in offers}
    assert (ZONE, "a3-highgpu-8g", CapacityType.SPOT) in keys
    assert (ZONE, "tpu-v5p-8", CapacityType.ON_DEMAND) in keys
    assert {o.region for o in offers} == {REGION, "europe-west4"}
    assert all(o.price_per_hour > 0 and o.provider == "gcp" for o in offers)


def test_capacity_reports_gpu_quotas_and_pools_bounded_by_headroom(gcp):
    httpx.post(gcp.url + "/_mock/quotas", json={"region": REGION, "metric": "NVIDIA_H100_GPUS", "limit": 24})
    gcp.create_nodes(_req(count=1))
    report = gcp.capacity()
    quota = next(q for q in report.quotas if q.region == REGION and q.name == "NVIDIA_H100_GPUS")
    assert (quota.unit, quota.limit, quota.used) == ("gpus", 24.0, 8.0)
    assert "a3-highgpu-8g" in quota.instance_types and quota.capacity_types == ("on-demand",)
    pre = next(q for q in report.quotas if q.region == REGION and q.name == "PREEMPTIBLE_NVIDIA_H100_GPUS")
    assert pre.capacity_types == ("spot",)
    pools = {(p.zone, p.instance_type, p.capacity_type): p for p in report.pools}
    assert pools[(ZONE, "a3-highgpu-8g", CapacityType.ON_DEMAND)].available_nodes == 2      # 16 GPUs left / 8
    assert pools[(ZONE, "a3-highgpu-1g", CapacityType.ON_DEMAND)].available_nodes == 16
    assert pools[(ZONE, "a3-highgpu-8g", CapacityType.SPOT)].available_nodes == 64          # preemptible quota
    assert not any(p.capacity_known for p in report.pools)


def test_create_list_delete_round_trip_with_labels(gcp):
    nodes = gcp.create_nodes(_req(ct=CapacityType.SPOT, tags={"awan:stack": "gcp-us-central1"}))
    assert [n.name for n in nodes] == _names("trainers", "k-1", 2)
    listed = {n.name: n for n in gcp.list_nodes()}
    assert set(listed) == set(_names("trainers", "k-1", 2))
    n = listed[nodes[0].name]
    assert (n.pool, n.workload, n.gpus, n.capacity_type, n.state) == (
        "trainers", "llm-7", 8, CapacityType.SPOT, NodeState.RUNNING)
    assert n.labels[LABEL_OWNER] == "awan" and n.labels["awan-stack"] == "gcp-us-central1"
    gcp.delete_nodes(nodes)
    gcp.delete_nodes(nodes)                       # already gone: not an error
    assert gcp.list_nodes() == []


def test_only_owned_nodes_are_listed(gcp):
    from google.cloud import compute_v1
    gcp.create_nodes(_req(count=1))
    foreign = compute_v1.Instance(name="someone-else", machine_type=f"zones/{ZONE}/machineTypes/g2-standard-4",
                                  labels={"team": "web"})
    client = gcp.api.compute("InstancesClient")
    op = client.insert(project=gcp.api.project, zone=ZONE, instance_resource=foreign)
    gcp.api.wait_compute("zones", ZONE, op.name, REGION)
    assert [n.name for n in gcp.list_nodes()] == _names("trainers", "k-1", 1)


def test_create_is_idempotent_by_key(gcp):
    first = gcp.create_nodes(_req())
    again = gcp.create_nodes(_req())
    assert [n.id for n in again] == [n.id for n in first]
    inventory = httpx.get(gcp.url + "/_mock/inventory").json()["resources"]
    assert len(inventory) == 2
    seen = gcp.mock.backend("gcp").compute.request_ids          # GCE dedupes the replay by requestId
    assert {(gcp.api.project, instance_request_id("k-1", ZONE, i)) for i in range(2)} <= set(seen)


def test_same_key_in_another_zone_after_a_stockout_is_a_new_request(gcp):
    """A pool moved to another zone of the region keeps its key (same stack, same resource): GCE must
    not answer the second zone's insert with the first zone's operation."""
    httpx.post(gcp.url + "/_mock/capacity", json={"free": 0, "zone": ZONE, "instanceType": "a3-highgpu-8g"})
    with pytest.raises(CapacityError):
        gcp.create_nodes(_req(count=1))
    [node] = gcp.create_nodes(_req(count=1, zone=OTHER_ZONE))
    assert node.zone == OTHER_ZONE
    assert [n.id for n in gcp.list_nodes()] == [node.id]


def test_one_pool_filled_by_several_requests_gets_distinct_nodes(gcp):
    """The local engine asks one node at a time, each with its own key: no request may land on another's VM."""
    first = gcp.create_nodes(_req(count=1, key="node-a"))
    second = gcp.create_nodes(_req(count=1, key="node-b"))
    assert first[0].name != second[0].name and first[0].id != second[0].id
    assert {n.id for n in gcp.list_nodes()} == {first[0].id, second[0].id}
    assert len(httpx.get(gcp.url + "/_mock/inventory").json()["resources"]) == 2
    assert [n.id for n in gcp.create_nodes(_req(count=1, key="node-a"))] == [first[0].id]   # replay adopts


def _calls(gcp) -> Counter[str]:
    return Counter(c.operation for c in gcp.mock.backend("gcp").requests.entries())


def test_create_reads_its_nodes_back_with_one_list_not_a_get_per_node(gcp):
    """Per created VM: one insert and one operation wait; then one instances.list for the whole request,
    answering exactly its VMs (not the pool's other requests' VMs, nor other pools')."""
    neighbour = gcp.create_nodes(_req(count=1, key="node-a"))
    gcp.create_nodes(_req(pool="trainers-2", count=1, key="node-b"))
    gcp.mock.backend("gcp").requests.clear()
    nodes = gcp.create_nodes(_req(count=4, key="node-c"))
    assert [n.name for n in nodes] == _names("trainers", "node-c", 4)
    assert neighbour[0].id not in {n.id for n in nodes}
    assert all(n.state == NodeState.RUNNING and n.pool == "trainers" for n in nodes)
    calls = _calls(gcp)
    assert (calls["instances.insert"], calls["zoneOperations.wait"], calls["instances.list"],
            calls["instances.get"]) == (4, 4, 1, 0)


def test_adoption_by_name_reads_back_with_one_list(gcp):
    """GCE forgot the requestIds (alreadyExists on every name): the VMs are adopted, no wait, one list."""
    first = gcp.create_nodes(_req(count=3))
    gcp.mock.backend("gcp").compute.request_ids.clear()
    gcp.mock.backend("gcp").requests.clear()
    again = gcp.create_nodes(_req(count=3))
    assert [n.id for n in again] == [n.id for n in first]
    assert len(httpx.get(gcp.url + "/_mock/inventory").json()["resources"]) == 3
    calls = _calls(gcp)
    assert (calls["instances.insert"], calls["zoneOperations.wait"], calls["instances.list"],
            calls["instances.get"]) == (3, 0, 1, 0)


def test_replay_by_request_id_reads_back_with_one_list_and_a_stockout_replays_as_one(gcp):
    """A repeated request (same key) gets GCE's original operations back by requestId: the VMs made are
    returned from one list; a VM whose insert stocked out stays a CapacityError (the same operation), and
    a failed request reads nothing back."""
    first = gcp.create_nodes(_req(count=2))
    gcp.mock.backend("gcp").requests.clear()
    assert [n.id for n in gcp.create_nodes(_req(count=2))] == [n.id for n in first]
    calls = _calls(gcp)
    assert (calls["instances.insert"], calls["zoneOperations.wait"], calls["instances.list"],
            calls["instances.get"]) == (2, 2, 1, 0)
    httpx.post(gcp.url + "/_mock/capacity", json={"free": 1, "zone": ZONE, "instanceType": "a3-highgpu-8g"})
    for _ in range(2):
        gcp.mock.backend("gcp").requests.clear()
        with pytest.raises(CapacityError) as e:
            gcp.create_nodes(_req(count=2, key="k-2"))
        assert e.value.code == "ZONE_RESOURCE_POOL_EXHAUSTED"
        calls = _calls(gcp)
        assert (calls["instances.list"], calls["instances.get"]) == (0, 0)
    assert len(httpx.get(gcp.url + "/_mock/inventory").json()["resources"]) == 3


def test_zone_stockout_is_a_capacity_error(gcp):
    httpx.post(gcp.url + "/_mock/capacity", json={"free": 1, "zone": ZONE, "instanceType": "a3-highgpu-8g"})
    with pytest.raises(CapacityError) as e:
        gcp.create_nodes(_req(count=2))
    assert e.value.code == "ZONE_RESOURCE_POOL_EXHAUSTED"
    assert (e.value.provider, e.value.region, e.value.endpoint) == ("gcp", REGION, gcp.url)


def test_quota_breach_is_a_quota_error_and_not_retried(gcp):
    httpx.post(gcp.url + "/_mock/quotas", json={"region": REGION, "metric": "NVIDIA_H100_GPUS", "limit": 8})
    with pytest.raises(QuotaError) as e:
        gcp.create_nodes(_req(count=2))
    assert e.value.code == "QUOTA_EXCEEDED" and "NVIDIA_H100_GPUS" in e.value.message


def test_throttling_is_retried_until_it_succeeds(gcp):
    fid = _fault(gcp, kind="throttle", operation="instances.insert", times=2, retry_after=0.01)
    nodes = gcp.create_nodes(_req(count=1))
    assert len(nodes) == 1
    assert all(f["id"] != fid for f in httpx.get(gcp.url + "/_mock/faults").json()["faults"])   # both used up


def test_outage_gives_unavailable_after_bounded_retries(mock_gcp):
    provider = GCPProvider(_cfg(mock_gcp, max_attempts=3))
    url = mock_gcp.urls["gcp"]
    httpx.post(url + "/_mock/faults", json={"kind": "outage", "region": REGION, "times": 10,
                                              "retry_after": 0.01})
    with pytest.raises(UnavailableError) as e:
        provider.create_nodes(_req(count=1))
    assert e.value.region == REGION
    left = httpx.get(url + "/_mock/faults").json()["faults"][0]["times"]
    assert left == 7                                 # exactly max_attempts calls were made


def test_capacity_and_health_under_a_regional_outage(gcp):
    _fault(gcp, kind="outage", region="europe-west4", retry_after=0.01)
    report = gcp.capacity()
    assert {p.region for p in report.pools} == {REGION}
    health = gcp.health()
    assert health.status == HealthStatus.DEGRADED
    assert health.regions == {REGION: HealthStatus.OK, "europe-west4": HealthStatus.DOWN}
    assert "europe-west4" in health.message


def test_health_is_ok_when_everything_answers(gcp):
    health = gcp.health()
    assert health.status == HealthStatus.OK and health.endpoint == gcp.url
    assert set(health.regions.values()) == {HealthStatus.OK}


def test_spot_preemption_shows_up_in_list_nodes(gcp):
    gcp.create_nodes(_req(count=1, ct=CapacityType.SPOT, pool="spot"))
    gcp.create_nodes(_req(count=1, pool="steady", key="k-2"))
    ids = httpx.post(gcp.url + "/_mock/preempt", json={"region": REGION}).json()["nodes"]
    states = {n.name: n.state for n in gcp.list_nodes()}
    assert states == {resource_name("spot", 0, "k-1"): NodeState.PREEMPTED,
                      resource_name("steady", 0, "k-2"): NodeState.RUNNING}
    assert len(ids) == 1


def test_tpu_slices_create_list_delete(gcp):
    nodes = gcp.create_nodes(_req(pool="tpu-pool", count=2, instance_type="tpu-v5p-8", ct=CapacityType.SPOT))
    assert {(n.instance_type, n.gpus, n.capacity_type) for n in nodes} == {("tpu-v5p-8", 4, CapacityType.SPOT)}
    assert sorted(n.name for n in gcp.list_nodes()) == _names("tpu-pool", "k-1", 2)
    assert gcp.create_nodes(_req(pool="tpu-pool", count=2, instance_type="tpu-v5p-8", ct=CapacityType.SPOT))
    gcp.delete_nodes(nodes)
    assert gcp.list_nodes() == []


def test_tpu_stockout_is_a_capacity_error(gcp):
    httpx.post(gcp.url + "/_mock/capacity", json={"free": 0, "zone": ZONE, "instanceType": "tpu-v6e-8"})
    with pytest.raises(CapacityError):
        gcp.create_nodes(_req(pool="t", count=1, instance_type="tpu-v6e-8"))


def test_queued_resource_waits_then_activates(gcp):
    backend = gcp.mock.backend("gcp")
    backend.ledger.set_free(1, zone=ZONE, instance_type="tpu-v5p-32")
    state = gcp.create_queued_resource(ZONE, "gang", "tpu-v5p-32", slices=2, spot=True, pool="gang")
    assert state == "WAITING_FOR_RESOURCES"
    backend.ledger.set_free(2, zone=ZONE, instance_type="tpu-v5p-32")
    assert gcp.queued_resource_state(ZONE, "gang") == "ACTIVE"
    assert sorted(n.name for n in gcp.list_nodes()) == ["gang-0", "gang-1"]
    gcp.delete_queued_resource(ZONE, "gang")
    gcp.delete_queued_resource(ZONE, "gang")
    assert gcp.list_nodes() == []


def test_compact_placement_policy_is_idempotent_and_used(gcp):
    link = gcp.ensure_compact_placement_policy(REGION, "gang-a", vm_count=2)
    assert link == gcp.ensure_compact_placement_policy(REGION, "gang-a", vm_count=2)
    gcp.create_nodes(_req(placement_group="gang-a"))
    with pytest.raises(InvalidRequestError):      # in use by the VMs
        gcp.delete_placement_policy(REGION, "gang-a")
    gcp.delete_nodes(gcp.list_nodes())
    gcp.delete_placement_policy(REGION, "gang-a")
    gcp.delete_placement_policy(REGION, "gang-a")


def test_invalid_requests_name_the_field(gcp):
    with pytest.raises(InvalidRequestError, match="instance_type"):
        gcp.create_nodes(_req(instance_type="p5.48xlarge"))
    with pytest.raises(InvalidRequestError, match="zone"):
        gcp.create_nodes(_req(zone="europe-west4-c", instance_type="a4-highgpu-8g"))


def test_unreachable_endpoint_names_provider_and_endpoint():
    endpoint = "http://127.0.0.1:9"
    cfg = ProviderConfig(name="gcp", endpoint=endpoint, project="p", credentials={"anonymous": "true"},
                         regions=[REGION], max_attempts=2, timeout_s=2)
    provider = GCPProvider(cfg)
    with pytest.raises(UnavailableError) as e:
        provider.list_nodes()
    assert e.value.provider == "gcp" and e.value.endpoint == endpoint
    assert endpoint in str(e.value)
    health = provider.health()
    assert health.status == HealthStatus.DOWN and health.regions == {REGION: HealthStatus.DOWN}


@pytest.mark.parametrize("pool", ["trainers", "Research_H100 pool", "9lives", "x" * 80, "a--b-"])
def test_node_names_follow_gce_rules_and_depend_on_pool_key_and_index(pool):
    import re
    names = {resource_name(pool, i, key) for key in ("k-1", "k-2") for i in range(3)}
    assert len(names) == 6
    assert all(re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", n) for n in names), names
    assert resource_name(pool, 0, "k-1") == resource_name(pool, 0, "k-1")
    assert resource_name(pool, 0, "k-1") != resource_name(pool + "x", 0, "k-1")


def test_list_nodes_in_lists_one_region_and_its_faults_only(gcp):
    # Regional listing (observation's unit): each region's own nodes, the union is list_nodes, and an
    # outage in one region fails that region's list alone.
    here = gcp.create_nodes(_req(count=1, key="k-us"))
    there = gcp.create_nodes(_req(count=1, key="k-eu", zone="europe-west4-b"))
    assert gcp.configured_regions() == [REGION, "europe-west4"]
    assert [n.id for n in gcp.list_nodes_in(REGION)] == [n.id for n in here]
    assert [n.id for n in gcp.list_nodes_in("europe-west4")] == [n.id for n in there]
    assert {n.id for r in gcp.configured_regions() for n in gcp.list_nodes_in(r)} == {n.id for n in gcp.list_nodes()}
    _fault(gcp, kind="outage", region="europe-west4", retry_after=0.01)
    with pytest.raises(UnavailableError):
        gcp.list_nodes_in("europe-west4")
    assert [n.id for n in gcp.list_nodes_in(REGION)] == [n.id for n in here]


def test_list_nodes_in_a_region_without_known_zones_is_an_error_not_no_nodes(gcp):
    with pytest.raises(InvalidRequestError, match="no zones of 'mars-north1'"):
        gcp.list_nodes_in("mars-north1")
