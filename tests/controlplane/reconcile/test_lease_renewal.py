"""Lease renewal cannot be starved: it has its own connection (a busy API holding every pooled connection
does not delay it), and a renewal the store cannot answer (SQLite's "database is locked" while another
writer holds the lock) does not cost leadership while the lease row still names us. Once our lease could
have expired, we step down. Time is a fake clock; nothing here waits on the wall clock."""

from __future__ import annotations

import sqlite3

from sqlalchemy.engine import make_url

from controlplane.reconcile.leader import LEASE, LeaderElector
from controlplane.store import lease
from controlplane.store.db import Database


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _sqlite_path(db: Database) -> str:
    path = make_url(db.engine.url.render_as_string(hide_password=False)).database
    assert path
    return path


def test_database_is_locked_does_not_cost_leadership_until_the_lease_could_expire(tmp_path):
    db = Database.from_url(f"sqlite:///{tmp_path}/awan.db")
    from controlplane.store.migrate import upgrade

    upgrade(db.engine)
    clock = FakeClock()
    # renew_s bounds how long a renewal waits for SQLite's writer lock; small so the locked attempt fails fast.
    el = LeaderElector(db, "a", ttl_s=30, renew_s=0.2, clock=clock)
    assert el.step() and el.epoch == 1
    writer = sqlite3.connect(_sqlite_path(db), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")   # another writer holds the database-wide write lock
    try:
        clock.now += 5
        assert el.step(), "a locked database cost leadership"
        assert el.epoch == 1 and el.renewal_pending()
        clock.now += 20     # 25 s after the last renewal: still inside the 30 s lease and its 2 s margin
        assert el.step() and el.epoch == 1
        clock.now += 3.5    # 28.5 s: within the 2 s margin of the expiry, where other replicas may take it
        assert not el.step() and el.epoch is None
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    # The lock is gone; our row had not expired on the store's clock, so we renew the same term.
    assert el.step() and el.epoch == 1 and not el.renewal_pending()
    el.stop()
    assert lease.holder(db, LEASE) is None    # released at stop
    db.dispose()


def test_renewal_succeeds_while_the_api_holds_every_pooled_connection(db):
    """On PostgreSQL and SQLite: the shared pool is exhausted (pool_size + max_overflow connections checked
    out by "the API"), and the renewal still goes through on its own connection."""
    pool = db.engine.pool
    held = [db.engine.connect() for _ in range(pool.size() + pool._max_overflow)]  # type: ignore[attr-defined]
    try:
        el = LeaderElector(db, "a", ttl_s=30, renew_s=5)
        assert el.step() and el.epoch == 1
        assert el.step() and el.epoch == 1       # renewed, same term
        other = LeaderElector(db, "b", ttl_s=30, renew_s=5)
        assert not other.step()                   # exclusive as before
        el.stop()
        other.stop(release=False)
    finally:
        for c in held:
            c.close()
    assert lease.holder(db, LEASE) is None


def test_a_lease_taken_by_another_replica_is_given_up_at_once(tmp_path):
    db = Database.from_url(f"sqlite:///{tmp_path}/awan.db")
    from controlplane.store.migrate import upgrade

    upgrade(db.engine)
    clock = FakeClock()
    el = LeaderElector(db, "a", ttl_s=30, renew_s=5, clock=clock)
    assert el.step()
    lease.release(db, LEASE, "a")             # as if it expired
    assert lease.try_acquire(db, LEASE, "b", 30) == 2
    assert not el.step() and el.epoch is None   # the store answered: someone else leads
    el.stop()
    db.dispose()
