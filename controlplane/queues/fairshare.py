"""Fair-share preemption across a cohort (Kueue's ``fairSharing`` preemption strategies).

A queue's share is its weighted dominant-resource share of what it borrows (``Ledger.share``: the largest
fraction of a cohort flavour's capacity it uses above its own nominal quota, over its weight). When a
workload does not fit and reclaiming its own nominal quota is not the case, its queue may still take GPUs
from a cohort peer that borrows, if the peer stays at or above the preemptor's share:

* ``LessThanOrEqualToFinalShare``: the preemptor queue's share with the workload admitted is no more than
  the victim queue's share once the victim is gone (after the preemption, nobody is further below its
  share than the queue it took from: the fair outcome, and a stable one, as the victim's queue taking the
  GPUs back would need the reverse);
* ``LessThanInitialShare``: the preemptor's share with the workload admitted is below the victim queue's
  share before the victim goes (more permissive; Kueue's fallback when the first cannot make room).

Peers are visited highest share first and re-ranked after every victim, victims within a peer cheapest
lost work first (as ``preemption.order``). Only borrowed GPUs are taken: a victim larger than what its
queue borrows of the flavour is passed over (a queue's nominal quota is its own; the dominant share may
stay high on another flavour, so the share rule alone would not keep it). Only under the preemptor
queue's ``reclaimWithinCohort`` policy, and never a protected workload (a long run, a protected
priority): protection yields only to a reclaim of the preemptor queue's own nominal quota, which
``preemption.choose`` handles. In-queue priority preemption
also stays with ``choose``; the admission cycle takes the cheaper of the two answers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from controlplane.queues.ledger import Ledger
from controlplane.queues.model import FairStrategy, Queue
from controlplane.queues.preemption import Candidate, Choice, Reason, order, spare

EPS = 1e-12
FAIR: Reason = "FairShare"


def allows(strategy: FairStrategy, preemptor_after: float, victim_before: float, victim_after: float) -> bool:
    if strategy == "LessThanOrEqualToFinalShare":
        return preemptor_after <= victim_after + EPS
    return preemptor_after < victim_before - EPS


def choose_fair(ledger: Ledger, q: Queue, flavour: str, gpus: int, priority: int, candidates: Iterable[Candidate],
                strategies: Sequence[FairStrategy]) -> Choice | None:
    """Victims in other queues of ``q``'s cohort whose going lets ``gpus`` of ``flavour`` fit ``q``, each
    allowed by a fair-sharing strategy, or None."""
    if not strategies or flavour not in q.quotas or q.reclaim == "Never":
        return None
    pool = sorted((c for c in candidates if c.flavour == flavour and c.queue != q.name and not c.protected
                   and (q.reclaim == "Any" or c.priority < priority)), key=order)
    if not pool:
        return None
    # Other queues' victims leave the preemptor's own usage as it is: its share with the workload is fixed.
    mine = ledger.share_with(q, flavour, gpus)
    left: dict[str, list[Candidate]] = defaultdict(list)
    for c in pool:
        left[c.queue].append(c)
    taken: list[tuple[Candidate, Reason]] = []
    try:
        for strategy in strategies:
            refused: dict[str, list[Candidate]] = defaultdict(list)
            while left and not ledger.fits(q, flavour, gpus):
                name = max(left, key=lambda n: (ledger.share(ledger.config.queues[n]), n))
                peer = ledger.config.queues[name]
                if ledger.borrowed(name, flavour) <= 0:    # the rest of it is its own nominal quota
                    refused[name].extend(left.pop(name))
                    continue
                before = ledger.share(peer)
                rest = left.pop(name)
                for i, c in enumerate(rest):
                    if c.gpus > ledger.borrowed(name, flavour):   # it would take some of the peer's own quota
                        refused[name].append(c)
                        continue
                    ledger.change(name, flavour, -c.gpus)
                    if allows(strategy, mine, before, ledger.share(peer)):
                        taken.append((c, FAIR))
                        if rest[i + 1:]:
                            left[name] = rest[i + 1:]   # re-ranked with its new share next round
                        break
                    ledger.change(name, flavour, c.gpus)
                    refused[name].append(c)
            if ledger.fits(q, flavour, gpus):
                break
            for name, cs in left.items():   # what this strategy did not reach, the next one may
                refused[name].extend(cs)
            left = refused
        if not ledger.fits(q, flavour, gpus):
            return None
        # Spare the victims not needed after all: a victim coming back only raises its queue's share, so
        # every strategy's condition still holds for the others.
        spare(ledger, q, flavour, gpus, taken)
        return Choice(flavour, tuple(taken))
    finally:
        for c, _ in taken:
            ledger.change(c.queue, flavour, c.gpus)
