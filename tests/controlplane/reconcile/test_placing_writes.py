"""What a placing pass writes (placing.py's batched statements): per placed workload its row (state,
placement = explanation, observed generation), its assignment rows with their pool names, an audit record and
a change-feed row; per unplaced one its explanation and message, an audit record when the reason changes, a
change-feed row when anything changed, and nothing at all for a retry with the same outcome (as the ORM's unit
of work wrote nothing for an unchanged row); the locks released; a stale leader writes nothing."""

from __future__ import annotations

from sqlalchemy import select

from controlplane.model.identity import pool_name, workload_key
from controlplane.reconcile import placing
from controlplane.reconcile.metrics import LoopMetrics
from controlplane.store import audit
from controlplane.store import workloads as repo
from controlplane.store.models import ChangeRecord, Workload
from tests.controlplane.reconcile.fakes import FakePlacer
from tests.controlplane.reconcile.harness import submit


def _pass(db, placer, fenced=lambda: True) -> list[str]:  # type: ignore[no-untyped-def]
    return placing.place_pending(db, snapshot=lambda: None, policies=lambda: None, place=placer, fenced=fenced,
                                 actor="controller:t", metrics=LoopMetrics(), ttl_s=60)


def _feed(db) -> list[tuple[int | None, str]]:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return [(r, k) for r, k in s.execute(select(ChangeRecord.ref, ChangeRecord.key).order_by(ChangeRecord.id))]


def test_a_pass_writes_rows_assignments_audit_and_feed_and_a_same_retry_writes_nothing(db):
    submit(db, "ok", gpus=16)
    submit(db, "nope", gpus=8)
    before = len(_feed(db))
    assert _pass(db, FakePlacer()) == [workload_key("research", "nope")]
    with db.session() as s:
        ok, nope = repo.get(s, "ok"), repo.get(s, "nope")
        assert ok is not None and nope is not None
        assert ok.state == "Placed" and ok.placed_at is not None and ok.observed_generation == ok.generation
        assert ok.placement == ok.explanation and ok.placement is not None and ok.message == "cheapest"
        where = "aws/us-east-1/us-east-1a/p5.48xlarge/on-demand/"
        assert [(a.pool, a.nodes, a.gpus, a.capacity_type, a.price_per_hour) for a in ok.assignments] == [
            (pool_name("ok", 0, f"{ok.key}#{ok.generation}@{where}"), 2, 16, "on-demand", 98.3 * 2)]
        assert nope.state == "Pending" and nope.message == "no capacity: nothing matches"
        assert nope.explanation is not None and not nope.assignments
        assert s.scalar(select(Workload.id).where(Workload.lock_token.is_not(None))) is None   # locks released
        ids = {ok.id, nope.id}
    assert {r for r, _ in _feed(db)[before:]} == ids
    with db.session() as s:
        assert [(e.action, e.subject) for e in audit.events(s, kind="workload")] == [
            ("placed", "ok"), ("unplaceable", "nope")]
    feed = len(_feed(db))
    assert _pass(db, FakePlacer()) == [workload_key("research", "nope")]   # the same reason again
    assert len(_feed(db)) == feed
    with db.session() as s:
        assert audit.count(s, action="unplaceable") == 1


def test_a_stale_leader_writes_nothing_and_releases_its_locks(db):
    submit(db, "ok", gpus=16)
    before = len(_feed(db))
    assert _pass(db, FakePlacer(), fenced=lambda: False) == []
    with db.session() as s:
        row = repo.get(s, "ok")
        assert row is not None and row.state == "Pending" and row.explanation is None and row.lock_token is None
        assert audit.count(s, action="placed") == 0
    assert len(_feed(db)) == before
