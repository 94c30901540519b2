"""Two replicas on one PostgreSQL: exactly one leads; when the leader dies (lease not released), the
other takes over after the expiry and the loop goes on, nothing lost and nothing done twice."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from controlplane.store import audit, lease
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from tests.controlplane.reconcile.fakes import FakeCloud, FakePlacer
from tests.controlplane.reconcile.harness import make_controller, states, submit
from tests.controlplane.store.dbfixture import PgSchema

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_db() -> Iterator[Database]:
    schema = PgSchema().create()
    d = Database.from_url(schema.url, pool_size=4, max_overflow=4)
    upgrade(d.engine)
    yield d
    d.dispose()
    schema.drop()


def wait_for(cond, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_one_leader_then_failover_without_loss_or_duplicates(pg_db):
    cloud, placer = FakeCloud(), FakePlacer()
    # Each replica its own Database (own pool), as two processes would have.
    db_b = Database.from_url(pg_db.engine.url.render_as_string(hide_password=False), pool_size=4, max_overflow=4)
    a = make_controller(pg_db, cloud, placer, holder="replica-a", ttl_s=1.5)
    b = make_controller(db_b, cloud, placer, holder="replica-b", ttl_s=1.5)
    try:
        a.start()
        wait_for(lambda: a.elector.is_leader)
        b.start()
        for i in range(6):
            submit(pg_db, f"job-{i}")
        wait_for(lambda: set(states(pg_db).values()) == {"Running"})
        assert not b.elector.is_leader and lease.holder(pg_db, "reconciler")[0] == "replica-a"

        a.stop(release_lease=False)                      # "killed": the lease is left to expire
        for i in range(6, 10):
            submit(pg_db, f"job-{i}")
        wait_for(lambda: b.elector.is_leader)
        wait_for(lambda: len(states(pg_db)) == 10 and set(states(pg_db).values()) == {"Running"})
        holder, epoch = lease.holder(pg_db, "reconciler")
        # epoch 2 is b's first term; on a loaded machine b may miss a renewal inside the 1.5 s TTL and take
        # the lease again with a higher epoch, which the fencing below must (and does) make harmless
        assert holder == "replica-b" and epoch >= 2

        assert placer.decided == {f"job-{i}": 1 for i in range(10)}          # each placed exactly once
        assert len(cloud.creates) == len(set(cloud.creates)) == 20          # 2 nodes each, none twice
        with pg_db.session() as s:
            for i in range(10):
                assert audit.count(s, action="placed", subject=f"job-{i}") == 1
                assert audit.count(s, action="running", subject=f"job-{i}") == 1
            late = {e.actor for e in audit.events(s, kind="workload", limit=1000)
                    if e.action == "placed" and e.subject in {f"job-{i}" for i in range(6, 10)}}
        assert late == {"controller:replica-b"}
    finally:   # a thread left running holds locks the schema drop would deadlock on
        a.stop(release_lease=False)
        b.stop()
        db_b.dispose()


def test_lease_is_exclusive_and_fenced(pg_db):
    assert lease.try_acquire(pg_db, "x", "one", 30) == 1
    assert lease.try_acquire(pg_db, "x", "two", 30) is None
    assert lease.try_acquire(pg_db, "x", "one", 30) == 1            # renewal keeps the epoch
    lease.release(pg_db, "x", "one")
    assert lease.try_acquire(pg_db, "x", "two", 30) == 2
    assert not lease.still_held(pg_db, "x", "one", 1)
    assert lease.still_held(pg_db, "x", "two", 2)
