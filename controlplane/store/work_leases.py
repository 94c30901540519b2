"""Work leases: units of work (stack runs) that every healthy replica may take, one holder at a time.

dstack's pattern: the rows that need work are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``, so two
replicas claiming at once get disjoint sets without waiting on each other. A claim bumps ``epoch`` (the
fencing token the holder checks before it writes results) and sets ``expires_at``; the holder renews its
leases while it works and releases each when done. A replica that dies (SIGKILL) stops renewing: its
leases expire and the next claim by anyone takes them, with a new epoch, so a late write of the dead one
is refused by the fence.

A released lease keeps an ``expires_at``: a lease released after a failed run stays unclaimable until its
backoff is over (the backoff is shared by every replica, not remembered by the one that failed). Keys in
``force`` (a changed spec, drift) are claimable at once when nobody holds them.

SQLite has no ``FOR UPDATE`` (SQLAlchemy renders nothing there): its single writer lock serialises the
claims instead, and SQLite is the embedded, one-replica store anyway.

Kind "block" rows are pools that failed (a stock-out met by any replica's stack run), shared with the one
placer until they expire; they have no holder.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import WorkLease

STACK = "stack"
BLOCK = "block"


def _ensure(db: Database, kind: str, keys: Iterable[str]) -> None:
    """Insert the rows that do not exist yet (a row per unit of work, free from the start)."""
    want = set(keys)
    if not want:
        return
    with db.session() as s:
        have = set(s.scalars(select(WorkLease.key).where(WorkLease.kind == kind, WorkLease.key.in_(want))))
    missing = want - have
    if not missing:
        return
    past = utcnow() - timedelta(seconds=1)
    for key in sorted(missing):   # one at a time: a concurrent insert of the same key is no error here
        try:
            with db.session() as s:
                s.add(WorkLease(kind=kind, key=key, holder=None, epoch=0, expires_at=past))
        except IntegrityError:
            pass


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
        # Least recently released first (a release sets expires_at to its back-off's end): ordered by key, a
        # burst's stacks early in the alphabet that kept failing took every slot, and us-central1 (300
        # workloads waiting) did not run for 8 minutes.
        rows = s.scalars(select(WorkLease).where(WorkLease.kind == kind, WorkLease.key.in_(list(keys)), free)
                         .order_by(WorkLease.expires_at, WorkLease.key).limit(limit)
                         .with_for_update(skip_locked=True))
        out: dict[str, int] = {}
        for r in rows:
            r.holder, r.epoch, r.expires_at = holder, r.epoch + 1, now + timedelta(seconds=ttl_s)
            out[r.key] = r.epoch
    return out


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
    """The pools still blocked; expired rows are deleted on the way."""
    now = utcnow()
    with db.session() as s:
        s.execute(delete(WorkLease).where(WorkLease.kind == BLOCK, WorkLease.expires_at < now)
                  .execution_options(synchronize_session=False))
        return list(s.scalars(select(WorkLease.key).where(WorkLease.kind == BLOCK)))
