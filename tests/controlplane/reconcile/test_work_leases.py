"""Per-stack work leases on PostgreSQL: concurrent claims are disjoint (SKIP LOCKED), an expired holder's
lease is taken with a new epoch (its fence then refuses), a failed run's backoff holds for every replica,
and failed pools are shared with the placer. SQLite: the same calls work for its one replica."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from controlplane.store import work_leases as wl
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from tests.controlplane.store.dbfixture import PgSchema


@pytest.fixture
def pg_db() -> Iterator[Database]:
    schema = PgSchema().create()
    d = Database.from_url(schema.url, pool_size=8, max_overflow=8)
    upgrade(d.engine)
    yield d
    d.dispose()
    schema.drop()


KEYS = [f"awan-aws-region-{i:02d}" for i in range(40)]


@pytest.mark.postgres
def test_concurrent_claims_are_disjoint_and_cover_everything(pg_db: Database) -> None:
    url = pg_db.engine.url.render_as_string(hide_password=False)
    dbs = [Database.from_url(url, pool_size=2, max_overflow=0) for _ in range(4)]
    got: dict[str, dict[str, int]] = {}
    start = threading.Barrier(4)

    def replica(i: int) -> None:
        start.wait()
        mine: dict[str, int] = {}
        for _ in range(20):   # small bites, as a pass with few free workers takes
            mine.update(wl.claim(dbs[i], wl.STACK, KEYS, f"r{i}", ttl_s=60, limit=3))
        got[f"r{i}"] = mine

    threads = [threading.Thread(target=replica, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    claimed = [k for mine in got.values() for k in mine]
    assert len(claimed) == len(set(claimed)), "a stack was claimed by two replicas"
    assert set(claimed) == set(KEYS)
    held = wl.held(pg_db, wl.STACK)
    assert {k: h for k, (h, _e) in held.items()} == {k: r for r, mine in got.items() for k in mine}
    for d in dbs:
        d.dispose()


# Lives and backoffs are a few seconds, so that what must still hold holds on a loaded machine; their end is
# waited on as a condition (bounded generously), never as a fixed sleep.
LIFE_S = 3.0


def wait_for(cond, bound_s: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + bound_s
    while not cond():
        assert time.monotonic() < end, "condition not met within the bound"
        time.sleep(0.1)


@pytest.mark.postgres
def test_expired_lease_is_taken_with_a_new_epoch_and_the_old_fence_refuses(pg_db: Database) -> None:
    a = wl.claim(pg_db, wl.STACK, ["s1"], "a", ttl_s=LIFE_S, limit=5)
    assert a == {"s1": 1}
    assert wl.claim(pg_db, wl.STACK, ["s1"], "b", ttl_s=30, limit=5) == {}
    assert wl.still_held(pg_db, wl.STACK, "s1", "a", 1)
    wait_for(lambda: not wl.still_held(pg_db, wl.STACK, "s1", "a", 1))   # "a" stopped renewing (killed)
    assert wl.renew(pg_db, "a", 30) == 0               # too late: an expired lease is not renewed
    assert wl.claim(pg_db, wl.STACK, ["s1"], "b", ttl_s=30, limit=5) == {"s1": 2}
    assert not wl.still_held(pg_db, wl.STACK, "s1", "a", 1)
    assert not wl.release(pg_db, wl.STACK, "s1", "a", 1)   # the old claim cannot free the new one
    assert wl.still_held(pg_db, wl.STACK, "s1", "b", 2)
    assert wl.renew(pg_db, "b", 30) == 1


@pytest.mark.postgres
def test_backoff_after_failure_holds_for_everyone_unless_forced(pg_db: Database) -> None:
    (epoch,) = wl.claim(pg_db, wl.STACK, ["s1", "s2"], "a", ttl_s=30, limit=1).values()
    assert wl.release(pg_db, wl.STACK, "s1", "a", epoch, backoff_s=600)
    assert wl.claim(pg_db, wl.STACK, ["s1"], "b", ttl_s=30, limit=5) == {}
    assert wl.claim(pg_db, wl.STACK, ["s1"], "b", ttl_s=30, limit=5, force=["s1"]) == {"s1": 2}
    assert wl.release(pg_db, wl.STACK, "s1", "b", 2, backoff_s=LIFE_S)
    got: dict[str, int] = {}
    wait_for(lambda: bool(got.update(wl.claim(pg_db, wl.STACK, ["s1"], "c", ttl_s=30, limit=5)) or got))
    assert got == {"s1": 3}


@pytest.mark.postgres
def test_blocked_pools_are_shared_and_expire(pg_db: Database) -> None:
    wl.block(pg_db, ["aws|us-east-1a|p5.48xlarge|on-demand|"], ttl_s=LIFE_S)
    wl.block(pg_db, ["gcp|europe-west4-a|a3-highgpu-8g|spot|"], ttl_s=600)
    assert sorted(wl.blocked(pg_db)) == ["aws|us-east-1a|p5.48xlarge|on-demand|",
                                         "gcp|europe-west4-a|a3-highgpu-8g|spot|"]
    wait_for(lambda: wl.blocked(pg_db) == ["gcp|europe-west4-a|a3-highgpu-8g|spot|"])


def test_sqlite_one_replica_uses_the_same_leases(tmp_path) -> None:  # type: ignore[no-untyped-def]
    d = Database.from_url(f"sqlite:///{tmp_path}/a.db")
    upgrade(d.engine)
    assert wl.claim(d, wl.STACK, ["s1", "s2"], "only", ttl_s=30, limit=5) == {"s1": 1, "s2": 1}
    assert wl.claim(d, wl.STACK, ["s1", "s2"], "other", ttl_s=30, limit=5) == {}
    assert wl.release(d, wl.STACK, "s1", "only", 1)
    assert wl.claim(d, wl.STACK, ["s1"], "only", ttl_s=30, limit=5) == {"s1": 2}
    d.dispose()


def test_the_stack_released_longest_ago_is_claimed_first(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A burst: the stacks early in the alphabet fail and are due again every pass; with room for two,
    # the one that has waited (never run) must get a turn, not the two that just ran again.
    d = Database.from_url(f"sqlite:///{tmp_path}/f.db")
    upgrade(d.engine)
    keys = ["awan-gcp-asia-east1", "awan-gcp-asia-south1", "awan-gcp-us-central1"]
    wl.claim(d, wl.STACK, keys, "r", ttl_s=30, limit=3)
    assert wl.release(d, wl.STACK, "awan-gcp-us-central1", "r", 1)
    time.sleep(0.01)
    for k in keys[:2]:
        assert wl.release(d, wl.STACK, k, "r", 1)
    first = wl.claim(d, wl.STACK, keys, "r", ttl_s=30, limit=1)
    assert list(first) == ["awan-gcp-us-central1"]
    d.dispose()


def test_expired_blocks_are_left_out_and_deleted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from sqlalchemy import select, update

    from controlplane.store.coltypes import utcnow
    from controlplane.store.models import WorkLease

    d = Database.from_url(f"sqlite:///{tmp_path}/b.db")
    upgrade(d.engine)
    wl.block(d, ["aws|us-east-1a|p5.48xlarge|on-demand|"], ttl_s=600)
    wl.block(d, ["gcp|europe-west4-a|a3-highgpu-8g|spot|"], ttl_s=600)
    assert sorted(wl.blocked(d)) == ["aws|us-east-1a|p5.48xlarge|on-demand|", "gcp|europe-west4-a|a3-highgpu-8g|spot|"]
    with d.session() as s:   # the aws block's time runs out (set, not waited for: a loaded machine may be slow)
        s.execute(update(WorkLease).where(WorkLease.kind == wl.BLOCK, WorkLease.key.startswith("aws|"))
                  .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert wl.blocked(d) == ["gcp|europe-west4-a|a3-highgpu-8g|spot|"]
    with d.session() as s:
        assert list(s.scalars(select(WorkLease.key).where(WorkLease.kind == wl.BLOCK))) == [
            "gcp|europe-west4-a|a3-highgpu-8g|spot|"]
    d.dispose()


def test_expedite_ends_a_free_leases_backoff_and_leaves_a_held_one_alone(db: Database) -> None:
    """The leader's call for a region that answers again (Controller._check_health): fenced by its term."""
    got = wl.claim(db, wl.STACK, ["a", "b", "c"], "r1", 600, 3)
    wl.release(db, wl.STACK, "a", "r1", got["a"], backoff_s=300)
    wl.release(db, wl.STACK, "b", "r1", got["b"], backoff_s=300)     # "c": still held, its run going on
    assert wl.claim(db, wl.STACK, ["a", "b", "c"], "r2", 600, 3) == {}
    assert wl.free_of(db, wl.STACK, ["a", "b", "c"]) == set()
    assert wl.expedite(db, wl.STACK, ["a", "c"], fenced=lambda: False) == 0     # a leader no more
    assert wl.expedite(db, wl.STACK, ["a", "c"], fenced=lambda: True) == 1
    assert wl.free_of(db, wl.STACK, ["a", "b", "c"]) == {"a"}
    assert wl.held(db, wl.STACK) == {"c": ("r1", got["c"])}
    assert wl.claim(db, wl.STACK, ["a", "b", "c"], "r2", 600, 3) == {"a": got["a"] + 1}
