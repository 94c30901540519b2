"""Issue 15: whether a reserved pool launches into a Capacity Block is decided from the placement record (the
placed pool's reservation kind, as the cloud reported it), by the loop (stored rows -> pools_for) and by
`awan deploy --plan` (plan JSON -> pools_from_plan), and the program then launches with market type
capacity-block. Ids are deliberately alike ("cr-..."), so nothing can be read from their shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from controlplane.model import parse_manifests
from controlplane.placement import FleetSnapshot, place
from controlplane.policy import PolicySet
from controlplane.reconcile.desired import pools_from_plan
from controlplane.reconcile.placing import _assignments
from controlplane.reconcile.pools import pools_for
from controlplane.store.models import Workload
from infra.engines.mockruntime import run_program
from infra.programs import program_for
from infra.spec import NodePoolSpec, ReservationKind, desired_stacks
from providers.aws.capacity import reservation_kind
from providers.catalog import CapacityType, default_catalog
from providers.model import CapacityPool

MANIFEST = ("metadata: {name: job, team: t}\n"
            "spec: {kind: training, gpus: {model: H100, count: 16, perNode: 8}, capacityType: [reserved]}\n")


def _placed(kind: str):  # type: ignore[no-untyped-def]
    snap = FleetSnapshot(catalog=default_catalog(), taken_at=datetime(2026, 10, 1, tzinfo=UTC), pools=(
        CapacityPool(provider="aws", region="us-east-1", zone="us-east-1a", instance_type="p5.48xlarge",
                     capacity_type=CapacityType.RESERVED, available_nodes=2, reservation_id="cr-0a1b2c",
                     reservation_kind=kind),))
    [w] = parse_manifests(MANIFEST)
    result = place([w], snap, PolicySet.default())
    [d] = result.decisions
    assert d.placed, d.reasons
    return w, result


def _market_types(pools: list[NodePoolSpec]) -> set[str | None]:
    [stack] = desired_stacks(pools)
    rec = run_program(program_for(stack), stack.name)
    return {(r.inputs.get("instanceMarketOptions") or {}).get("marketType")
            for r in rec.resources.values() if r.type == "aws:ec2/instance:Instance"}


@pytest.mark.parametrize("kind, expected, market", [
    ("capacity-block", ReservationKind.CAPACITY_BLOCK.value, "capacity-block"),
    ("", ReservationKind.RESERVATION.value, None)])
def test_the_loop_takes_the_reservation_kind_from_the_placement_record(kind: str, expected: str,
                                                                       market: str | None) -> None:
    w, result = _placed(kind)
    d = result.decisions[0]
    assert {a.reservation_kind for a in d.assignments} == {kind}
    row = Workload(name=w.name, team="t", spec={"spec": {"kind": "training"}}, assignments=_assignments(d),
                   placement=json.loads(json.dumps(d.to_json())))        # as stored: JSON
    for i, a in enumerate(row.assignments):
        a.pool = f"job-{i}"
    pools = pools_for([row])
    assert {p.reservation_kind for p in pools} == {expected}
    assert {p.reservation_id for p in pools} == {"cr-0a1b2c"}
    assert _market_types(pools) == {market}


def test_a_stored_row_without_a_matching_record_is_an_existing_reservation() -> None:
    w, result = _placed("capacity-block")
    d = result.decisions[0]
    row = Workload(name=w.name, team="t", spec={"spec": {"kind": "training"}}, assignments=_assignments(d),
                   placement=None)
    for i, a in enumerate(row.assignments):
        a.pool = f"job-{i}"
    assert {p.reservation_kind for p in pools_for([row])} == {ReservationKind.RESERVATION.value}


def test_the_deploy_plan_path_takes_it_from_the_plan_json() -> None:
    _, result = _placed("capacity-block")
    plan = json.loads(json.dumps(result.to_json()))
    assert {r["reservationKind"] for p in plan["placements"] for r in p["assignments"]} == {"capacity-block"}
    pools = pools_from_plan(plan)
    assert {p.reservation_kind for p in pools} == {ReservationKind.CAPACITY_BLOCK.value}
    assert _market_types(pools) == {"capacity-block"}


def test_aws_reports_a_capacity_blocks_reservation_by_its_type_not_its_id() -> None:
    assert reservation_kind({"CapacityReservationId": "cr-1", "ReservationType": "capacity-block"}) == "capacity-block"
    assert reservation_kind({"CapacityReservationId": "cr-2", "ReservationType": "default"}) == ""
    assert reservation_kind({"CapacityReservationId": "cb-3"}) == ""
