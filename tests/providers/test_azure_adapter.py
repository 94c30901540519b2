"""AzureProvider through the real azure-mgmt-compute SDK, over HTTP, against mockclouds' fake ARM."""

from __future__ import annotations

import socket

import pytest
from pydantic import SecretStr

from mockclouds.faults import Fault
from providers.azure.adapter import AzureProvider
from providers.catalog import CapacityType, default_catalog
from providers.errors import AuthError, CapacityError, QuotaError, UnavailableError
from providers.model import TAG_OWNER, HealthStatus, NodeRequest, NodeState

H100 = "Standard_ND96isr_H100_v5"
GB200 = "Standard_ND128isr_NDR_GB200_v6"
REGIONS = ["eastus", "westus3"]


@pytest.fixture
def backend(mock_azure):
    return mock_azure.backend("azure")


@pytest.fixture
def cfg(mock_azure):
    return mock_azure.config().providers["azure"].model_copy(update={"regions": REGIONS})


@pytest.fixture
def azure(cfg):
    provider = AzureProvider(cfg, retry_wait_s=0.001)
    yield provider
    provider.close()


def request(pool="train-a", count=2, capacity_type=CapacityType.ON_DEMAND, size=H100, region="eastus",
            zone="eastus-1") -> NodeRequest:
    return NodeRequest(pool=pool, workload="llm-7", region=region, zone=zone, instance_type=size,
                       capacity_type=capacity_type, count=count, idempotency_key=f"{pool}-key")


def vms(backend) -> list[dict]:
    return [r for r in backend.inventory() if r["kind"] == "virtualMachine"]


# -- questions ---------------------------------------------------------------------------------------
def test_offerings_join_live_skus_with_catalog_prices(azure, backend):
    rows = azure.offerings()
    catalog = {(o.instance_type, o.zone, o.capacity_type): o.price_per_hour
               for o in default_catalog().for_provider("azure") if o.region in REGIONS}
    got = {(o.instance_type, o.zone, o.capacity_type): o.price_per_hour for o in rows}
    assert got == catalog     # everything sold, at the catalog's price, nothing invented
    assert (GB200, "eastus-1", CapacityType.ON_DEMAND) in got
    assert (GB200, "eastus-1", CapacityType.SPOT) not in got

    backend.ledger.set_free(0, zone="eastus-1", instance_type=H100)          # sold out: Zone restriction
    backend.faults.add(Fault(kind="outage", region="westus3"))               # region down: Location restriction
    after = {(o.instance_type, o.zone) for o in azure.offerings()}
    assert (H100, "eastus-1") not in after
    assert not any(zone == "westus3-1" for _, zone in after)
    assert (GB200, "eastus-1") in after


def test_capacity_reports_quotas_and_quota_bounded_pools(azure):
    azure.create_nodes(request(count=2))
    report = azure.capacity()
    quota = {(q.region, q.name): q for q in report.quotas}
    h100 = quota[("eastus", "standardNDSH100v5Family")]
    assert h100.unit == "vcpus" and h100.used == 192 and H100 in h100.instance_types
    assert quota[("eastus", "cores")].instance_types == ()
    assert (h100.capacity_types, quota[("eastus", "lowPriorityCores")].capacity_types) == (("on-demand",), ("spot",))
    pools = {(p.zone, p.instance_type, p.capacity_type): p for p in report.pools}
    on_demand = pools[("eastus-1", H100, CapacityType.ON_DEMAND)]
    assert on_demand.available_nodes == int(h100.headroom // 96)
    assert on_demand.capacity_known is False
    spot = pools[("eastus-1", H100, CapacityType.SPOT)]
    assert spot.available_nodes == int(quota[("eastus", "lowPriorityCores")].headroom // 96)
    assert ("eastus-1", GB200, CapacityType.SPOT) not in pools


def test_health_per_region(azure, backend):
    ok = azure.health()
    assert ok.status is HealthStatus.OK and set(ok.regions) == set(REGIONS)
    backend.faults.add(Fault(kind="outage", region="westus3"))
    h = azure.health()
    assert h.status is HealthStatus.DEGRADED
    assert h.regions == {"eastus": HealthStatus.OK, "westus3": HealthStatus.DOWN}
    assert "westus3" in h.message


# -- create, list, delete ------------------------------------------------------------------------------
def test_create_list_delete_nodes(azure, backend):
    nodes = azure.create_nodes(request(count=2))
    assert [n.name for n in nodes] == ["train-a-0", "train-a-1"]
    assert all(n.state is NodeState.RUNNING and n.zone == "eastus-1" and n.gpus == 8 for n in nodes)

    listed = {n.id: n for n in azure.list_nodes()}
    assert set(listed) == {n.id for n in nodes}
    assert {(n.pool, n.workload) for n in listed.values()} == {("train-a", "llm-7")}
    assert all(r["tags"][TAG_OWNER] == "awan" for r in vms(backend))

    azure.delete_nodes(nodes)
    assert azure.list_nodes() == [] and vms(backend) == []
    azure.delete_nodes(nodes)     # already gone: not an error


def test_list_nodes_ignores_vms_awan_does_not_own(azure, backend):
    azure.client.virtual_machines.begin_create_or_update(
        "awan", "someone-elses", {"location": "eastus", "properties": {"hardwareProfile": {"vmSize": H100}}}).result()
    assert len(vms(backend)) == 1
    assert azure.list_nodes() == []


def test_create_is_idempotent(azure, backend):
    first = azure.create_nodes(request(count=2))
    again = azure.create_nodes(request(count=2))
    assert [n.id for n in again] == [n.id for n in first]
    assert len(vms(backend)) == 2
    assert backend.ledger.free("eastus-1", H100) == 16 - 2


# -- refusals --------------------------------------------------------------------------------------------
def test_exhausted_zone_raises_capacity_error_with_azure_code(azure, backend):
    backend.ledger.set_free(1, zone="eastus-1", instance_type=H100)
    with pytest.raises(CapacityError) as e:
        azure.create_nodes(request(count=2))
    assert e.value.code == "ZonalAllocationFailed" and e.value.provider == "azure" and e.value.region == "eastus"
    # The first node got the last free slot; the second was refused.
    assert [r["id"].rsplit("/", 1)[-1] for r in vms(backend)] == ["train-a-0"]


def test_size_not_sold_in_region_is_sku_not_available(azure):
    with pytest.raises(CapacityError) as e:
        azure.create_nodes(request(size=GB200, region="westus", zone="westus-1", count=1))
    assert e.value.code == "SkuNotAvailable"


def test_quota_raises_quota_error(azure, backend):
    backend.set_quota("eastus", "standardNDSH100v5Family", 96)
    with pytest.raises(QuotaError) as e:
        azure.create_nodes(request(count=2))
    assert e.value.code == "OperationNotAllowed" and "quota" in e.value.message.lower()


def test_spot_draws_on_low_priority_quota(azure, backend):
    backend.set_quota("eastus", "lowPriorityCores", 100)
    nodes = azure.create_nodes(request(count=1, capacity_type=CapacityType.SPOT))
    assert nodes[0].capacity_type is CapacityType.SPOT
    with pytest.raises(QuotaError):
        azure.create_nodes(request(pool="more", count=1, capacity_type=CapacityType.SPOT))


# -- retries and failures -------------------------------------------------------------------------------
def test_throttling_is_retried_until_it_passes(azure, backend):
    backend.faults.add(Fault(kind="throttle", operation="VirtualMachines_CreateOrUpdate", times=2,
                             retry_after=0.0))
    nodes = azure.create_nodes(request(count=1))
    assert len(nodes) == 1
    assert backend.faults.list() == []       # both throttles were met, and retried


def test_outage_gives_unavailable_after_bounded_retries(cfg, backend):
    provider = AzureProvider(cfg.model_copy(update={"max_attempts": 3}), retry_wait_s=0.001)
    backend.faults.add(Fault(kind="outage", region="eastus", times=10))
    with pytest.raises(UnavailableError) as e:
        provider.create_nodes(request(count=1))
    assert e.value.region == "eastus" and e.value.code == "ServiceUnavailable"
    assert backend.faults.list()[0]["times"] == 10 - 3
    provider.close()


def test_wrong_token_is_auth_error_naming_provider_and_endpoint(cfg):
    bad = cfg.model_copy(update={"credentials": {"token": SecretStr("not-the-token")}})
    provider = AzureProvider(bad)
    with pytest.raises(AuthError) as e:
        provider.list_nodes()
    assert "azure" in str(e.value) and cfg.endpoint in str(e.value)
    assert e.value.code == "InvalidAuthenticationToken"


def test_unreachable_endpoint_is_unavailable_naming_it(cfg):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    provider = AzureProvider(cfg.model_copy(update={"endpoint": endpoint, "max_attempts": 2, "timeout_s": 2}),
                             retry_wait_s=0.001)
    with pytest.raises(UnavailableError) as e:
        provider.offerings()
    assert endpoint in str(e.value) and e.value.provider == "azure"


# -- long-running operations and spot -----------------------------------------------------------------
def test_async_mode_polls_the_operation(azure, backend):
    backend.async_mode = True
    nodes = azure.create_nodes(request(count=2))
    assert all(n.state is NodeState.RUNNING for n in nodes)
    ops = list(backend.operations.values())
    assert len(ops) == 2 and all(op.status == "Succeeded" for op in ops)   # settled by the SDK's polls

    backend.ledger.set_free(0, zone="eastus-1", instance_type=H100)
    with pytest.raises(CapacityError) as e:
        azure.create_nodes(request(pool="late", count=1))
    assert e.value.code == "ZonalAllocationFailed"
    azure.delete_nodes(nodes)
    assert vms(backend) == []            # the Failed VM was cleaned up too


def test_spot_eviction_removes_nodes(azure, backend):
    spot = azure.create_nodes(request(pool="spot", count=2, capacity_type=CapacityType.SPOT))
    azure.create_nodes(request(pool="steady", count=1))
    evicted = backend.preempt("eastus", None, H100)
    assert sorted(evicted) == sorted(n.id for n in spot)
    assert [n.pool for n in azure.list_nodes()] == ["steady"]


# -- scale sets -----------------------------------------------------------------------------------------
def test_scale_set_apply_resize_delete(azure, backend):
    ss = azure.apply_scale_set("eastus", "gang-1", H100, 3, tags={"awan:pool": "gang-1"}, zone="eastus-1")
    assert ss.capacity == 3 and len(ss.members) == 3 and ss.provisioning_state == "Succeeded"
    assert backend.ledger.free("eastus-1", H100) == 16 - 3
    again = azure.apply_scale_set("eastus", "gang-1", H100, 1, tags={"awan:pool": "gang-1"}, zone="eastus-1")
    assert again.capacity == 1 and set(again.members) <= set(ss.members)
    assert {n.pool for n in azure.list_nodes()} == {"gang-1"}

    backend.ledger.set_free(0, zone="eastus-1", instance_type=H100)
    with pytest.raises(CapacityError):
        azure.apply_scale_set("eastus", "gang-1", H100, 2, zone="eastus-1")
    backend.ledger.set_free(15, zone="eastus-1", instance_type=H100)
    azure.delete_scale_set("gang-1")
    azure.delete_scale_set("gang-1")
    assert backend.inventory() == [] and backend.ledger.free("eastus-1", H100) == 16


def test_list_nodes_in_lists_one_region_and_its_faults_only(azure, backend):
    # ListByLocation: each region's own VMs (ours only), the union is list_nodes, and an outage in one
    # region fails that region's list alone.
    east = azure.create_nodes(request(count=1, pool="east"))
    west = azure.create_nodes(request(count=1, pool="west", region="westus3", zone="westus3-1"))
    azure.client.virtual_machines.begin_create_or_update(
        "awan", "someone-elses", {"location": "eastus", "properties": {"hardwareProfile": {"vmSize": H100}}}).result()
    assert azure.configured_regions() == REGIONS
    assert [n.id for n in azure.list_nodes_in("eastus")] == [n.id for n in east]
    assert [n.id for n in azure.list_nodes_in("westus3")] == [n.id for n in west]
    assert {n.id for r in REGIONS for n in azure.list_nodes_in(r)} == {n.id for n in azure.list_nodes()}
    assert all(n.state is NodeState.RUNNING for r in REGIONS for n in azure.list_nodes_in(r))
    backend.faults.add(Fault(kind="outage", region="westus3"))
    with pytest.raises(UnavailableError):
        azure.list_nodes_in("westus3")
    assert [n.id for n in azure.list_nodes_in("eastus")] == [n.id for n in east]
