"""A leader lease in a table: works the same on PostgreSQL and SQLite. The holder renews it before it
expires; anyone may take an expired lease, which bumps ``epoch`` (a fencing token the loop checks before
it writes, so a deposed leader that wakes up late cannot overwrite its successor's work)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import Lease


def try_acquire(db: Database, name: str, holder: str, ttl_s: float) -> int | None:
    """Acquire or renew; returns the epoch held, or None when another live holder has it."""
    now = utcnow()
    exp = now + timedelta(seconds=ttl_s)
    with db.session() as s:
        row = s.get(Lease, name)
        if row is None:
            try:
                s.add(Lease(name=name, holder=holder, epoch=1, expires_at=exp, renewed_at=now))
                s.flush()
            except IntegrityError:   # another replica inserted it first
                s.rollback()
                return None
            return 1
        # One conditional UPDATE decides races: only one of two contenders matches the WHERE.
        renewed = s.execute(update(Lease).where(Lease.name == name, Lease.holder == holder,
                                                Lease.epoch == row.epoch, Lease.expires_at >= now)
                            .values(expires_at=exp, renewed_at=now).execution_options(synchronize_session=False))
        if renewed.rowcount == 1:  # type: ignore[attr-defined]  # CursorResult for UPDATE
            return row.epoch
        taken = s.execute(update(Lease).where(Lease.name == name, Lease.epoch == row.epoch,
                                              or_(Lease.expires_at < now, Lease.holder == holder))
                          .values(holder=holder, epoch=row.epoch + 1, expires_at=exp, renewed_at=now)
                          .execution_options(synchronize_session=False))
        return row.epoch + 1 if taken.rowcount == 1 else None  # type: ignore[attr-defined]


def still_held(db: Database, name: str, holder: str, epoch: int) -> bool:
    with db.session() as s:
        row = s.get(Lease, name)
        return bool(row and row.holder == holder and row.epoch == epoch and row.expires_at >= utcnow())


def release(db: Database, name: str, holder: str) -> None:
    """Step down at shutdown so a successor need not wait for the expiry."""
    with db.session() as s:
        s.execute(update(Lease).where(Lease.name == name, Lease.holder == holder)
                  .values(expires_at=utcnow() - timedelta(seconds=1))
                  .execution_options(synchronize_session=False))


def holder(db: Database, name: str) -> tuple[str, int] | None:
    with db.session() as s:
        row = s.get(Lease, name)
        if row is None or row.expires_at < utcnow():
            return None
        return row.holder, row.epoch
