"""OCIProvider through the real `oci` SDK (requests signed with a throwaway RSA key), over HTTP, against
mockclouds' fake OCI: questions, side effects, idempotency and the error mapping."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from mockclouds.faults import Fault
from providers.capabilities import ClusterNetworkRequest, ReservationRequest
from providers.catalog import CapacityType, default_catalog
from providers.errors import (
    AuthError,
    CapacityError,
    NotFoundError,
    ProviderError,
    QuotaError,
    ThrottledError,
)
from providers.model import LABEL_OWNER, HealthStatus, NodeRequest, NodeState
from providers.oci.adapter import OCIProvider

H100, H200, GB200 = "BM.GPU.H100.8", "BM.GPU.H200.8", "BM.GPU.GB200.4"
REGIONS = ["us-ashburn-1", "us-chicago-1"]


@pytest.fixture
def backend(mock_oci):
    return mock_oci.backend("oci")


@pytest.fixture
def cfg(mock_oci):
    return mock_oci.config().providers["oci"].model_copy(update={"regions": REGIONS, "max_attempts": 3})


@pytest.fixture
def oci_provider(cfg):
    provider = OCIProvider(cfg, sleep=lambda _s: None)
    yield provider
    provider.close()


def request(pool="serve-a", count=2, shape=H100, region="us-ashburn-1", zone="US-ASHBURN-AD-1", key="k-1",
            capacity_type=CapacityType.ON_DEMAND, reservation_id="") -> NodeRequest:
    return NodeRequest(pool=pool, workload="research/llm-7", region=region, zone=zone, instance_type=shape,
                       capacity_type=capacity_type, count=count, idempotency_key=key, reservation_id=reservation_id,
                       tags={"awan:stack": f"awan-oci-{region}"})


def test_offerings_are_the_catalog_rows_the_regions_offer(oci_provider, backend):
    got = {(o.zone, o.instance_type, o.capacity_type.value) for o in oci_provider.offerings()}
    want = {(o.zone, o.instance_type, o.capacity_type.value) for o in default_catalog().for_provider("oci")
            if o.region in REGIONS}
    assert got == want and ("US-CHICAGO-AD-1", GB200, "on-demand") in got


def test_capacity_reports_free_hosts_exactly_and_gpu_limits_per_region(oci_provider, backend):
    backend.ledger.set_free(3, zone="US-ASHBURN-AD-2", instance_type=H100)
    backend.set_limit("US-ASHBURN-AD-1", "gpu-h100-count", 40)          # 5 hosts of 8 GPUs
    oci_provider.create_nodes(request(count=2))
    rep = oci_provider.capacity()
    pools = {(p.zone, p.instance_type, p.capacity_type): p for p in rep.pools}
    assert pools[("US-ASHBURN-AD-2", H100, CapacityType.ON_DEMAND)].available_nodes == 3
    assert pools[("US-ASHBURN-AD-1", H100, CapacityType.ON_DEMAND)].available_nodes == 3   # limit: 40-16 GPUs
    assert all(p.capacity_known for p in rep.pools)
    q = {(q.region, q.name): q for q in rep.quotas}[("us-ashburn-1", "gpu-h100-count")]
    assert (q.unit, q.used, q.limit, q.instance_types) == ("gpus", 16.0, 40.0 + 256.0, (H100,))


def test_create_is_idempotent_lists_by_tag_and_delete_is_quiet_twice(oci_provider, backend):
    made = oci_provider.create_nodes(request(count=2))
    again = oci_provider.create_nodes(request(count=2))           # same key: the same two instances
    assert [n.id for n in made] == [n.id for n in again]
    assert len([r for r in backend.inventory() if r["kind"] == "instance"]) == 2
    listed = oci_provider.list_nodes()
    assert {n.id for n in listed} == {n.id for n in made}
    n = listed[0]
    assert (n.state, n.gpus, n.pool, n.workload, n.zone) == (NodeState.RUNNING, 8, "serve-a", "research/llm-7",
                                                             "US-ASHBURN-AD-1")
    assert n.labels[LABEL_OWNER] == "awan" and n.labels["awan-stack"] == "awan-oci-us-ashburn-1"
    oci_provider.delete_nodes(listed)
    oci_provider.delete_nodes(listed)                               # already gone: no error
    assert oci_provider.list_nodes() == []


def test_instances_of_other_owners_are_not_listed(oci_provider, cfg):
    other = OCIProvider(cfg, owner="someone-else")
    try:
        other.create_nodes(request(count=1, key="theirs"))
        assert oci_provider.list_nodes() == []
    finally:
        other.close()


def test_out_of_host_capacity_is_a_capacity_error_not_retried(oci_provider, backend):
    backend.ledger.set_free(0, zone="US-ASHBURN-AD-1", instance_type=H100)
    with pytest.raises(CapacityError) as e:
        oci_provider.create_nodes(request(count=1))
    assert "Out of host capacity" in str(e.value) and e.value.region == "us-ashburn-1"


def test_limit_exceeded_is_a_quota_error(oci_provider, backend):
    backend.set_limit("US-ASHBURN-AD-1", "gpu-h100-count", 8)
    oci_provider.create_nodes(request(count=1))
    with pytest.raises(QuotaError) as e:
        oci_provider.create_nodes(request(count=1, key="k-2"))
    assert e.value.code == "LimitExceeded"


def test_throttling_is_retried_then_surfaces_as_throttled(oci_provider, backend):
    backend.faults.add(Fault(kind="throttle", operation="LaunchInstance", times=2, retry_after=0.0))
    assert len(oci_provider.create_nodes(request(count=1))) == 1     # two 429s, then the launch
    backend.faults.add(Fault(kind="throttle", operation="ListInstances", retry_after=0.0))
    with pytest.raises(ThrottledError) as e:
        oci_provider.list_nodes()
    assert e.value.code == "TooManyRequests"


def test_health_a_region_down_is_degraded_all_down_is_down(oci_provider, backend):
    assert oci_provider.health().status is HealthStatus.OK
    backend.faults.add(Fault(kind="outage", region="us-chicago-1"))
    h = oci_provider.health()
    assert h.status is HealthStatus.DEGRADED and h.regions["us-chicago-1"] is HealthStatus.DOWN
    backend.faults.add(Fault(kind="outage", region="us-ashburn-1"))
    assert oci_provider.health().status is HealthStatus.DOWN


def test_a_wrong_signing_identity_is_an_auth_error(cfg):
    bad = cfg.model_copy(update={"credentials": {**cfg.credentials, "fingerprint": SecretStr("00:" * 15 + "00")}})
    p = OCIProvider(bad)
    try:
        with pytest.raises(AuthError):
            p.list_nodes()
    finally:
        p.close()


def test_capacity_reservation_holds_hosts_and_instances_launch_into_it(oci_provider, backend):
    ask = ReservationRequest("us-ashburn-1", "US-ASHBURN-AD-2", H100, 2, "cr-key", {"awan:pool": "train-r"})
    r = oci_provider.reserve(ask)
    assert r == oci_provider.reserve(ReservationRequest("us-ashburn-1", "US-ASHBURN-AD-2", H100, 2, "cr-key"))
    assert oci_provider.find_reservation("us-ashburn-1", "awan:pool", "train-r") == r
    assert oci_provider.find_reservation("us-ashburn-1", "awan:pool", "other") is None
    assert backend.ledger.free("US-ASHBURN-AD-2", H100) == 14
    pools = [p for p in oci_provider.capacity().pools if p.reservation_id == r.id]
    assert [(p.capacity_type, p.available_nodes) for p in pools] == [(CapacityType.RESERVED, 2)]
    backend.ledger.set_free(0, zone="US-ASHBURN-AD-2")                # the shared pool is empty; ours is not
    nodes = oci_provider.create_nodes(request(count=2, zone="US-ASHBURN-AD-2", key="into-cr",
                                              capacity_type=CapacityType.RESERVED, reservation_id=r.id))
    assert {n.capacity_type for n in nodes} == {CapacityType.RESERVED}
    assert oci_provider.get_capacity_reservation(r.id, "us-ashburn-1").used == 2
    with pytest.raises(CapacityError):
        oci_provider.create_nodes(request(count=1, zone="US-ASHBURN-AD-2", key="over-cr",
                                          capacity_type=CapacityType.RESERVED, reservation_id=r.id))
    oci_provider.delete_nodes(nodes)
    oci_provider.release_reservation("us-ashburn-1", r.id)
    oci_provider.release_reservation("us-ashburn-1", r.id)       # gone already: not an error
    with pytest.raises(NotFoundError):
        oci_provider.get_capacity_reservation(r.id, "us-ashburn-1")


def test_cluster_network_create_resize_stock_out_and_delete(oci_provider, backend):
    tags = {"awan:pool": "train-g", "awan:workload": "research/llm-7"}
    def ask(size: int) -> ClusterNetworkRequest:
        return ClusterNetworkRequest("us-chicago-1", "US-CHICAGO-AD-1", "awan-train-g", GB200, size, "cn-key", tags)

    cn = oci_provider.ensure_cluster_network(ask(18))
    assert (cn.size, len(cn.members), cn.instance_type, cn.state) == (18, 18, GB200, "RUNNING")
    members = [n for n in oci_provider.list_nodes() if n.pool == "train-g"]
    assert len(members) == 18 and {n.zone for n in members} == {"US-CHICAGO-AD-1"}
    backend.ledger.set_free(0, zone="US-CHICAGO-AD-1", instance_type=GB200)
    with pytest.raises(CapacityError):                               # growth is all or nothing
        oci_provider.ensure_cluster_network(ask(36))
    found = oci_provider.find_cluster_network("us-chicago-1", "awan-train-g")
    assert found is not None and found.size == 18
    cn = oci_provider.ensure_cluster_network(ask(9))
    assert (cn.size, len(cn.members)) == (9, 9)
    oci_provider.delete_cluster_network("us-chicago-1", "awan-train-g")
    oci_provider.delete_cluster_network("us-chicago-1", "awan-train-g")
    assert oci_provider.find_cluster_network("us-chicago-1", "awan-train-g") is None
    assert [n for n in oci_provider.list_nodes() if n.pool == "train-g"] == []
    assert not [r for r in backend.inventory() if r["kind"] == "clusterNetwork" and r["state"] != "terminated"]


def test_a_config_without_tenancy_is_refused_naming_the_field(cfg):
    p = OCIProvider(cfg.model_copy(update={"tenancy": None}))
    try:
        with pytest.raises(AuthError, match=r"providers\.oci\.tenancy"):
            p.list_nodes()
    finally:
        p.close()


def test_list_nodes_in_lists_one_region_and_its_faults_only(oci_provider, backend):
    # Each region's endpoint lists its own instances; the union is list_nodes; an outage in one region
    # fails that region's list alone.
    ash = oci_provider.create_nodes(request(count=1, key="k-ash"))
    chi = oci_provider.create_nodes(request(count=1, key="k-chi", region="us-chicago-1", zone="US-CHICAGO-AD-1"))
    assert oci_provider.configured_regions() == REGIONS
    assert [n.id for n in oci_provider.list_nodes_in("us-ashburn-1")] == [n.id for n in ash]
    assert [n.id for n in oci_provider.list_nodes_in("us-chicago-1")] == [n.id for n in chi]
    assert {n.id for n in oci_provider.list_nodes()} == {n.id for n in ash + chi}
    backend.faults.add(Fault(kind="outage", region="us-chicago-1"))
    with pytest.raises(ProviderError):
        oci_provider.list_nodes_in("us-chicago-1")
    assert [n.id for n in oci_provider.list_nodes_in("us-ashburn-1")] == [n.id for n in ash]
