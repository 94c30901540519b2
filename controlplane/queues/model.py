"""The queue configuration the admission engine reads: plain frozen dataclasses (no pydantic inside)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

WithinQueue = Literal["LowerPriority", "Never"]
Reclaim = Literal["Any", "LowerPriority", "Never"]
# Kueue's fair-sharing preemption strategies (see fairshare.py).
FairStrategy = Literal["LessThanOrEqualToFinalShare", "LessThanInitialShare"]


@dataclass(frozen=True, slots=True)
class Flavour:
    """A kind of GPU quota is counted in: a GPU model, optionally narrowed to a provider and a capacity type."""

    name: str
    gpu_model: str
    provider: str | None = None
    capacity_type: str | None = None

    def accepts(self, models: Sequence[str], capacity_types: Sequence[str],
                providers: Sequence[str] | None) -> bool:
        """Whether a workload asking for ``models`` (any of), ``capacity_types`` (any of) and, when it
        names regions, ``providers`` (any of) can run on this flavour."""
        if self.gpu_model not in models:
            return False
        if self.capacity_type is not None and self.capacity_type not in capacity_types:
            return False
        return self.provider is None or providers is None or self.provider in providers


@dataclass(frozen=True, slots=True)
class Quota:
    """GPUs of one flavour: ``nominal`` is the queue's own; it may use up to ``borrowing_limit`` more from
    its cohort (None: no limit) and lends at most ``lending_limit`` of its unused nominal (None: all)."""

    nominal: int
    borrowing_limit: int | None = None
    lending_limit: int | None = None


@dataclass(frozen=True, slots=True)
class Queue:
    name: str
    teams: tuple[str, ...] = ()
    cohort: str | None = None
    weight: float = 1.0
    quotas: dict[str, Quota] = field(default_factory=dict)   # flavour name -> quota, in preference order
    within_queue: WithinQueue = "LowerPriority"
    reclaim: Reclaim = "Any"

    @property
    def group(self) -> str:
        """The cohort this queue shares quota in; a queue without one is a cohort of its own."""
        return self.cohort if self.cohort is not None else f"queue:{self.name}"


@dataclass(frozen=True, slots=True)
class Protection:
    """Workloads preemption leaves alone, except to reclaim the preemptor queue's own nominal quota."""

    running_longer_than_s: float | None = None
    priority_at_least: int | None = None

    def protects(self, priority: int, run_s: float) -> bool:
        if self.priority_at_least is not None and priority >= self.priority_at_least:
            return True
        return self.running_longer_than_s is not None and run_s > self.running_longer_than_s


@dataclass(frozen=True, slots=True)
class QueueConfig:
    flavours: dict[str, Flavour] = field(default_factory=dict)
    queues: dict[str, Queue] = field(default_factory=dict)
    grace_period_s: float = 0.0
    protection: Protection = field(default_factory=Protection)
    sources: tuple[str, ...] = ()
    # Fair-share preemption across a cohort's queues, tried in this order; empty: off (a queue then
    # preempts other queues only to reclaim its own nominal quota).
    fair_sharing: tuple[FairStrategy, ...] = ()

    @property
    def enabled(self) -> bool:
        """No queues defined: admission is open (every workload goes straight to placement, as before)."""
        return bool(self.queues)

    def queue_for_team(self, team: str) -> str | None:
        """A team's default queue: the first queue that lists the team, else a queue named after it."""
        for q in self.queues.values():
            if team in q.teams:
                return q.name
        return team if team in self.queues else None

    def members(self, group: str) -> list[Queue]:
        return [q for q in self.queues.values() if q.group == group]
