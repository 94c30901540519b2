"""The audit log: who did what to which thing, when, with details. Written in the same transaction as
the change it records, so the log never claims a change that was rolled back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.store.models import AuditEvent


def record(s: Session, *, actor: str, action: str, kind: str, subject: str, team: str | None = None,
           details: dict[str, Any] | None = None) -> AuditEvent:
    ev = AuditEvent(actor=actor, action=action, kind=kind, subject=subject, team=team, details=details or {})
    s.add(ev)
    return ev


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
