"""Edge-triggered passes (controlplane/reconcile/edge.py): a change wakes its workload's work and no other's;
a change the feed never carried is caught by the full resync; a pass that dies after reading a change does
not lose it; the stack plan made from the index is the one made from a full read of the store."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, update

from controlplane.placement.results import Assignment
from controlplane.reconcile import observing, provisioning
from controlplane.reconcile.controller import Controller
from controlplane.reconcile.feed import ChangeFeed, Listener
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from controlplane.store.models import Stack, Workload, WorkloadState
from providers.catalog.model import CapacityType
from tests.controlplane.reconcile.fakes import FakeCloud, FakeDecision, FakeEngine, FakePlacer, FakeResult
from tests.controlplane.reconcile.harness import drive, make_controller, states, submit
from tests.controlplane.store.dbfixture import PgSchema


def _ids(db: Database) -> dict[str, int]:
    with db.session() as s:
        return {w.name: w.id for w in repo.list_(s, include_deleted=True)}


def _settled(c: Controller) -> None:
    """Passes until one looks at nothing (the feed's last changes and the first full comparison are done)."""
    assert c.edge is not None
    for _ in range(20):
        c.tick()
        c.wait_idle()
        if not c.edge.stats.full and not c.edge.stats.refreshed and c.edge.stats.observed == set():
            return
    raise AssertionError(f"never settled: {c.edge.stats}")


def _fleet(db: Database, names: list[str], **cfg: float) -> tuple[Controller, FakeCloud, FakeEngine]:
    cloud, placer = FakeCloud(), FakePlacer()
    engine = FakeEngine(cloud)
    c = make_controller(db, cloud, placer, engine=engine, **cfg)
    for n in names:
        submit(db, n, gpus=8)
    drive(c)
    assert set(states(db).values()) == {"Running"}
    _settled(c)
    return c, cloud, engine


def test_a_change_wakes_exactly_its_workloads_work(db):
    c, cloud, engine = _fleet(db, [f"w{i}" for i in range(6)])
    assert c.edge is not None
    runs = engine.calls
    c.tick()      # nothing changed: nothing re-read, nothing compared, no stack run
    c.wait_idle()
    assert not c.edge.stats.refreshed and c.edge.stats.observed == set() and engine.calls == runs
    with db.session() as s:
        repo.request_delete(s, repo.get(s, "w3"))
    c.tick()
    c.wait_idle()
    wid = _ids(db)["w3"]
    assert c.edge.stats.refreshed == {wid}            # only its row was read again
    assert c.edge.stats.observed == {wid}             # and only it compared with the cloud
    drive(c)
    got = states(db)
    assert got.pop("w3") == "Deleted" and set(got.values()) == {"Running"}
    assert len(cloud.nodes) == 5
    c.stop()


def test_a_change_the_feed_missed_is_caught_by_the_resync(db):
    c, cloud, _ = _fleet(db, ["a", "b"], full_resync_s=300.0)
    assert c.edge is not None
    now = [0.0]
    c.edge.clock = lambda: now[0]
    c.edge.force_resync()
    c.tick()
    # A write the feed never hears of (a bulk UPDATE outside the unit of work): a lost notification and a
    # lost change at once.
    with db.session() as s:
        s.execute(update(Workload).where(Workload.name == "a").values(state=WorkloadState.DELETING.value)
                  .execution_options(synchronize_session=False))
    drive(c, passes=3)
    assert states(db)["a"] == "Deleting" and len(cloud.nodes) == 2   # edge passes cannot know
    now[0] += 301.0                                                 # the resync falls due
    drive(c, passes=4)
    assert states(db) == {"a": "Deleted", "b": "Running"}
    assert len(cloud.nodes) == 1
    c.stop()


def test_a_pass_that_dies_after_reading_a_change_loses_nothing(db, monkeypatch):
    c, cloud, engine = _fleet(db, ["x", "y"])
    assert c.edge is not None
    real = observing.apply_observation
    calls = [0]

    def dies_once(*a, **kw):   # the process dies between reading the change and committing the work
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("killed mid-pass")
        return real(*a, **kw)

    monkeypatch.setattr(observing, "apply_observation", dies_once)
    engine.fail_times = 100            # the stack cannot add the node: only observation can notice x is short
    with db.session() as s:
        repo.get(s, "x").assignments[0].nodes = 2   # x now needs 2 nodes; the cloud holds 1 (its nodes did not change)
    with pytest.raises(RuntimeError):
        c.tick()
    c.wait_idle()
    c.tick()                            # the change was read, its work never committed: compared now
    c.wait_idle()
    assert c.edge.stats.observed == {_ids(db)["x"]}
    assert states(db) == {"x": "Provisioning", "y": "Running"}   # drift seen: 1/2 nodes running
    c.stop()


def test_the_index_plans_what_a_full_read_plans(db):
    c, cloud, _ = _fleet(db, ["p", "q", "r"])
    assert c.edge is not None
    with db.session() as s:
        repo.request_delete(s, repo.get(s, "q"))
        s.get(Stack, "awan-aws-us-east-1").status = "failed"
    submit(db, "s", gpus=8)
    for i in range(3):
        c.edge.sync()
        with db.session() as s:
            edge = c.edge.index.plan(s, resync_s=0.0, force=["awan-aws-us-west-2"])
        full = provisioning.plan(db, resync_s=0.0, force=["awan-aws-us-west-2"])
        assert [(p.spec, p.hash, p.reason) for p in edge] == [(p.spec, p.hash, p.reason) for p in full]
        assert all(p.hash == provisioning.spec_hash(p.spec) for p in edge)
        assert edge or i > 0     # the first has the delete, the failed stack and the new workload to plan
        c.tick()
        c.wait_idle()
    c.stop()


class SpreadPlacer(FakePlacer):
    """One node in each of two regions per workload: replicas spread over stacks (examples/inference-spread)."""

    def __call__(self, workloads, snapshot, policies):
        return FakeResult([FakeDecision(w.name, True, [
            Assignment(w.name, "aws", r, f"{r}a", "p5.48xlarge", 1, 8, "H100", CapacityType.ON_DEMAND,
                       price_per_hour=98.3) for r in ("us-east-1", "us-west-2")], ["spread"]) for w in workloads])


def test_a_workload_spread_over_two_stacks_converges_and_then_plans_nothing(db):
    """The README walk with edge passes on: a workload whose pools sit in two stacks was planned 'changed'
    every pass (one stack was applied with the other's spec, which never held its own pool) and stayed
    Provisioning."""
    cloud = FakeCloud()
    engine = FakeEngine(cloud)
    c = make_controller(db, cloud, SpreadPlacer(), engine=engine)
    assert c.edge is not None
    submit(db, "spread", gpus=16)
    submit(db, "other", gpus=16)
    drive(c, passes=6)
    assert states(db) == {"spread": "Running", "other": "Running"}
    assert {n.region for n in cloud.nodes.values()} == {"us-east-1", "us-west-2"} and len(cloud.nodes) == 4
    with db.session() as s:
        assert c.edge.index.plan(s, resync_s=3600.0) == []
        stored = set(s.scalars(select(Stack.name)))
    assert provisioning.plan(db, resync_s=3600.0) == []   # what was stored is what a full read wants
    assert stored == {"awan-aws-us-east-1", "awan-aws-us-west-2"}
    runs = engine.calls
    drive(c, passes=3)
    assert engine.calls == runs       # converged: no stack is applied again
    c.stop()


def test_the_index_plans_a_spread_workload_as_a_full_read_does(db):
    """Each stack's spec and hash from the index hold that stack's pools only, as provisioning.plan's do."""
    cloud = FakeCloud()
    c = make_controller(db, cloud, SpreadPlacer(), engine=FakeEngine(cloud, fail_times=10**6))
    assert c.edge is not None
    submit(db, "spread", gpus=16)
    drive(c, passes=1)                 # placed; every stack run fails, so both stacks stay to plan
    c.edge.sync()
    with db.session() as s:
        edge = c.edge.index.plan(s, resync_s=0.0)
    full = provisioning.plan(db, resync_s=0.0)
    assert [p.spec.name for p in full] == ["awan-aws-us-east-1", "awan-aws-us-west-2"]
    assert [(p.spec, p.hash, p.reason) for p in edge] == [(p.spec, p.hash, p.reason) for p in full]
    assert all(p.hash == provisioning.spec_hash(p.spec) and len(p.spec.pools) == 1 for p in edge)
    c.stop()


def test_the_feed_hands_a_change_out_until_its_work_is_done(db):
    feed = ChangeFeed(db, settle_s=3600.0)
    submit(db, "one")
    first = feed.poll()
    assert first.bulk == {"research_one"} or first.workloads
    again = feed.poll()               # not advanced: handed out again
    assert again.ids == first.ids
    feed.advance(first)
    assert not feed.poll()            # done: not again (though not yet past the settle window)
    with db.session() as s:
        repo.get(s, "one").message = "m"
    later = feed.poll()
    assert later.workloads == {_ids(db)["one"]}


def _heard_once(db: Database, woke: threading.Event, prefix: str) -> None:
    """Submit until a committed change wakes the listener (it may not be listening yet), then let the
    warm-up's last notifications pass, so what follows starts from a quiet channel."""
    submit(db, f"{prefix}0")
    for i in range(60):
        if woke.wait(1.0):
            break
        submit(db, f"{prefix}{i + 1}")
    assert woke.is_set()
    woke.clear()
    for _ in range(30):    # until the warm-up's last notifications have arrived: 2 s with none
        if not woke.wait(2.0):
            break
        woke.clear()


@pytest.mark.postgres
def test_a_committed_change_notifies_and_a_rolled_back_one_does_not(db):
    if db.dialect != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    woke = threading.Event()
    listener = Listener(db, woke.set)
    listener.start()
    try:
        _heard_once(db, woke, "n")
        with pytest.raises(RuntimeError), db.session() as s:
            repo.get(s, "n0").message = "never committed"
            s.flush()
            raise RuntimeError("roll back")
        assert not woke.wait(3.0)
        with db.session() as s:
            repo.get(s, "n0").message = "committed"
        assert woke.wait(30.0)
    finally:
        listener.stop()


def test_a_change_in_another_schema_of_the_same_database_does_not_wake(db):
    """Installations sharing one PostgreSQL database (a schema each) hear one channel: the payload names the
    schema, and a listener wakes only for its own."""
    if db.dialect != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    other = PgSchema().create()
    odb = Database.from_url(other.url, pool_size=1, max_overflow=0)
    woke = threading.Event()
    listener = Listener(db, woke.set)
    try:
        upgrade(odb.engine)
        listener.start()
        _heard_once(db, woke, "m")
        heard = listener.notified
        for i in range(5):
            submit(odb, f"other-{i}")
        assert not woke.wait(3.0) and listener.notified == heard
        submit(db, "mine")
        assert woke.wait(30.0)
    finally:
        listener.stop()
        odb.dispose()
        other.drop()
