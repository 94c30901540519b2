"""Time-aware placement (issue 10): wait for a block that starts later when that is cheaper, run on-demand
now when waiting would miss the deadline (or cost more than it saves), never use capacity before its start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from controlplane.model.workload import GPUWorkload
from controlplane.placement.snapshot import FleetSnapshot
from controlplane.policy.model import PolicySet
from controlplane.timeline.timing import WaitPolicy, decide, human
from providers.catalog import CapacityType, default_catalog
from providers.model import CapacityPool

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
START = NOW + timedelta(days=2, hours=4)
OD_PRICE = 55.04          # the catalog's p5.48xlarge on-demand price in us-east-1
BLOCK_PRICE = 31.0


def _snap(block_start: datetime = START, block_hours: int = 5 * 24) -> FleetSnapshot:
    od = CapacityPool("aws", "us-east-1", "us-east-1a", "p5.48xlarge", CapacityType.ON_DEMAND, 4)
    block = CapacityPool("aws", "us-east-1", "us-east-1b", "p5.48xlarge", CapacityType.RESERVED, 2,
                         reservation_id="cr-0future0000000001", price_per_hour=BLOCK_PRICE, starts_at=block_start,
                         ends_at=block_start + timedelta(hours=block_hours))
    return FleetSnapshot(default_catalog(), (od, block), taken_at=NOW)


def _w(**schedule: object) -> GPUWorkload:
    return GPUWorkload.model_validate({"metadata": {"name": "train-1"}, "spec": {
        "gpus": {"model": "H100", "count": 8}, "location": {"regions": ["aws:us-east-1"]},
        "schedule": {"duration": "10h", **schedule}}})


def test_waits_for_the_cheaper_block_and_says_why() -> None:
    d = decide(_w(), _snap(), PolicySet.default())
    assert d.action == "wait" and d.start == START
    assert d.chosen is not None and d.chosen.reservation == "cr-0future0000000001"
    saving = (OD_PRICE - BLOCK_PRICE) * 10
    assert d.reasons == [f"waits 2d 4h for cr-0future0000000001 (aws/us-east-1 1x p5.48xlarge) at "
                         f"${BLOCK_PRICE * 10:,.2f}, saves ${saving:,.2f} against aws/us-east-1 1x p5.48xlarge "
                         f"on-demand now at ${OD_PRICE * 10:,.2f}"]


def test_runs_on_demand_now_when_waiting_would_miss_the_deadline() -> None:
    d = decide(_w(deadline=(START + timedelta(hours=9)).isoformat()), _snap(), PolicySet.default())
    assert d.action == "run-now" and d.start == NOW
    assert d.decision is not None and {a.capacity_type for a in d.decision.assignments} == {CapacityType.ON_DEMAND}
    assert "would miss the deadline" in d.reasons[-1] and "cr-0future0000000001" in d.reasons[-1]
    # one more hour of slack and the block fits before the deadline: it waits
    assert decide(_w(deadline=(START + timedelta(hours=10)).isoformat()), _snap(), PolicySet.default()).action == "wait"


def test_max_wait_bounds_the_wait() -> None:
    assert decide(_w(maxWait="2d"), _snap(), PolicySet.default()).action == "run-now"
    assert decide(_w(maxWait="2d4h"), _snap(), PolicySet.default()).action == "wait"


def test_cost_of_waiting_can_outweigh_the_saving() -> None:
    # 52 h x 8 GPUs x $1/GPU-h = $416 of waiting against $240.40 saved: run now
    d = decide(_w(), _snap(), PolicySet.default(), policy=WaitPolicy(wait_cost_per_gpu_hour=1.0))
    assert d.action == "run-now"
    assert d.reasons[-1] == ("waiting 2d 4h for cr-0future0000000001 (aws/us-east-1 1x p5.48xlarge) would save "
                             "$240.40 but cost $416.00 of waiting")
    # at $0.5/GPU-h waiting costs $208: it waits
    assert decide(_w(), _snap(), PolicySet.default(), policy=WaitPolicy(0.5)).action == "wait"


def test_block_is_never_used_before_its_start() -> None:
    for offset_h in (-1, 0, 1, 30, 52, 60):
        snap = _snap(block_start=NOW + timedelta(hours=52))
        d = decide(_w(notBefore=(NOW + timedelta(hours=offset_h)).isoformat()) if offset_h >= 0 else _w(),
                   snap, PolicySet.default())
        for o in d.considered:
            for a in o.decision.assignments:
                if a.reservation:
                    assert o.start >= NOW + timedelta(hours=52), (offset_h, o.start)


def test_block_that_ends_before_the_run_would_finish_is_not_used() -> None:
    d = decide(_w(), _snap(block_hours=9), PolicySet.default())
    assert d.action == "run-now" and d.decision is not None and not d.decision.assignments[0].reservation


def test_not_before_in_the_future_waits_even_for_on_demand() -> None:
    d = decide(_w(notBefore=(NOW + timedelta(hours=3)).isoformat()), _snap(), PolicySet.default())
    assert d.action == "wait"      # the block (later still) is cheaper: it waits for it
    assert d.start == START
    d2 = decide(_w(notBefore=(NOW + timedelta(hours=3)).isoformat(), maxWait="5h"), _snap(), PolicySet.default())
    assert d2.action == "wait" and d2.start == NOW + timedelta(hours=3)
    assert d2.reasons[0].startswith("waits 3h for aws/us-east-1 1x p5.48xlarge on-demand")


def test_no_start_in_the_window_is_unplaceable_and_named() -> None:
    w = _w(notBefore=(NOW + timedelta(days=3)).isoformat(), deadline=(NOW + timedelta(days=3, hours=10)).isoformat())
    snap = FleetSnapshot(default_catalog(), _snap().pools[1:], taken_at=NOW)     # only the block
    d = decide(w, snap.__class__(snap.catalog, snap.pools, taken_at=NOW), PolicySet.default())
    assert d.action == "wait"        # the block is in term at notBefore
    w2 = _w(deadline=(NOW + timedelta(hours=20)).isoformat())
    d2 = decide(w2, snap, PolicySet.default())
    assert d2.action == "unplaceable" and "after the deadline" in d2.reasons[-1]


def test_human_durations() -> None:
    assert [human(timedelta(**kw)) for kw in ({"days": 2, "hours": 4}, {"hours": 3, "minutes": 20},
                                              {"minutes": 45}, {"seconds": 0})] == ["2d 4h", "3h 20m", "45m", "0m"]


@pytest.mark.parametrize(("schedule", "field"), [
    ({"deadline": "2026-12-02T00:00:00Z"}, "duration"),
    ({"duration": "2x"}, "duration"),
    ({"maxWait": "-3h"}, "maxWait"),
    ({"notBefore": "2026-12-02T00:00:00"}, "notBefore"),
    ({"notBefore": "2026-12-02T00:00:00Z", "deadline": "2026-12-02T05:00:00Z", "duration": "6h"}, "deadline"),
    ({"start": "now"}, "start"),
])
def test_bad_schedule_is_refused_naming_the_field(schedule: dict, field: str) -> None:
    with pytest.raises(ValidationError) as e:
        GPUWorkload.model_validate({"metadata": {"name": "x"}, "spec": {"gpus": {"model": "H100", "count": 8},
                                                                        "schedule": schedule}})
    assert field in str(e.value)


def test_schedule_round_trips_through_the_manifest() -> None:
    w = _w(maxWait="2d4h", notBefore="2026-12-01T00:00:00Z")
    again = GPUWorkload.model_validate(w.to_manifest())
    assert again.spec.schedule == w.spec.schedule
    assert again.spec.schedule is not None and again.spec.schedule.max_wait == timedelta(days=2, hours=4)


def test_controller_step_keeps_a_waiting_workload_pending_and_places_it_once_the_block_starts() -> None:
    import dataclasses

    from controlplane.reconcile.placing import default_place

    plain = GPUWorkload.model_validate({"metadata": {"name": "now"}, "spec": {
        "gpus": {"model": "H100", "count": 8}, "location": {"regions": ["aws:us-east-1"]}}})
    res = default_place([plain, _w()], _snap(), PolicySet.default())
    by = {d.workload: d for d in res.decisions}
    assert by["now"].placed and not by["train-1"].placed
    assert by["train-1"].unplaced_kind == "waiting" and by["train-1"].reasons[0].startswith("waits 2d 4h for cr-")
    later = default_place([_w()], dataclasses.replace(_snap(), taken_at=START), PolicySet.default())
    [d] = later.decisions
    assert d.placed and d.assignments[0].reservation == "cr-0future0000000001"
    assert d.reasons[0].startswith("runs now on cr-0future0000000001")
