"""Quota accounting for one admission cycle: GPUs in use per (queue, flavour) and, per (cohort, flavour),
how much its members borrow and how much unused quota they lend, kept up to date in O(1) per change.

A cohort is consistent when what its members use above their nominal quota (``over``) is covered by
what the others leave unused and are willing to lend (``spare``, each capped by its lending limit)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from controlplane.queues.model import Queue, QueueConfig

Key = tuple[str, str]   # (queue, flavour)


@dataclass
class Ledger:
    config: QueueConfig
    usage: dict[Key, int] = field(default_factory=lambda: defaultdict(int))
    over: dict[Key, float] = field(default_factory=lambda: defaultdict(float))    # (group, flavour)
    spare: dict[Key, float] = field(default_factory=lambda: defaultdict(float))   # (group, flavour)
    capacity: dict[Key, int] = field(default_factory=lambda: defaultdict(int))    # (group, flavour) nominal sum
    version: dict[str, int] = field(default_factory=lambda: defaultdict(int))     # group -> changes so far
    _ceilings: dict[Key, int] = field(default_factory=dict)
    _shares: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for q in self.config.queues.values():
            for f, quota in q.quotas.items():
                self.capacity[(q.group, f)] += quota.nominal
                self._add(q, f, +1)
        for q in self.config.queues.values():
            for f in q.quotas:
                self._ceilings[(q.name, f)] = self._ceiling(q, f)

    def _contrib(self, q: Queue, f: str) -> tuple[float, float]:
        quota = q.quotas.get(f)
        n = quota.nominal if quota else 0
        lend = quota.lending_limit if quota and quota.lending_limit is not None else math.inf
        u = self.usage[(q.name, f)]
        return float(max(0, u - n)), min(lend, float(max(0, n - u)))

    def _add(self, q: Queue, f: str, sign: int) -> None:
        o, s = self._contrib(q, f)
        self.over[(q.group, f)] += sign * o
        self.spare[(q.group, f)] += sign * s

    def change(self, queue: str, f: str, delta: int) -> None:
        q = self.config.queues.get(queue)
        if q is None:   # usage of a queue no longer configured: counted, lends and borrows nothing
            self.usage[(queue, f)] += delta
            return
        self._add(q, f, -1)
        self.usage[(queue, f)] += delta
        self._add(q, f, +1)
        self.version[q.group] += 1
        self._shares.pop(queue, None)

    def fits(self, q: Queue, f: str, gpus: int) -> bool:
        """Whether ``gpus`` more of ``f`` fit ``q``'s own quota plus what it may borrow, now."""
        quota = q.quotas.get(f)
        if quota is None:
            return False
        u = self.usage[(q.name, f)] + gpus
        if quota.borrowing_limit is not None and u > quota.nominal + quota.borrowing_limit:
            return False
        self.change(q.name, f, gpus)
        ok = self.over[(q.group, f)] <= self.spare[(q.group, f)] + 1e-9
        self.change(q.name, f, -gpus)
        self.version[q.group] -= 2   # a trial is not a change
        return ok

    def ceiling(self, q: Queue, f: str) -> int:
        """The most GPUs of ``f`` the queue could ever hold: nominal plus borrowable, within the cohort."""
        return self._ceilings.get((q.name, f), 0)

    def _ceiling(self, q: Queue, f: str) -> int:
        quota = q.quotas.get(f)
        if quota is None:
            return 0
        lendable = 0.0
        for m in self.config.members(q.group):
            mq = m.quotas.get(f)
            if m.name != q.name and mq is not None:
                lendable += mq.nominal if mq.lending_limit is None else mq.lending_limit
        borrow = lendable if quota.borrowing_limit is None else min(lendable, quota.borrowing_limit)
        return int(quota.nominal + borrow)

    def borrowed(self, queue: str, f: str) -> int:
        q = self.config.queues.get(queue)
        quota = q.quotas.get(f) if q else None
        return max(0, self.usage[(queue, f)] - (quota.nominal if quota else 0))

    def lendable(self, q: Queue, f: str) -> int:
        """What the rest of ``q``'s cohort could lend it now."""
        return int(max(0.0, self.spare[(q.group, f)] - self.over[(q.group, f)]))

    def share(self, q: Queue) -> float:
        """Weighted dominant-resource share: the largest fraction of a cohort's capacity the queue borrows
        (above its own nominal), over its flavours, divided by its weight. Within nominal: 0."""
        got = self._shares.get(q.name)
        if got is not None:
            return got
        worst = 0.0
        for f, quota in q.quotas.items():
            over = self.usage[(q.name, f)] - quota.nominal
            if over > 0:
                worst = max(worst, over / max(1, self.capacity[(q.group, f)]))
        self._shares[q.name] = worst / q.weight
        return worst / q.weight

    def share_with(self, q: Queue, f: str | None, gpus: int) -> float:
        """The queue's share were ``gpus`` of ``f`` admitted to it: queues are served by the share their
        next admission would give them, so a queue taking back its own nominal quota goes before one
        that would borrow (and a requeued victim does not win its GPUs straight back)."""
        base = self.share(q)
        quota = q.quotas.get(f or "")
        if quota is None:
            return base
        over = self.usage[(q.name, f or "")] + gpus - quota.nominal
        return max(base, over / max(1, self.capacity[(q.group, f or "")]) / q.weight) if over > 0 else base
