"""Work leases: units of work (stack runs) that every healthy replica may take, one holder at a time.

dstack's pattern: the rows that need work are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``, so two
replicas claiming at once get disjoint sets without waiting on each other. A claim bumps ``epoch`` (the
fencing token the holder checks before it writes results) and sets ``expires_at``; the holder renews its
leases while it works and releases each when done. A replica that dies (SIGKILL) stops renewing: its
leases expire and the next claim by anyone takes them, with a new epoch, so a late write of the dead one
is refused by the fence.

A released lease keeps an ``expires_at``: a lease released after a failed run stays unclaimable until its
backoff is over (the backoff is shared by every replica, not remembered by the one that failed). Keys in
``force`` (a changed spec, drift) are claimable at once when nobody holds them. ``expedite`` ends the backoff of
free leases early (the leader, for the stacks of a region that answers again).

SQLite has no ``FOR UPDATE`` (SQLAlchemy renders nothing there): its single writer lock serialises the
claims instead, and SQLite is the embedded, one-replica store anyway.

Kind "block" rows are pools that failed (a stock-out met by any replica's stack run), shared with the one
placer until they expire; they have no holder.

Kinds taken a round at a time (controlplane/reconcile/sharing): "observe" (one scope's list of live
nodes: a region of a provider, or a provider listed whole), "dispatch" (following one workload's run on its clusters), "sweep" (collecting one cluster's
garbage). Each is claimed for one round and given back with a backoff of one round, so no other replica
repeats it in the same round. Kind "replica" is one row per live replica (renewed with its other leases):
the count that splits each round's work into fair shares. Kind "runner" is one row per live runner process
(controlplane/reconcile/runner.py): while one is live the leader leaves stack runs to them.

Observations (scope -> nodes) are published to ``observations``, fenced by the observe lease, for the
one leader to apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import Observed, WorkLease

STACK = "stack"
BLOCK = "block"
OBSERVE = "observe"
DISPATCH = "dispatch"
SWEEP = "sweep"
REPLICA = "replica"
RUNNER = "runner"


def _ensure(db: Database, kind: str, keys: Iterable[str]) -> None:
    """Insert the rows that do not exist yet (a row per unit of work, free from the start), in one
    statement; a concurrent insert of the same key is no error (ON CONFLICT DO NOTHING)."""
    want = sorted(set(keys))
    if not want:
        return
    with db.session() as s:
        have = set(s.scalars(select(WorkLease.key).where(WorkLease.kind == kind, WorkLease.key.in_(want))))
    missing = [k for k in want if k not in have]
    if not missing:
        return
    past = utcnow() - timedelta(seconds=1)
    rows = [{"kind": kind, "key": k, "holder": None, "epoch": 0, "expires_at": past} for k in missing]
    ins = pg_insert(WorkLease) if db.dialect == "postgresql" else sqlite_insert(WorkLease)
    with db.session() as s:
        s.execute(ins.values(rows).on_conflict_do_nothing(index_elements=["kind", "key"]))


def claim(db: Database, kind: str, keys: Sequence[str], holder: str, ttl_s: float, limit: int,
          force: Iterable[str] = ()) -> dict[str, int]:
    """Claim up to ``limit`` of ``keys`` that nobody holds now; returns key -> epoch.

    Free: no holder and past its backoff (or named in ``force``), or a holder whose lease expired."""
    if limit <= 0 or not keys:
        return {}
    _ensure(db, kind, keys)
    now = utcnow()
    forced = [k for k in keys if k in set(force)]
    free = or_(and_(WorkLease.holder.is_(None), or_(WorkLease.expires_at < now, WorkLease.key.in_(forced))),
               and_(WorkLease.holder.is_not(None), WorkLease.expires_at < now))
    with db.session() as s:
        # LIMIT in the query: only the rows this replica takes are locked, the rest stay claimable by others.
        # Least recently released first (a release sets expires_at to its back-off's end), then the longest
        # expired: ordered by key, a burst's stacks early in the alphabet that kept failing took every slot
        # (us-central1, 300 workloads waiting, did not run for 8 minutes), and work left over by a round
        # whose replicas had no room for it comes first in the next one.
        got = list(s.scalars(select(WorkLease.key).where(WorkLease.kind == kind, WorkLease.key.in_(list(keys)), free)
                             .order_by(WorkLease.expires_at, WorkLease.key).limit(limit)
                             .with_for_update(skip_locked=True)))
        if not got:
            return {}
        res = s.execute(update(WorkLease).where(WorkLease.kind == kind, WorkLease.key.in_(got))
                        .values(holder=holder, epoch=WorkLease.epoch + 1, expires_at=now + timedelta(seconds=ttl_s))
                        .returning(WorkLease.key, WorkLease.epoch).execution_options(synchronize_session=False))
        return {k: int(e) for k, e in res}


def renew(db: Database, holder: str, ttl_s: float) -> int:
    """Extend every live lease ``holder`` has (one statement); returns how many. An expired one is not
    renewed: someone may have taken it, and its holder's fence will tell it so."""
    now = utcnow()
    with db.session() as s:
        res = s.execute(update(WorkLease).where(WorkLease.holder == holder, WorkLease.expires_at >= now)
                        .values(expires_at=now + timedelta(seconds=ttl_s))
                        .execution_options(synchronize_session=False))
        return int(res.rowcount)  # type: ignore[attr-defined]  # CursorResult for UPDATE


def still_held(db: Database, kind: str, key: str, holder: str, epoch: int) -> bool:
    with db.session() as s:
        row = s.get(WorkLease, (kind, key))
        return bool(row and row.holder == holder and row.epoch == epoch and row.expires_at >= utcnow())


def release(db: Database, kind: str, key: str, holder: str, epoch: int, backoff_s: float = 0.0) -> bool:
    """Give the lease back (only the claim of ``epoch``): free at once, or after ``backoff_s``."""
    with db.session() as s:
        res = s.execute(update(WorkLease).where(WorkLease.kind == kind, WorkLease.key == key,
                                                WorkLease.holder == holder, WorkLease.epoch == epoch)
                        .values(holder=None, expires_at=utcnow() + timedelta(seconds=backoff_s - 0.001))
                        .execution_options(synchronize_session=False))
        return int(res.rowcount) == 1  # type: ignore[attr-defined]


def release_holder(db: Database, holder: str) -> int:
    """Free at once every lease ``holder`` has (every kind), for a holder known to be dead: a runner or
    controller process that exited, whose parent saw it go (child.py). Its work is taken by the next claim
    instead of after the leases' expiry. Fenced by the holder's name: a lease another holder took over since
    (a new holder and epoch) is not touched; the caller must be sure no live process acts under ``holder``.
    Returns how many were freed."""
    with db.session() as s:
        res = s.execute(update(WorkLease).where(WorkLease.holder == holder)
                        .values(holder=None, expires_at=utcnow() - timedelta(milliseconds=1))
                        .execution_options(synchronize_session=False))
        return int(res.rowcount)  # type: ignore[attr-defined]


def expedite(db: Database, kind: str, keys: Iterable[str], fenced: Callable[[], bool] | None = None) -> int:
    """End the backoff of the free leases of ``keys`` now: claimable by anyone at their next pass. The leader
    calls it for a region that answers again (Controller._check_health): its stacks' runs failed during the
    outage and backed off (for minutes), and the pools left there should be cleaned up now, by whichever
    replica or runner claims them. A held lease is not touched (its holder is running it; one that expired is
    claimable anyway). ``fenced``: the caller's fence (the leader's term), checked in the write's transaction.
    Returns how many were freed early."""
    want = sorted(set(keys))
    if not want:
        return 0
    now = utcnow()
    with db.session() as s:
        if fenced is not None and not fenced():
            return 0
        res = s.execute(update(WorkLease).where(WorkLease.kind == kind, WorkLease.key.in_(want),
                                                WorkLease.holder.is_(None), WorkLease.expires_at >= now)
                        .values(expires_at=now - timedelta(milliseconds=1))
                        .execution_options(synchronize_session=False))
        return int(res.rowcount)  # type: ignore[attr-defined]


def free_of(db: Database, kind: str, keys: Iterable[str]) -> set[str]:
    """The keys among ``keys`` whose lease is claimable by anyone now (no live holder, past its backoff)."""
    want = sorted(set(keys))
    if not want:
        return set()
    now = utcnow()
    with db.session() as s:
        return set(s.scalars(select(WorkLease.key).where(
            WorkLease.kind == kind, WorkLease.key.in_(want), WorkLease.expires_at < now)))


def release_many(db: Database, kind: str, claims: dict[str, int], holder: str, backoff_s: float = 0.0) -> int:
    """Give back several claims of ``kind`` at once (each only if it is still the claim of its epoch)."""
    if not claims:
        return 0
    until = utcnow() + timedelta(seconds=backoff_s - 0.001)
    with db.session() as s:
        rows = s.scalars(select(WorkLease).where(WorkLease.kind == kind, WorkLease.holder == holder,
                                                 WorkLease.key.in_(list(claims))).with_for_update())
        n = 0
        for r in rows:
            if claims.get(r.key) == r.epoch:
                r.holder, r.expires_at = None, until
                n += 1
        return n


def still_mine(s: Session, kind: str, claims: dict[str, int], holder: str) -> set[str]:
    """The keys of ``claims`` whose lease is still ours at that epoch, checked in the caller's write
    transaction with the rows share-locked: a claim by another replica (FOR UPDATE) waits for our
    commit, so the write and the fence cannot interleave with a takeover (PostgreSQL; SQLite has one
    writer anyway)."""
    if not claims:
        return set()
    now = utcnow()
    rows = s.execute(select(WorkLease.key, WorkLease.epoch).where(
        WorkLease.kind == kind, WorkLease.holder == holder, WorkLease.key.in_(list(claims)),
        WorkLease.expires_at >= now).with_for_update(read=True))
    return {k for k, e in rows if claims.get(k) == e}


def count_live(db: Database, kind: str) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(WorkLease).where(
            WorkLease.kind == kind, WorkLease.holder.is_not(None), WorkLease.expires_at >= utcnow())) or 0)


def prune(db: Database, kind: str, idle_s: float) -> int:
    """Delete rows of ``kind`` nobody has held for ``idle_s`` (finished workloads' dispatch leases): a
    row that is needed again is simply inserted again, free."""
    with db.session() as s:
        res = s.execute(delete(WorkLease).where(WorkLease.kind == kind, WorkLease.holder.is_(None),
                                                WorkLease.expires_at < utcnow() - timedelta(seconds=idle_s))
                        .execution_options(synchronize_session=False))
        return int(res.rowcount)  # type: ignore[attr-defined]


def held(db: Database, kind: str) -> dict[str, tuple[str, int]]:
    """key -> (holder, epoch) of every live lease of ``kind`` (for status and tests)."""
    now = utcnow()
    with db.session() as s:
        return {r.key: (r.holder, r.epoch) for r in s.scalars(
            select(WorkLease).where(WorkLease.kind == kind, WorkLease.holder.is_not(None),
                                    WorkLease.expires_at >= now)) if r.holder is not None}


# -- failed pools, shared with the placer ------------------------------------------------------------
def block(db: Database, keys: Iterable[str], ttl_s: float) -> None:
    """Record pools that failed until ``ttl_s`` from now (a later failure extends, never shortens)."""
    want = sorted(set(keys))
    if not want:
        return
    _ensure(db, BLOCK, want)
    until = utcnow() + timedelta(seconds=ttl_s)
    with db.session() as s:
        s.execute(update(WorkLease).where(WorkLease.kind == BLOCK, WorkLease.key.in_(want),
                                          WorkLease.expires_at < until)
                  .values(expires_at=until).execution_options(synchronize_session=False))


def blocked(db: Database) -> list[str]:
    """The pools still blocked; expired rows are deleted on the way, when there are any: every placing pass
    reads this, and a DELETE of nothing still made each one a write transaction (on SQLite the database's
    write lock and a commit to disk)."""
    now = utcnow()
    with db.session() as s:
        rows = s.execute(select(WorkLease.key, WorkLease.expires_at).where(WorkLease.kind == BLOCK)).all()
        if any(at < now for _, at in rows):
            s.execute(delete(WorkLease).where(WorkLease.kind == BLOCK, WorkLease.expires_at < now)
                      .execution_options(synchronize_session=False))
        return [key for key, at in rows if at >= now]


# -- observations, published by the observe lease's holder for the leader ----------------------------
def publish(s: Session, provider: str, nodes: list[dict[str, Any]] | None, error: str | None,
            observed_at: Any, holder: str, epoch: int) -> bool:
    """Record one scope's observation (in the caller's fenced transaction); an older one than the row
    has is not written (observations only move forward)."""
    row = s.get(Observed, provider, with_for_update=True)
    error = None if error is None else error[:255]
    if row is None:
        s.add(Observed(provider=provider, nodes={"nodes": nodes or []}, error=error, observed_at=observed_at,
                       published_at=utcnow(), holder=holder, epoch=epoch))
        return True
    if row.observed_at >= observed_at:
        return False
    if error is None:
        row.nodes = {"nodes": nodes or []}
    row.error, row.observed_at, row.published_at, row.holder, row.epoch = error, observed_at, utcnow(), holder, epoch
    return True


def observations(db: Database, max_age_s: float) -> list[Observed]:
    """The observations published in the last ``max_age_s`` (older ones say nothing: "unknown")."""
    since = utcnow() - timedelta(seconds=max_age_s)
    with db.session() as s:
        rows = list(s.scalars(select(Observed).where(Observed.published_at >= since)))
        s.expunge_all()
        return rows
