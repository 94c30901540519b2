"""The change feed's write side: every flush that changes a workload (its assignments included), a stack or a
policy adds one ``changes`` row per object, in the same transaction, so a change is in the feed exactly when
it is committed. On PostgreSQL the transaction also NOTIFYs ``awan_changes`` (delivered at commit, never for
a rolled-back write) to wake the loop at once; SQLite has no notification: the loop reads the same feed on
its interval.

Writes that bypass the ORM's unit of work (bulk INSERTs of new workloads) call ``record`` themselves. Bulk
UPDATEs of lock tokens add nothing: a lock is not a change of what a workload is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from controlplane.store.coltypes import utcnow
from controlplane.store.models import Assignment, ChangeRecord, PolicyDocument, Stack, Workload

CHANNEL = "awan_changes"
# Bookkeeping the loop writes on rows it merely holds: not a change of the workload.
_IGNORED = frozenset({"lock_token", "lock_expires_at", "heartbeat_at", "updated_at"})
_TABLE = cast(Table, ChangeRecord.__table__)   # a mapped class's Table (typed as its base, FromClause)
_INSERT = _TABLE.insert()       # built once: a statement's construction is paid per call, not cached
_NOTIFY = text("SELECT pg_notify(:c, current_schema())")


@dataclass(frozen=True, slots=True)
class Change:
    kind: str            # workload | stack | policy
    ref: int | None      # the workload's id
    key: str


def _changed(obj: Any) -> bool:
    state = inspect(obj)
    for attr in state.mapper.attrs:
        if attr.key in _IGNORED:
            continue
        if state.attrs[attr.key].history.has_changes():
            return True
    return False


def _of(obj: Any, session: Session, *, check: bool) -> Change | None:
    if isinstance(obj, Workload):
        if check and not _changed(obj):
            return None
        return Change("workload", obj.id, obj.key)
    if isinstance(obj, Assignment):
        wid = obj.workload_id if obj.workload_id is not None else (obj.workload.id if obj.workload else None)
        return Change("workload", wid, "") if wid is not None else None
    if isinstance(obj, Stack):
        return Change("stack", None, obj.name)
    if isinstance(obj, PolicyDocument):
        return Change("policy", None, obj.name)
    return None


def _after_flush(session: Session, _ctx: Any) -> None:
    found: dict[tuple[str, int | str], Change] = {}
    for objs, check in ((session.new, False), (session.dirty, True), (session.deleted, False)):
        for obj in objs:
            c = _of(obj, session, check=check)
            if c is not None:
                found.setdefault((c.kind, c.ref if c.ref is not None else c.key), c)
    if found:
        record(session, found.values())


def record(session: Session, changes: Iterable[Change]) -> None:
    """Add ``changes`` to the feed in ``session``'s transaction (and, on PostgreSQL, notify at commit)."""
    now = utcnow()
    rows = [{"at": now, "kind": c.kind, "ref": c.ref, "key": c.key[:255]} for c in changes]
    if not rows:
        return
    conn = session.connection()
    for i in range(0, len(rows), 1000):
        conn.execute(_INSERT, rows[i:i + 1000])
    if conn.dialect.name == "postgresql":
        # One notification per transaction is enough: PostgreSQL folds identical ones, the reader reads the feed.
        # The payload is the schema written: installations sharing one database (a schema each) hear the
        # channel's every notification and wake only for their own.
        conn.execute(_NOTIFY, {"c": CHANNEL})


def install(factory: sessionmaker[Session]) -> None:
    """Record the changes of every session ``factory`` makes."""
    event.listen(factory, "after_flush", _after_flush)
