"""CoreWeaveProvider against the fake CKS apiserver, through the kubernetes client over HTTP."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from mockclouds.faults import Fault
from providers.catalog.model import CapacityType
from providers.config import ProviderConfig
from providers.coreweave.adapter import CoreWeaveProvider
from providers.errors import (
    AuthError,
    CapacityError,
    InvalidRequestError,
    ThrottledError,
    UnavailableError,
)
from providers.model import LABEL_OWNER, LABEL_POOL, LABEL_WORKLOAD, HealthStatus, NodeRequest, NodeState

H100, H100_ZONE, H100_REGION = "gd-8xh100ib-i128", "US-EAST-04A", "US-EAST-04"
GB200, GB200_ZONE = "gb200-4x", "US-EAST-14A"


def _cfg(mc, **update) -> ProviderConfig:
    return mc.config().providers["coreweave"].model_copy(update=update)


@pytest.fixture
def cw(mock_coreweave):
    p = CoreWeaveProvider(_cfg(mock_coreweave, max_attempts=3, timeout_s=5.0))
    yield p
    p.close()


@pytest.fixture
def backend(mock_coreweave):
    return mock_coreweave.backend("coreweave")


def _req(pool: str, count: int, itype: str = H100, zone: str = H100_ZONE, region: str = H100_REGION,
         ct: CapacityType = CapacityType.ON_DEMAND) -> NodeRequest:
    return NodeRequest(pool=pool, workload="llm-7", region=region, zone=zone, instance_type=itype,
                       capacity_type=ct, count=count, idempotency_key=f"{pool}-{count}")


def test_create_nodes_labels_them_and_is_idempotent(cw, backend):
    free = backend.ledger.free(H100_ZONE, H100)
    nodes = cw.create_nodes(_req("train-a", 2))
    assert len(nodes) == 2
    for n in nodes:
        assert (n.provider, n.zone, n.region, n.instance_type) == ("coreweave", H100_ZONE, H100_REGION, H100)
        assert n.state == NodeState.RUNNING and n.gpus == 8
        assert (n.pool, n.workload) == ("train-a", "llm-7")
        assert n.labels[LABEL_OWNER] == "awan" and n.labels[LABEL_POOL] == "train-a"
        assert n.labels[LABEL_WORKLOAD] == "llm-7"
    again = cw.create_nodes(_req("train-a", 2))
    assert sorted(n.id for n in again) == sorted(n.id for n in nodes)
    assert backend.ledger.free(H100_ZONE, H100) == free - 2
    assert sorted(n.id for n in cw.list_nodes()) == sorted(n.id for n in nodes)


def test_list_nodes_ignores_nodes_awan_does_not_own(cw):
    cw.apply_node_pool("someone-else", H100, H100_ZONE, 1, {"team": "other"})
    cw.create_nodes(_req("mine", 1))
    assert [n.pool for n in cw.list_nodes()] == ["mine"]


def test_gb200_nodes_fill_nvlink_racks_of_18(cw):
    nodes = cw.create_nodes(_req("nvl", 20, GB200, GB200_ZONE, "US-EAST-14"))
    racks: dict[str, int] = {}
    for n in nodes:
        racks[n.labels["ds.coreweave.com/nvlink.domain"]] = racks.get(n.labels["ds.coreweave.com/nvlink.domain"], 0) + 1
        assert n.gpus == 4
    assert sorted(racks.values()) == [2, 18]


def test_stockout_raises_capacity_error_and_leaves_nothing(cw, backend):
    backend.ledger.set_free(1, zone=H100_ZONE, instance_type=H100)
    with pytest.raises(CapacityError) as ei:
        cw.create_nodes(_req("big", 3))
    e = ei.value
    assert (e.provider, e.region, e.code) == ("coreweave", H100_REGION, "InsufficientCapacity")
    assert "2 of 3 node(s) pending" in str(e)
    assert cw.get_node_pool("big") is None
    assert cw.list_nodes() == []
    assert backend.ledger.free(H100_ZONE, H100) == 1


def test_stockout_on_scale_up_puts_the_pool_back(cw, backend):
    cw.create_nodes(_req("grow", 2))
    backend.ledger.set_free(0, zone=H100_ZONE, instance_type=H100)
    with pytest.raises(CapacityError):
        cw.create_nodes(_req("grow", 4))
    pool = cw.get_node_pool("grow")
    assert pool["spec"]["targetNodes"] == 2 and pool["status"]["currentNodes"] == 2
    assert len(cw.list_nodes()) == 2


def test_delete_nodes_scales_down_then_deletes_the_pool(cw, backend):
    seed = backend.ledger.free(H100_ZONE, H100)
    nodes = sorted(cw.create_nodes(_req("shrink", 3)), key=lambda n: n.id)
    cw.delete_nodes([nodes[0]])
    left = sorted(n.id for n in cw.list_nodes())
    assert left == [n.id for n in nodes[1:]]
    assert cw.get_node_pool("shrink")["spec"]["targetNodes"] == 2
    cw.delete_nodes([nodes[0]])                  # already gone: changes nothing
    assert cw.get_node_pool("shrink")["spec"]["targetNodes"] == 2
    cw.delete_nodes(nodes)
    assert cw.get_node_pool("shrink") is None and cw.list_nodes() == []
    assert backend.ledger.free(H100_ZONE, H100) == seed


def test_offerings_follow_the_cluster_quota(cw, mock_coreweave):
    offs = cw.offerings()
    assert offs and all(o.provider == "coreweave" for o in offs)
    assert any(o.zone == H100_ZONE and o.instance_type == H100 for o in offs)
    from kubernetes import client
    core = client.CoreV1Api(cw._api)
    core.patch_namespaced_config_map("coreweave-quota", "kube-system", {"data": {f"{H100_ZONE}.{H100}": "0"}})
    offs2 = cw.offerings()
    assert not any(o.zone == H100_ZONE and o.instance_type == H100 for o in offs2)
    assert len(offs2) < len(offs)


def test_capacity_is_quota_headroom_and_shows_stockouts(cw, backend):
    def pool_of(report, zone, itype):
        return [p for p in report.pools if p.zone == zone and p.instance_type == itype]

    before = pool_of(cw.capacity(), H100_ZONE, H100)
    assert {p.capacity_type for p in before} == {CapacityType.ON_DEMAND, CapacityType.SPOT}
    assert all(not p.capacity_known for p in before)
    limit = before[0].available_nodes
    cw.create_nodes(_req("cap", 2))
    report = cw.capacity()
    assert {p.available_nodes for p in pool_of(report, H100_ZONE, H100)} == {limit - 2}
    quota = next(q for q in report.quotas if q.instance_types == (H100,) and q.name.endswith(H100_ZONE + "." + H100))
    assert (quota.limit, quota.used, quota.unit) == (limit, 2, "nodes")
    # A pool that stays short for lack of capacity turns that (zone, type) to 0, whatever the quota says.
    backend.ledger.set_free(0, zone=GB200_ZONE, instance_type=GB200)
    cw.apply_node_pool("short", GB200, GB200_ZONE, 2, {"awan-owner": "awan"})
    assert {p.available_nodes for p in pool_of(cw.capacity(), GB200_ZONE, GB200)} == {0}


def test_health_ok_and_down_on_outage(cw, backend):
    h = cw.health()
    assert h.status == HealthStatus.OK and h.provider == "coreweave" and h.latency_ms >= 0
    backend.faults.add(Fault(kind="outage"))
    down = cw.health()
    assert down.status == HealthStatus.DOWN and "ServiceUnavailable" in down.message


def test_throttling_is_retried_with_retry_after(cw, backend):
    backend.faults.add(Fault(kind="throttle", operation="list nodes", times=2, retry_after=0.01))
    assert cw.list_nodes() == []
    assert backend.faults.list() == []           # both throttles were met, then the call went through


def test_throttling_past_max_attempts_raises(mock_coreweave, backend):
    p = CoreWeaveProvider(_cfg(mock_coreweave, max_attempts=2))
    backend.faults.add(Fault(kind="throttle", operation="list nodes", times=3, retry_after=0.01))
    with pytest.raises(ThrottledError) as ei:
        p.list_nodes()
    assert ei.value.retry_after == pytest.approx(0.01) and ei.value.code == "TooManyRequests"
    assert len(backend.faults.list()) == 1 and backend.faults.list()[0]["times"] == 1


def test_region_outage_fails_only_that_region(mock_coreweave, backend):
    p = CoreWeaveProvider(_cfg(mock_coreweave, max_attempts=2))
    backend.faults.add(Fault(kind="outage", region=H100_REGION))
    with pytest.raises(UnavailableError) as ei:
        p.create_nodes(_req("down", 1))
    assert (ei.value.region, ei.value.endpoint) == (H100_REGION, mock_coreweave.urls["coreweave"])
    assert len(p.create_nodes(_req("up", 1, GB200, GB200_ZONE, "US-EAST-14"))) == 1


def test_unreachable_endpoint_is_unavailable(mock_coreweave):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = CoreWeaveProvider(_cfg(mock_coreweave, endpoint=f"http://127.0.0.1:{port}", max_attempts=1))
    with pytest.raises(UnavailableError):
        p.list_nodes()


def test_wrong_token_is_an_auth_error(mock_coreweave):
    cfg = _cfg(mock_coreweave)
    cfg = cfg.model_copy(update={"credentials": {"token": SecretStr("wrong")}})
    with pytest.raises(AuthError) as ei:
        CoreWeaveProvider(cfg).list_nodes()
    assert ei.value.code == "Unauthorized"


def test_invalid_and_immutable_requests(cw):
    with pytest.raises(InvalidRequestError) as ei:
        cw.apply_node_pool("bad", "no-such-type", H100_ZONE, 1, {})
    assert ei.value.code == "Invalid" and "instanceType" in str(ei.value)
    cw.apply_node_pool("fixed", H100, H100_ZONE, 1, {})
    with pytest.raises(InvalidRequestError):
        cw.apply_node_pool("fixed", GB200, GB200_ZONE, 1, {})
    assert cw.delete_node_pool("fixed") is True and cw.delete_node_pool("fixed") is False


def test_pool_names_are_made_valid_and_distinct(cw):
    a = cw.create_nodes(_req("Team_A/Pool.1", 1))
    b = cw.create_nodes(_req("team-a-pool-1", 1))
    assert a[0].pool == "Team_A/Pool.1" and b[0].pool == "team-a-pool-1"
    assert a[0].labels["compute.coreweave.com/node-pool"] != b[0].labels["compute.coreweave.com/node-pool"]


def test_spot_pool_nodes_are_spot_and_preemptible(cw, mock_coreweave):
    import json
    import urllib.request
    cw.create_nodes(_req("cheap", 2, ct=CapacityType.SPOT))
    cw.create_nodes(_req("steady", 1))
    assert {n.capacity_type for n in cw.list_nodes() if n.pool == "cheap"} == {CapacityType.SPOT}
    req = urllib.request.Request(mock_coreweave.urls["coreweave"] + "/_mock/preempt", data=b"{}", method="POST",
                                 headers={"Content-Type": "application/json"})
    gone = json.loads(urllib.request.urlopen(req).read())["nodes"]
    assert len(gone) == 2
    assert [n.pool for n in cw.list_nodes()] == ["steady"]
    pool = cw.get_node_pool("cheap")
    assert pool["status"]["currentNodes"] == 0 and pool["spec"]["targetNodes"] == 2


def test_list_nodes_in_lists_one_region(cw):
    # The topology label picks a region's nodes out of the one cluster; the union is list_nodes.
    east = cw.create_nodes(_req("east", 1))
    other = cw.create_nodes(_req("other", 1, GB200, GB200_ZONE, "US-EAST-14"))
    cw.apply_node_pool("someone-else", H100, H100_ZONE, 1, {"team": "other"})
    assert cw.configured_regions() == []           # none configured: every catalog region is served
    assert [n.id for n in cw.list_nodes_in(H100_REGION)] == [n.id for n in east]
    assert [n.id for n in cw.list_nodes_in("US-EAST-14")] == [n.id for n in other]
    assert {n.id for r in (H100_REGION, "US-EAST-14") for n in cw.list_nodes_in(r)} == {n.id for n in cw.list_nodes()}
