"""One admission cycle: which pending workloads are admitted now (and on which flavour), which admitted
ones are preempted to make room, and why the rest wait, with their position in their queue.

Order: queues are served lowest weighted dominant share first (so a team that submits more does not
starve one that submits less); within a queue, priority then arrival. A workload that does not fit lets
the next one in its queue try (Kueue's BestEffortFIFO). A workload is admitted whole (all its GPUs, every
replica of every gang) or not at all. Pure: no I/O, no clock (``now`` is given).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from controlplane.queues.fairshare import choose_fair
from controlplane.queues.ledger import Ledger
from controlplane.queues.model import Queue, QueueConfig
from controlplane.queues.preemption import Candidate, Choice, Reason, cheapest, choose

WaitReason = Literal["quota", "policy", "preempting"]


@dataclass(frozen=True, slots=True)
class Pending:
    key: str
    queue: str | None          # None: the workload's team has no queue
    gpus: int
    models: tuple[str, ...]
    capacity_types: tuple[str, ...] = ("reserved", "on-demand")
    providers: tuple[str, ...] | None = None
    priority: int = 0
    arrival: float = 0.0       # submission order (seconds or a sequence number)
    nominated: bool = False    # its victims were released for it: it goes first, or their room goes to others
    # Ties of ``arrival`` go by ``seq`` (the store's insertion order), not by key: one request submits many
    # workloads with one timestamp, and the name's alphabet is not their order.
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Admitted:
    """A workload holding quota (admitted, whether placed, provisioning or running)."""

    key: str
    queue: str
    flavour: str
    gpus: int
    priority: int = 0
    admitted_at: float = 0.0
    running_since: float | None = None     # None: not running yet (nothing to lose)
    checkpoint_at: float | None = None
    preempted_for: str | None = None       # already chosen as a victim (for this pending key), stopping

    @property
    def preempting(self) -> bool:
        return self.preempted_for is not None

    def lost_gpu_hours(self, now: float) -> float:
        if self.running_since is None:
            return 0.0
        since = max(self.running_since, self.checkpoint_at or self.running_since)
        return self.gpus * max(0.0, now - since) / 3600.0

    def run_s(self, now: float) -> float:
        return 0.0 if self.running_since is None else max(0.0, now - self.running_since)


@dataclass(frozen=True, slots=True)
class Admission:
    key: str
    queue: str
    flavour: str
    gpus: int
    borrowed: int              # GPUs of this workload above the queue's nominal quota


@dataclass(frozen=True, slots=True)
class Preemption:
    victim: str
    victim_queue: str
    preemptor: str
    preemptor_queue: str
    flavour: str
    gpus: int
    reason: Reason
    lost_gpu_hours: float


@dataclass(frozen=True, slots=True)
class Waiting:
    key: str
    queue: str | None
    reason: WaitReason
    message: str
    position: int = 0          # 1-based within its queue; 0 when it has no queue


@dataclass
class Cycle:
    admitted: list[Admission] = field(default_factory=list)
    preemptions: list[Preemption] = field(default_factory=list)
    waiting: dict[str, Waiting] = field(default_factory=dict)
    usage: dict[tuple[str, str], int] = field(default_factory=dict)      # after this cycle's admissions
    borrowed: dict[tuple[str, str], int] = field(default_factory=dict)


def _sort_key(p: Pending) -> tuple[bool, int, float, int, str]:
    return (not p.nominated, -p.priority, p.arrival, p.seq, p.key)


def admit(config: QueueConfig, admitted: Iterable[Admitted], pending: Iterable[Pending], now: float = 0.0,
          *, preempt: bool = True) -> Cycle:
    ledger = Ledger(config)
    holders = list(admitted)
    for a in holders:
        ledger.change(a.queue, a.flavour, a.gpus)
    # Victims still stopping (a grace period, a crash before they were released) are their preemptor's:
    # when its turn comes it counts them as gone and waits, and never takes a second set of victims.
    going: dict[str, list[Admitted]] = defaultdict(list)
    candidates: dict[str, list[Candidate]] = defaultdict(list)      # cohort -> candidates
    for a in holders:
        if a.preempted_for is not None:
            going[a.preempted_for].append(a)
            continue
        q = config.queues.get(a.queue)
        if q is None:
            continue
        candidates[q.group].append(Candidate(
            a.key, a.queue, a.flavour, a.gpus, a.priority, a.lost_gpu_hours(now),
            config.protection.protects(a.priority, a.run_s(now)), a.admitted_at))
    out = Cycle()
    by_queue: dict[str, list[Pending]] = defaultdict(list)
    for p in pending:
        q = config.queues.get(p.queue) if p.queue is not None else None
        if q is None:
            why = "its team has no queue" if p.queue is None else f"queue {p.queue!r} does not exist"
            out.waiting[p.key] = Waiting(p.key, p.queue, "policy", f"not admitted: {why}")
            continue
        by_queue[q.name].append(p)
    heads: dict[str, int] = {}
    heap: list[tuple[bool, float, int, float, int, str, str]] = []
    for name, items in by_queue.items():
        items.sort(key=_sort_key)
        heads[name] = 0
        heapq.heappush(heap, (not items[0].nominated, _share(config, ledger, config.queues[name], items[0]),
                              -items[0].priority, items[0].arrival, items[0].seq, items[0].key, name))
    failed: dict[tuple[str, str], tuple[int, int]] = {}   # (queue, flavour) -> (group version, smallest misfit)
    # queue -> (priority, GPUs, cohort version) of a search that found no victims: within a cycle usage only
    # grows and candidates only go, so a workload of no higher priority asking no fewer GPUs finds none
    # either. Fair sharing breaks that (a peer's share grows with its admissions): there the memo holds
    # only while the cohort is unchanged (a full cohort, where it matters, does not change).
    no_victims: dict[str, tuple[int, int, int]] = {}
    frozen: set[tuple[str, str]] = set()                   # (cohort, flavour) with victims still to leave
    waiting_in: dict[str, list[str]] = defaultdict(list)
    while heap:
        name = heapq.heappop(heap)[-1]
        q = config.queues[name]
        items = by_queue[name]
        p = items[heads[name]]
        heads[name] += 1
        flavours = [f for f in q.quotas if config.flavours[f].accepts(p.models, p.capacity_types, p.providers)]
        mine = going.pop(p.key, [])
        if mine and _reserve(ledger, q, p, mine, frozen):
            out.waiting[p.key] = Waiting(p.key, name, "preempting",
                                         f"waiting for {len(mine)} preempted workload(s) to stop")
            waiting_in[name].append(p.key)
        elif (chosen := _first_fit(ledger, q, p, flavours, failed, frozen)) is not None:
            borrowed_before = ledger.borrowed(name, chosen)
            ledger.change(name, chosen, p.gpus)
            out.admitted.append(Admission(p.key, name, chosen, p.gpus,
                                          ledger.borrowed(name, chosen) - borrowed_before))
        else:
            out.waiting[p.key] = _why_waiting(config, ledger, p, flavours, candidates, no_victims, out, preempt,
                                              frozen)
            waiting_in[name].append(p.key)
        if heads[name] < len(items):
            nxt = items[heads[name]]
            heapq.heappush(heap, (not nxt.nominated, _share(config, ledger, q, nxt), -nxt.priority, nxt.arrival,
                                  nxt.seq, nxt.key, name))
    for keys in waiting_in.values():
        for i, k in enumerate(keys, start=1):
            w = out.waiting[k]
            out.waiting[k] = Waiting(w.key, w.queue, w.reason, w.message, i)
    out.usage = {k: v for k, v in ledger.usage.items() if v}
    out.borrowed = {k: ledger.borrowed(*k) for k in out.usage if ledger.borrowed(*k)}
    return out


def _share(config: QueueConfig, ledger: Ledger, q: Queue, p: Pending) -> float:
    f = next((f for f in q.quotas if config.flavours[f].accepts(p.models, p.capacity_types, p.providers)), None)
    return ledger.share_with(q, f, p.gpus)


def _first_fit(ledger: Ledger, q: Queue, p: Pending, flavours: Sequence[str],
               failed: dict[tuple[str, str], tuple[int, int]], frozen: set[tuple[str, str]]) -> str | None:
    """The first of the queue's flavours (in its order) that ``p`` fits now. ``failed`` remembers the
    smallest request that did not fit each (queue, flavour) since its cohort last changed: a larger one
    cannot fit either (100,000 pending workloads must not cost 100,000 full checks)."""
    for f in flavours:
        if (q.group, f) in frozen:
            continue
        seen = failed.get((q.name, f))
        version = ledger.version[q.group]
        if seen is not None and seen[0] == version and p.gpus >= seen[1]:
            continue
        if ledger.fits(q, f, p.gpus):
            return f
        failed[(q.name, f)] = (version, min(p.gpus, seen[1]) if seen and seen[0] == version else p.gpus)
    return None


def _reserve(ledger: Ledger, q: Queue, p: Pending, victims: Sequence[Admitted],
             frozen: set[tuple[str, str]]) -> bool:
    """Whether ``p`` fits once its stopping victims are gone; if so the ledger shows that state (victims
    gone, ``p`` holding its room) and the flavour is frozen for admissions this cycle: victims hold their
    GPUs until released, so nobody else may be admitted into room that is not free yet. False: the quota
    changed since; the ledger is as it was and ``p`` goes through admission afresh."""
    for v in victims:
        ledger.change(v.queue, v.flavour, -v.gpus)
    fit = next((f for f in sorted({v.flavour for v in victims}) if f in q.quotas and ledger.fits(q, f, p.gpus)),
               None)
    if fit is None:
        for v in victims:
            ledger.change(v.queue, v.flavour, v.gpus)
        return False
    ledger.change(q.name, fit, p.gpus)
    frozen.update((q.group, v.flavour) for v in victims)
    return True


def _why_waiting(config: QueueConfig, ledger: Ledger, p: Pending, flavours: Sequence[str],
                 candidates: dict[str, list[Candidate]], no_victims: dict[str, tuple[int, int, int]], out: Cycle,
                 preempt: bool, frozen: set[tuple[str, str]]) -> Waiting:
    q = config.queues[p.queue or ""]
    if not flavours:
        return Waiting(p.key, q.name, "policy",
                       f"queue {q.name!r} has no quota for GPU model {', '.join(p.models)}"
                       f" ({', '.join(p.capacity_types)})")
    possible = [f for f in flavours if ledger.ceiling(q, f) >= p.gpus]
    if not possible:
        most = max(ledger.ceiling(q, f) for f in flavours)
        return Waiting(p.key, q.name, "policy",
                       f"asks {p.gpus} GPUs; queue {q.name!r} can hold at most {most} of "
                       f"{', '.join(flavours)} (nominal plus borrowable)")
    memo = no_victims.get(q.name)
    version = ledger.version[q.group] if config.fair_sharing else -1
    if preempt and (memo is None or p.priority > memo[0] or p.gpus < memo[1] or memo[2] != version):
        pool = candidates.get(q.group, [])
        choices = [ch for f in possible
                   if (ch := choose(ledger, q, f, p.gpus, p.priority, pool)) is not None]
        if config.fair_sharing:
            choices += [ch for f in possible if (ch := choose_fair(ledger, q, f, p.gpus, p.priority, pool,
                                                                      config.fair_sharing)) is not None]
        best: Choice | None = cheapest(choices)
        if best is not None:
            victims = {v.key for v, _ in best.victims}
            candidates[q.group] = [v for v in pool if v.key not in victims]
            # As if done (victims gone, the preemptor in), so further preemptors count right; frozen for
            # admissions, as the victims hold their GPUs until they are released.
            frozen.add((q.group, best.flavour))
            for c, why in best.victims:
                ledger.change(c.queue, best.flavour, -c.gpus)
                out.preemptions.append(Preemption(c.key, c.queue, p.key, q.name, best.flavour, c.gpus, why,
                                                  c.lost_gpu_hours))
            ledger.change(q.name, best.flavour, p.gpus)
            return Waiting(p.key, q.name, "preempting",
                           f"preempting {len(best.victims)} workload(s) to free {best.flavour} quota")
        no_victims[q.name] = (p.priority, p.gpus, version)
    f = possible[0]
    quota = q.quotas[f]
    return Waiting(p.key, q.name, "quota",
                   f"queue {q.name!r} needs {p.gpus} GPUs of {f}: uses {ledger.usage[(q.name, f)]} of its "
                   f"nominal {quota.nominal}, the cohort can lend {ledger.lendable(q, f)} now")

