"""Retries of a run: an incarnation whose pods were lost (its workload re-placed or its nodes repaired)
is over; the next one is counted against ``spec.run.maxRetries``, and past it the workload fails with
the reason. Called inside the transaction that moves the workload, so the count and the move are one."""

from __future__ import annotations

from typing import Any

from controlplane.store import audit
from controlplane.store.coltypes import utcnow
from controlplane.store.models import Workload, WorkloadState

MAX_RETRIES_REASON = "MaxRetriesExceeded"


def max_retries(spec: dict[str, Any]) -> int:
    return int(((spec.get("spec") or {}).get("run") or {}).get("maxRetries", 3))


def is_run(spec: dict[str, Any]) -> bool:
    return bool((spec.get("spec") or {}).get("template"))


def end_incarnation(s: Any, row: Workload, *, actor: str, why: str) -> bool:
    """The current incarnation was dispatched and is lost: count a retry. Returns True when that was the
    last one allowed (the row is then Failed, its assignments cleared, capacity released)."""
    if not is_run(row.spec) or row.dispatched_at is None:
        return False
    row.restarts = (row.restarts or 0) + 1
    row.dispatched_at = None
    limit = max_retries(row.spec)
    if row.restarts <= limit:
        audit.record(s, actor=actor, action="retry", kind="workload", subject=row.name, team=row.team,
                     details={"restarts": row.restarts, "maxRetries": limit, "why": why[:300]})
        return False
    now = utcnow()
    row.restarts = limit      # the retries made; this loss would have been one more
    row.state, row.reason = WorkloadState.FAILED.value, MAX_RETRIES_REASON
    row.message = f"{why}; all {limit} retries (maxRetries) used"[:1000]
    row.finished_at = row.released_at = now
    row.assignments.clear()
    audit.record(s, actor=actor, action="failed", kind="workload", subject=row.name, team=row.team,
                 details={"reason": MAX_RETRIES_REASON, "restarts": limit, "maxRetries": limit,
                          "why": why[:300]})
    return True
