"""GCE future reservations (issue 10): the real google-cloud-compute client over HTTP against the GCP mock,
whose clock (POST /_mock/clock) is moved to reach a reservation's start and end."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from controlplane.model.workload import GPUWorkload
from controlplane.placement.engine import place_one
from controlplane.placement.snapshot import FleetSnapshot
from controlplane.policy.model import PolicySet
from providers.catalog import CapacityType, default_catalog
from providers.errors import CapacityError, InvalidRequestError
from providers.gcp.adapter import GCPProvider
from providers.model import NodeRequest, NodeState

ZONE, REGION, TYPE = "us-central1-a", "us-central1", "a3-highgpu-8g"


@pytest.fixture
def gcp(mock_gcp):
    cfg = mock_gcp.config().providers["gcp"].model_copy(update={"regions": [REGION]})
    provider = GCPProvider(cfg)
    provider.url = mock_gcp.urls["gcp"]
    yield provider
    provider.close()


def _mock_now(gcp) -> datetime:
    return datetime.fromisoformat(httpx.get(gcp.url + "/_mock/clock").json()["now"])


def _advance_to(gcp, at: datetime) -> None:
    r = httpx.post(gcp.url + "/_mock/clock", json={"now": at.isoformat()})
    assert r.status_code == 200, r.text


def _req(key: str, reservation: str, count: int = 1) -> NodeRequest:
    return NodeRequest(pool="trainers", workload="llm-7", region=REGION, zone=ZONE, instance_type=TYPE,
                       capacity_type=CapacityType.RESERVED, count=count, idempotency_key=key,
                       reservation_id=reservation)


def _workload(gpus: int = 16) -> GPUWorkload:
    return GPUWorkload.model_validate({"metadata": {"name": "waits"}, "spec": {
        "gpus": {"model": "H100", "count": gpus}, "capacityType": "reserved",
        "location": {"regions": [f"gcp:{REGION}"]}}})


def _pools(gcp, rid: str):
    return [p for p in gcp.capacity().pools if p.reservation_id == rid]


def test_future_reservation_is_listed_with_its_dates_and_never_used_before_its_start(gcp):
    start = _mock_now(gcp) + timedelta(days=3)
    end = start + timedelta(days=7)
    fr = gcp.create_future_reservation(ZONE, "fr-train", TYPE, 2, start, end, idempotency_key="k1")
    assert (fr.start, fr.end, fr.total, fr.delivered) == (start, end, 2, ())
    again = gcp.create_future_reservation(ZONE, "fr-train", TYPE, 2, start, end, idempotency_key="k1")
    assert again == fr          # idempotent: one request, not two

    [pool] = _pools(gcp, "fr-train")
    assert (pool.starts_at, pool.ends_at, pool.available_nodes) == (start, end, 2)
    assert pool.capacity_type == CapacityType.RESERVED and pool.zone == ZONE
    # GCE has no reservation to launch into yet: the adapter refuses as a capacity problem, naming the start
    with pytest.raises(CapacityError, match="delivers from"):
        gcp.create_nodes(_req("early", "fr-train"))
    # placement through the capacity snapshot: not before the start, yes within the window, not after
    snap = FleetSnapshot(default_catalog(), (pool,), taken_at=datetime.now(UTC))
    assert not place_one(_workload(), snap, PolicySet.default()).placed
    inside = place_one(_workload(), dataclasses.replace(snap, taken_at=start), PolicySet.default())
    assert inside.placed and {a.reservation for a in inside.assignments} == {"fr-train"}
    assert not place_one(_workload(), dataclasses.replace(snap, taken_at=end), PolicySet.default()).placed


def test_at_its_start_the_auto_created_reservation_is_usable_and_at_its_end_its_vms_stop(gcp):
    start = _mock_now(gcp) + timedelta(hours=6)
    end = start + timedelta(days=2)
    gcp.create_future_reservation(ZONE, "fr-b", TYPE, 2, start, end, reservation_name="res-b")
    [before] = _pools(gcp, "res-b")
    assert before.starts_at == start

    _advance_to(gcp, start)
    [after] = _pools(gcp, "res-b")      # now the auto-created reservation, same id and dates
    assert (after.starts_at, after.ends_at, after.available_nodes) == (start, end, 2)
    nodes = gcp.create_nodes(_req("in-window", "res-b", count=2))
    assert {n.capacity_type for n in nodes} == {CapacityType.RESERVED}
    assert _pools(gcp, "res-b")[0].available_nodes == 0
    with pytest.raises(CapacityError):       # the reservation is full: no third VM
        gcp.create_nodes(_req("third", "res-b"))

    _advance_to(gcp, end)
    assert _pools(gcp, "res-b") == []        # deleted at the end of the window
    assert {n.state for n in gcp.list_nodes() if n.name in {x.name for x in nodes}} == {NodeState.TERMINATED}


def test_one_made_elsewhere_without_a_reservation_name_is_reported_by_what_gce_creates(gcp):
    """A future reservation made in the console (no reservationName): before its start its pool carries its
    own name; from the start, the auto-created reservation's name (what any launch path can name); an id from
    before the start still resolves in create_nodes."""
    from google.cloud import compute_v1

    start = _mock_now(gcp) + timedelta(hours=1)
    body = compute_v1.FutureReservation(
        name="fr-c", name_prefix="team-c",
        specific_sku_properties=compute_v1.FutureReservationSpecificSKUProperties(
            total_count=2, instance_properties=compute_v1.AllocationSpecificSKUAllocationReservedInstanceProperties(
                machine_type=TYPE)),
        time_window=compute_v1.FutureReservationTimeWindow(
            start_time=start.isoformat().replace("+00:00", "Z"), duration=compute_v1.Duration(seconds=86400)))
    client = gcp.api.compute("FutureReservationsClient")
    op = client.insert(project=gcp.api.project, zone=ZONE, future_reservation_resource=body)
    gcp.api.wait_compute("zones", ZONE, op.name, REGION)
    [early] = _pools(gcp, "fr-c")
    assert (early.starts_at, early.ends_at) == (start, start + timedelta(days=1))

    _advance_to(gcp, start)
    delivered = f"team-c-{start:%Y%m%d}-0001"
    assert _pools(gcp, "fr-c") == []
    [pool] = _pools(gcp, delivered)
    assert (pool.available_nodes, pool.starts_at, pool.ends_at) == (2, start, start + timedelta(days=1))
    [node] = gcp.create_nodes(_req("c", "fr-c"))          # the pre-start id resolves to the reservation
    assert node.capacity_type == CapacityType.RESERVED and _pools(gcp, delivered)[0].available_nodes == 1


def test_bad_future_reservations_are_refused_naming_the_field(gcp):
    now = _mock_now(gcp)
    with pytest.raises(InvalidRequestError, match="startTime"):
        gcp.create_future_reservation(ZONE, "fr-past", TYPE, 1, now - timedelta(days=1), now + timedelta(days=1))
    with pytest.raises(InvalidRequestError, match="instance_type"):
        gcp.create_future_reservation(ZONE, "fr-x", "nope-8g", 1, now + timedelta(days=1), now + timedelta(days=2))
    assert _pools(gcp, "fr-past") == []


def test_the_typed_capability_requests_a_future_reservation_once(gcp):
    from providers.capabilities import FutureReservationRequest, SupportsFutureReservations
    from providers.registry import CAPABILITIES

    assert isinstance(gcp, SupportsFutureReservations) and SupportsFutureReservations in CAPABILITIES["gcp"]
    start = _mock_now(gcp) + timedelta(days=1)
    req = FutureReservationRequest(ZONE, "fr-cap", TYPE, 3, start, start + timedelta(days=2),
                                   reservation_name="res-cap", idempotency_token="t-1")
    got = gcp.request_future_reservation(req)
    assert (got.reservation_id, got.count, got.starts_at, got.status, got.delivered) == (
        "res-cap", 3, start, "APPROVED", ())
    assert gcp.request_future_reservation(req) == got
    assert gcp.find_future_reservation(ZONE, "fr-cap") == got            # looked up by name (buying.py)
    assert gcp.find_future_reservation(ZONE, "fr-none") is None
    from providers.breaker import GuardedProvider

    guarded = GuardedProvider(gcp).supports_future_reservations()
    assert guarded is not None and guarded.find_future_reservation(ZONE, "fr-cap") == got
    assert [p.available_nodes for p in _pools(gcp, "res-cap")] == [3]      # one request, one pool
