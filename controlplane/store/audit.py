"""The audit log: who did what to which thing, when, with details. Written in the same transaction as
the change it records, so the log never claims a change that was rolled back.

Each record is also one structured log event (``workload placed``, ``workload failover``, ``stack
stack-applied``...), written only once its transaction commits, for the same reason."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, event, select
from sqlalchemy.orm import Session

from controlplane.logs import get_logger
from controlplane.store.coltypes import utcnow
from controlplane.store.models import AuditEvent

log = get_logger("awan.events")
_PENDING = "awan.audit.pending"
# Built once: a statement's construction is paid per call, not cached.
_INSERT = cast(Table, AuditEvent.__table__).insert()   # a mapped class's Table (typed as its base, FromClause)


def record(s: Session, *, actor: str, action: str, kind: str, subject: str, team: str | None = None,
           details: dict[str, Any] | None = None) -> AuditEvent:
    ev = AuditEvent(actor=actor, action=action, kind=kind, subject=subject, team=team, details=details or {})
    s.add(ev)
    s.info.setdefault(_PENDING, []).append(
        {"event": f"{kind} {action}", "kind": kind, "subject": subject, "team": team, "actor": actor,
         "details": dict(details or {})})
    return ev


def rows(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Audit rows for ``insert_many`` from dicts of ``record``'s keyword arguments (built before a
    transaction's first write, to keep its write lock short)."""
    now = utcnow()
    return [{"actor": r["actor"], "action": r["action"], "kind": r["kind"], "subject": r["subject"],
             "team": r.get("team"), "details": r.get("details") or {}, "at": now} for r in records]


def insert_many(s: Session, rows: Sequence[dict[str, Any]]) -> None:
    """``record`` for many events in batched INSERTs (one large submit records one event per workload)."""
    for i in range(0, len(rows), 1000):
        s.execute(_INSERT, rows[i:i + 1000])
    pending = s.info.setdefault(_PENDING, [])
    for r in rows:
        pending.append({"event": f"{r['kind']} {r['action']}", "kind": r["kind"], "subject": r["subject"],
                        "team": r["team"], "actor": r["actor"], "details": dict(r["details"])})


@event.listens_for(Session, "after_commit")
def _log_committed(s: Session) -> None:
    for e in s.info.pop(_PENDING, ()):
        log.info(e.pop("event"), **e)


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(s: Session, _previous: Any) -> None:
    s.info.pop(_PENDING, None)


def events(s: Session, *, team: str | None = None, kind: str | None = None, subject: str | None = None,
           after_id: int = 0, limit: int = 100) -> Sequence[AuditEvent]:
    """Oldest first after ``after_id``, so a client can follow the stream by passing the last id it saw."""
    q = select(AuditEvent).where(AuditEvent.id > after_id)
    if team is not None:
        q = q.where(AuditEvent.team == team)
    if kind is not None:
        q = q.where(AuditEvent.kind == kind)
    if subject is not None:
        q = q.where(AuditEvent.subject == subject)
    return s.scalars(q.order_by(AuditEvent.id).limit(limit)).all()


def count(s: Session, *, action: str, subject: str | None = None) -> int:
    from sqlalchemy import func

    q = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
    if subject is not None:
        q = q.where(AuditEvent.subject == subject)
    return int(s.scalar(q) or 0)
