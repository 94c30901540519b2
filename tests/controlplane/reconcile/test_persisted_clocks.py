"""The loop's clocks survive the controller (controlplane/store/clocks): a Provisioning workload short of nodes,
or held in a place that cannot be listed, keeps the clock it had when its controller is replaced by a new one on
the same store (a restart, or another replica taking the lead), so it fails over at its bound, not a whole bound
after the restart; a Running one held there keeps its "since". The entries go when the condition ends, and a
writer whose leader epoch is not the lease's writes none. The clocks are a test clock, never waited."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from controlplane.policy.model import PolicySet
from controlplane.reconcile import failover, observing
from controlplane.reconcile.controller import Controller, LoopConfig
from controlplane.reconcile.leader import LEASE, LeaderElector
from controlplane.reconcile.metrics import LoopMetrics
from controlplane.reconcile.unobserved import Unobserved
from controlplane.store import audit, clocks
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.models import Assignment, Lease, WorkloadState
from providers.model import NodeState
from tests.controlplane.reconcile.fakes import FakeCloud, FakeProvider
from tests.controlplane.reconcile.harness import drive, make_controller, submit
from tests.controlplane.reconcile.test_isolation import PendingEngine, TwoTypePlacer
from tests.controlplane.reconcile.test_regional_observing import _node_for, _workload
from tests.controlplane.reconcile.test_unobserved_failover import (  # noqa: F401  (loop: a fixture)
    BOUND,
    Clock,
    Loop,
    NoopEngine,
    _at,
    _failovers,
    _list_fails,
    _rows,
    _since,
    coreweave_pair,
    loop,
)

PROVISIONING, RUNNING, DELETING = (WorkloadState.PROVISIONING.value, WorkloadState.RUNNING.value,
                                   WorkloadState.DELETING.value)
STUCK = "Standard_NC40ads_H100_v5"   # PendingEngine's nodes of this type never come up
SUCCESSORS = pytest.mark.parametrize("successor", ["same", "other"], ids=["restart", "new-leader"])


def _stored(db: Database) -> dict[str, dict[str, datetime]]:
    with db.session() as s:
        return clocks.read(s)


def _at_s(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _hand_over(c: Controller, successor: str) -> str:
    """The controller goes away: a crash of the process ("same": it comes back under the same name, the lease
    still its own) or a stop with the lease released ("other": another replica leads, a new epoch)."""
    c.stop(release_lease=successor == "other", grace_s=5.0)
    return c.elector.holder if successor == "same" else c.elector.holder + "-next"


# -- (1) short of nodes -------------------------------------------------------------------------------------------
def _fake_loop(db: Database, cloud: FakeCloud, placer: TwoTypePlacer, clock: Clock, holder: str) -> Controller:
    c = make_controller(db, cloud, placer, holder=holder, engine=PendingEngine(cloud, STUCK))
    c.short = failover.ShortWatch(BOUND, clock=clock)
    c.unseen = Unobserved(clock=clock)
    return c


def _drive_at(c: Controller, clock: Clock, t: float, passes: int = 2) -> None:
    clock.now = t
    drive(c, passes)


def _short_failovers(db: Database) -> list[dict[str, Any]]:
    with db.session() as s:
        return [dict(e.details) for e in audit.events(s, subject="bad-luck") if e.action == "failover"]


@SUCCESSORS
def test_a_short_workload_fails_over_at_its_bound_across_a_restart(db: Database, successor: str) -> None:
    cloud, placer, clock = FakeCloud(), TwoTypePlacer(), Clock()
    c = _fake_loop(db, cloud, placer, clock, "r1")
    submit(db, "bad-luck")   # placed on the stuck type first: its nodes stay pending
    _drive_at(c, clock, 0.0, passes=4)
    with db.session() as s:
        row = repo.get(s, "bad-luck")
        assert row is not None
        assert row.state == PROVISIONING, row.message
        key = row.key
    assert _stored(db)[clocks.SHORT] == {key: _at_s(0.0)}
    _drive_at(c, clock, BOUND - 10)
    assert not _short_failovers(db)
    c = _fake_loop(db, cloud, placer, clock, _hand_over(c, successor))
    _drive_at(c, clock, BOUND)   # 10 s after the restart: the clock it had, not a new one
    events = _short_failovers(db)
    assert len(events) == 1, events
    ev = events[0]
    assert ev["trigger"] == "capacity" and f"after {BOUND:.0f} s" in ev["reason"], ev
    assert ev["blocked"] == [f"aws/us-east-1a/{STUCK}/on-demand"]
    # (3) Re-placed on a type that comes up: Running, and its clock is gone from the store.
    _drive_at(c, clock, BOUND + 1, passes=4)
    with db.session() as s:
        row = repo.get(s, "bad-luck")
        assert row is not None
        assert row.state == RUNNING, row.message
    assert _stored(db)[clocks.SHORT] == {}


def test_the_pass_that_fails_a_short_workload_over_ends_its_clock(db: Database) -> None:
    """Kept, the old clock (since 0) failed its next placement over at once whenever the stack run had made it
    Provisioning again before an observation saw it otherwise: the order a busy machine gives (seen in CI)."""
    cloud, placer, clock = FakeCloud(), TwoTypePlacer(), Clock()
    c = _fake_loop(db, cloud, placer, clock, "r1")
    submit(db, "bad-luck")
    _drive_at(c, clock, 0.0, passes=4)
    assert _stored(db)[clocks.SHORT] == {"research_bad-luck": _at_s(0.0)}
    _drive_at(c, clock, BOUND, passes=1)
    (ev,) = _short_failovers(db)
    assert ev["blocked"] == [f"aws/us-east-1a/{STUCK}/on-demand"]
    with db.session() as s:
        row = repo.get(s, "bad-luck")
        assert row is not None and row.state == WorkloadState.PENDING.value, (row.state if row else None)
    assert _stored(db)[clocks.SHORT] == {}


# -- (2) a region that cannot be listed (the mock clouds, a fault on the list call alone) ------------------------
def _replace(db: Database, lp: Loop, successor: str) -> None:
    holder = _hand_over(lp.c, successor)
    elector = LeaderElector(db, holder, ttl_s=15.0, renew_s=5.0)
    lp.c = Controller(db, {lp.cloud.name: lp.p}, NoopEngine(), elector=elector,  # type: ignore[arg-type]
                      policies=PolicySet.default, config=LoopConfig(interval_s=0.05, resync_s=3600, retry_base_s=0.01))
    lp.c.short = failover.ShortWatch(BOUND, clock=lp.clock)
    lp.c.unseen = Unobserved(clock=lp.clock)


@SUCCESSORS
def test_a_workload_in_a_region_that_cannot_be_listed_fails_over_at_the_bound_across_a_restart(
        db: Database, loop: Loop, successor: str) -> None:  # noqa: F811  (the fixture imported above)
    lp, cloud = loop, loop.cloud
    _node_for(lp.p, cloud, _workload(db, cloud, "eu-wait", cloud.faulted, PROVISIONING), "eu-wait", cloud.faulted)
    _list_fails(lp)
    _at(lp, 0.0)
    place = f"{cloud.name}/{cloud.faulted[0]}"
    assert _stored(db)[clocks.UNOBSERVED] == {place: _at_s(0.0)}
    _at(lp, BOUND - 10)
    assert _rows(db)["eu-wait"].state == PROVISIONING and not _failovers(db, "eu-wait")
    _replace(db, lp, successor)
    _at(lp, BOUND)
    (ev,) = _failovers(db, "eu-wait")
    assert ev["trigger"] == "unobserved" and f"{place} could not be observed for {BOUND:.0f} s" in ev["reason"], ev
    assert ev["from"][0]["region"] == cloud.faulted[0]
    # (3) The old clock ended with the move (re-placed and waiting for its new nodes is a new one).
    assert list(_stored(db)[clocks.SHORT].values()) in ([], [_at_s(BOUND)])


@SUCCESSORS
def test_a_running_workload_held_there_keeps_its_since_across_a_restart(
        db: Database, loop: Loop, successor: str) -> None:  # noqa: F811  (the fixture imported above)
    lp, cloud = loop, loop.cloud
    _node_for(lp.p, cloud, _workload(db, cloud, "eu-run", cloud.faulted, RUNNING), "eu-run", cloud.faulted)
    _at(lp, 0.0)
    fault = _list_fails(lp)
    _at(lp, 60.0)
    held, since = _rows(db)["eu-run"].message, _since(lp.c, cloud)
    assert held.startswith(f"not observed: {cloud.name}/{cloud.faulted[0]} since "), held
    assert since is not None
    _replace(db, lp, successor)
    for t in (BOUND, 10 * BOUND):
        _at(lp, t)
        row = _rows(db)["eu-run"]
        assert row.state == RUNNING and row.message == held   # the same "since": when it stopped answering
        assert _since(lp.c, cloud) == since                   # the new controller's gauge says so too
    assert not _failovers(db, "eu-run")
    # That "since" is the loop's clock (wall-clock UTC; the test's clock here) when the place stopped answering.
    assert since == 60.0 and " since 1970-01-01 00:01:00 UTC (" in held, held
    # (3) It answers again: the note, the gauge and the stored clock go.
    httpx.delete(lp.mc.urls[cloud.name] + "/_mock/faults", params={"id": fault}).raise_for_status()
    _at(lp, 10 * BOUND + 1)
    assert _rows(db)["eu-run"].message == "1/1 nodes running" and _since(lp.c, cloud) is None
    assert _stored(db) == {clocks.SHORT: {}, clocks.UNOBSERVED: {}}


# -- (3) entries end with their condition, (4) only the leader of the lease's epoch writes them --------------------
class Applier:
    def __init__(self, db: Database, provider: FakeProvider, fenced: Any = lambda: True) -> None:
        self.db, self.provider, self.fenced, self.clock = db, provider, fenced, Clock()
        self.short, self.unseen = failover.ShortWatch(BOUND, clock=self.clock), Unobserved(clock=self.clock)

    def __call__(self, t: float) -> None:
        self.clock.now = t
        obs = observing.observe({"coreweave": self.provider}, LoopMetrics())
        observing.apply_observation(self.db, obs, actor="test", fenced=self.fenced, metrics=LoopMetrics(),
                                    short=self.short, unseen=self.unseen)


def test_the_stored_clocks_go_when_their_condition_ends(db: Database) -> None:
    cloud, cw, keys = coreweave_pair(db)
    cw.fail_list = True
    apply = Applier(db, cw)
    apply(5.0)
    assert _stored(db) == {clocks.SHORT: {keys["wait"]: _at_s(5.0)}, clocks.UNOBSERVED: {"coreweave": _at_s(5.0)}}
    apply(6.0)   # nothing new: the starts stay
    assert _stored(db) == {clocks.SHORT: {keys["wait"]: _at_s(5.0)}, clocks.UNOBSERVED: {"coreweave": _at_s(5.0)}}
    cw.fail_list = False
    apply(7.0)   # it answers: the place's clock goes, and the waiting workload's nodes are up (Running)
    assert _stored(db) == {clocks.SHORT: {}, clocks.UNOBSERVED: {}}
    # Short again, then deleted: no longer watched, its clock goes with it.
    with db.session() as s:
        row = repo.get(s, "wait")
        assert row is not None and row.state == RUNNING
        row.state = PROVISIONING
    cloud.nodes["wait-n"] = dataclasses.replace(cloud.nodes["wait-n"], state=NodeState.PENDING)
    apply(8.0)
    assert _stored(db)[clocks.SHORT] == {keys["wait"]: _at_s(8.0)}
    with db.session() as s:
        row = repo.get(s, "wait")
        assert row is not None
        row.state = DELETING
    apply(9.0)
    assert _stored(db)[clocks.SHORT] == {}


def test_a_deposed_leader_writes_no_clock(db: Database) -> None:
    _, cw, keys = coreweave_pair(db)
    old = LeaderElector(db, "r1", ttl_s=15.0, renew_s=5.0, own_connection=False)
    assert old.step()
    cw.fail_list = True
    Applier(db, cw, old.fenced)(0.0)
    started = {clocks.SHORT: {keys["wait"]: _at_s(0.0)}, clocks.UNOBSERVED: {"coreweave": _at_s(0.0)}}
    assert _stored(db) == started
    # Its lease runs out while it stalls; another replica takes it (a new epoch). The old one has not noticed.
    with db.session() as s:
        s.execute(update(Lease).where(Lease.name == LEASE)
                  .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    new = LeaderElector(db, "r2", ttl_s=15.0, renew_s=5.0, own_connection=False)
    assert new.step() and old.is_leader and not old.fenced()
    # Neither a clock that would start (another workload short) nor one that would stop (the place answers).
    submit(db, "late", gpus=8)
    with db.session() as s:
        row = repo.get(s, "late")
        assert row is not None
        row.state = PROVISIONING
        row.assignments.append(Assignment(pool="late-p", provider="coreweave", region="US-EAST-04",
                                          zone="US-EAST-04A", instance_type="gd-8xh100ib-i128", nodes=1, gpus=8,
                                          gpu_model="H100", capacity_type="on-demand"))
        late = row.key
    stale = Applier(db, cw, old.fenced)
    stale(1.0)
    cw.fail_list = False
    stale(2.0)
    assert _stored(db) == started
    # The leader of the lease's epoch does write.
    Applier(db, cw, new.fenced)(3.0)
    assert _stored(db) == {clocks.SHORT: {late: _at_s(3.0)}, clocks.UNOBSERVED: {}}
