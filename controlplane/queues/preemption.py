"""Victim selection: which admitted workloads to stop so that a pending one fits, losing the fewest
GPU-hours of work (GPUs x time since the victim last started or checkpointed).

Two kinds of candidates (Kueue's model):

* in the preemptor's own queue, workloads of strictly lower priority (``withinQueue: LowerPriority``);
* in the other queues of its cohort, when the preemptor fits its own queue's nominal quota, workloads of
  queues that borrow (use above their nominal quota), any priority or lower only
  (``reclaimWithinCohort``); a queue stops being a candidate once it no longer borrows, so reclaim takes
  back only what was lent.

Protected workloads (run longer than N hours, or of a protected priority) are never candidates, except
when the preemptor's queue reclaims its own nominal quota from a borrower: borrowing must not become a way
to keep lent GPUs for good. (A third kind, a queue below its fair share taking borrowed GPUs from a peer
above it, is ``fairshare.choose_fair``.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from controlplane.queues.ledger import Ledger
from controlplane.queues.model import Queue

Reason = Literal["InQueuePriority", "ReclaimNominal", "FairShare"]


@dataclass(frozen=True, slots=True)
class Candidate:
    key: str
    queue: str
    flavour: str
    gpus: int
    priority: int
    lost_gpu_hours: float
    protected: bool
    admitted_at: float


@dataclass(frozen=True, slots=True)
class Choice:
    flavour: str
    victims: tuple[tuple[Candidate, Reason], ...]

    @property
    def lost_gpu_hours(self) -> float:
        return sum(c.lost_gpu_hours for c, _ in self.victims)



def spare(ledger: Ledger, q: Queue, flavour: str, gpus: int, taken: list[tuple[Candidate, Reason]]) -> None:
    """Give back the victims not needed after all, dearest first (``taken`` and the ledger, in place): a
    victim coming back only raises its own queue's usage, so what let the others be taken still holds."""
    for t in sorted(taken, key=lambda t: -t[0].lost_gpu_hours):
        ledger.change(t[0].queue, flavour, t[0].gpus)
        if ledger.fits(q, flavour, gpus):
            taken.remove(t)
        else:
            ledger.change(t[0].queue, flavour, -t[0].gpus)

def order(c: Candidate) -> tuple[float, int, int, float]:
    # Cheapest work to lose per GPU first; then lower priority; then smaller (disturb no more GPUs than
    # needed); then the most recently admitted.
    return (c.lost_gpu_hours / max(1, c.gpus), c.priority, c.gpus, -c.admitted_at)


def choose(ledger: Ledger, q: Queue, flavour: str, gpus: int, priority: int,
           candidates: Iterable[Candidate]) -> Choice | None:
    """The victims that let ``gpus`` of ``flavour`` fit ``q``, or None. Greedy by lost work per GPU, then
    pruned: a victim whose return still leaves room is spared (dearest first)."""
    quota = q.quotas.get(flavour)
    if quota is None:
        return None
    own_nominal = ledger.usage[(q.name, flavour)] + gpus <= quota.nominal
    pool: list[tuple[Candidate, Reason]] = []
    for c in candidates:
        if c.flavour != flavour:
            continue
        if c.queue == q.name:
            if q.within_queue == "Never" or c.priority >= priority or c.protected:
                continue
            pool.append((c, "InQueuePriority"))
        else:
            # As Kueue's reclaimWithinCohort: only to take back the preemptor queue's own nominal quota
            # (borrowing is never a reason to evict); so protection does not apply here.
            if not own_nominal or q.reclaim == "Never" or (q.reclaim == "LowerPriority" and c.priority >= priority):
                continue
            pool.append((c, "ReclaimNominal"))
    if not pool:
        return None
    pool.sort(key=lambda t: order(t[0]))
    taken: list[tuple[Candidate, Reason]] = []
    try:
        for c, why in pool:
            if ledger.fits(q, flavour, gpus):
                break
            if c.queue != q.name and ledger.borrowed(c.queue, flavour) <= 0:
                continue   # that queue no longer borrows: the rest of it is its own quota
            ledger.change(c.queue, flavour, -c.gpus)
            taken.append((c, why))
        if not ledger.fits(q, flavour, gpus):
            return None
        spare(ledger, q, flavour, gpus, taken)
        return Choice(flavour, tuple(taken))
    finally:
        for c, _ in taken:
            ledger.change(c.queue, flavour, c.gpus)


def cheapest(choices: Sequence[Choice]) -> Choice | None:
    return min(choices, key=lambda ch: (ch.lost_gpu_hours, len(ch.victims)), default=None)
