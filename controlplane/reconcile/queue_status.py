"""What the queues look like now, read from the store: usage and borrowing per (queue, flavour), who
waits where and why, and an estimate of when each waiting workload starts. Shared by ``/v1/queues``, the
dashboard and the ``/metrics`` gauges, so they always agree."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import load_only

from controlplane.queues import QueueConfig
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import QUEUED_STATES, Workload, WorkloadState

HOLDING = QUEUED_STATES
RATE_WINDOW = timedelta(hours=1)


@dataclass
class FlavourUse:
    flavour: str
    nominal: int
    borrowing_limit: int | None
    lending_limit: int | None
    used: int = 0

    @property
    def borrowed(self) -> int:
        return max(0, self.used - self.nominal)


@dataclass
class WaitingWorkload:
    name: str
    team: str
    gpus: int
    priority: int
    position: int | None
    reason: str
    message: str
    estimated_start: datetime | None


@dataclass
class QueueView:
    name: str
    cohort: str | None
    weight: float
    teams: tuple[str, ...]
    flavours: list[FlavourUse]
    admitted: int = 0
    preempting: int = 0
    waiting: list[WaitingWorkload] = field(default_factory=list)
    admitted_gpus_last_hour: int = 0

    @property
    def pending(self) -> int:
        """Waiting for admission (the admitted ones in ``waiting`` wait for capacity only)."""
        return sum(1 for w in self.waiting if w.reason != "capacity")


def status(db: Database, config: QueueConfig, now: datetime | None = None) -> list[QueueView]:
    now = now or utcnow()
    views = {q.name: QueueView(q.name, q.cohort, q.weight, q.teams,
                               [FlavourUse(f, qt.nominal, qt.borrowing_limit, qt.lending_limit)
                                for f, qt in q.quotas.items()]) for q in config.queues.values()}
    cols = (Workload.name, Workload.team, Workload.gpus, Workload.priority, Workload.state, Workload.queue,
            Workload.flavour, Workload.admitted_at, Workload.wait_reason, Workload.queue_position,
            Workload.message, Workload.preempted_for, Workload.created_at, Workload.id)
    waiting: dict[str, list[Workload]] = defaultdict(list)
    with db.session() as s:
        for r in s.scalars(select(Workload).where(Workload.state.in_(HOLDING)).options(load_only(*cols))):
            v = views.get(r.queue or "")
            if v is None:
                continue
            if r.admitted_at is not None:
                v.admitted += 1
                v.preempting += r.preempted_for is not None
                for fu in v.flavours:
                    if fu.flavour == r.flavour:
                        fu.used += r.gpus
                if r.admitted_at >= now - RATE_WINDOW:
                    v.admitted_gpus_last_hour += r.gpus
                if r.state == WorkloadState.PENDING.value and r.preempted_for is None:
                    waiting[v.name].append(r)   # admitted, not placeable yet: it waits for capacity
            elif r.state == WorkloadState.PENDING.value:
                waiting[v.name].append(r)
    for name, rows in waiting.items():
        v = views[name]
        # Admitted ones first (they hold quota and wait only for capacity), then by queue position.
        rows.sort(key=lambda r: (r.admitted_at is None, r.queue_position or 0, -r.priority, r.created_at, r.id))
        rate = v.admitted_gpus_last_hour / RATE_WINDOW.total_seconds()   # GPUs admitted per second lately
        ahead = 0
        for r in rows:
            ahead += r.gpus if r.admitted_at is None else 0
            # No history to go by (or a policy that never admits it): no estimate, rather than a wrong one.
            reason = "capacity" if r.admitted_at is not None else (r.wait_reason or "quota")
            eta = now + timedelta(seconds=ahead / rate) if rate > 0 and reason == "quota" else None
            v.waiting.append(WaitingWorkload(r.name, r.team, r.gpus, r.priority, r.queue_position,
                                             reason, r.message, eta))
    return list(views.values())
