"""Retries of a run: an incarnation whose pods were lost (its workload re-placed or its nodes repaired)
is over; the next one is counted against ``spec.run.maxRetries``, and past it the workload fails with
the reason. Called inside the transaction that moves the workload, so the count and the move are one.

A preempted run also ends its incarnation (``preempted``), but that is not a retry: ``restarts`` (the
incarnation number, which names the run's Kubernetes objects) moves on with ``preemptions``, and the
retries counted against maxRetries are the difference (``retries``). A planned move (off a Capacity Block
before it ends, ``moved``) is counted the same way: ``preemptions`` holds every incarnation the control
plane ended on purpose."""

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


def checkpoint_uri(spec: dict[str, Any]) -> str | None:
    cp = ((spec.get("spec") or {}).get("run") or {}).get("checkpoint") or {}
    uri = cp.get("uri")
    return str(uri) if uri else None


def retries(restarts: int | None, preemptions: int | None) -> int:
    """The retries a run has used: its incarnations after the first, less the ones preemptions started."""
    return max(0, (restarts or 0) - (preemptions or 0))


def preempted(row: Workload) -> str | None:
    """A run preempted (called with its requeue, after ``preemptions`` was counted): the incarnation is over
    without a retry. The next one gets new objects (the old ones are collected) from the unchanged spec, so
    its pods are given the same ``spec.run.checkpoint`` location to resume from. Returns that location."""
    if not is_run(row.spec):
        return None
    row.restarts = (row.restarts or 0) + 1
    row.dispatched_at = None
    return checkpoint_uri(row.spec)


def moved(row: Workload) -> None:
    """A dispatched run the control plane moves on purpose: its incarnation ends without a retry (the next
    resumes from the same checkpoint on the new capacity). Not dispatched: nothing ran, nothing ends."""
    if not is_run(row.spec) or row.dispatched_at is None:
        return
    row.restarts = (row.restarts or 0) + 1
    row.preemptions = (row.preemptions or 0) + 1
    row.dispatched_at = None


def end_incarnation(s: Any, row: Workload, *, actor: str, why: str) -> bool:
    """The current incarnation was dispatched and is lost: count a retry. Returns True when that was the
    last one allowed (the row is then Failed, its assignments cleared, capacity released)."""
    if not is_run(row.spec) or row.dispatched_at is None:
        return False
    row.restarts = (row.restarts or 0) + 1
    row.dispatched_at = None
    limit = max_retries(row.spec)
    used = retries(row.restarts, row.preemptions)
    if used <= limit:
        audit.record(s, actor=actor, action="retry", kind="workload", subject=row.name, team=row.team,
                     details={"restarts": used, "maxRetries": limit, "why": why[:300]})
        return False
    now = utcnow()
    row.restarts -= 1         # the retries made; this loss would have been one more
    row.state, row.reason = WorkloadState.FAILED.value, MAX_RETRIES_REASON
    row.message = f"{why}; all {limit} retries (maxRetries) used"[:1000]
    row.finished_at = row.released_at = now
    row.assignments.clear()
    audit.record(s, actor=actor, action="failed", kind="workload", subject=row.name, team=row.team,
                 details={"reason": MAX_RETRIES_REASON, "restarts": limit, "maxRetries": limit,
                          "why": why[:300]})
    return True
