"""A small discrete-time simulation of one fleet under the admission engine: workloads arrive, are
admitted, run for their duration and finish; victims are requeued (not failed). Used by the property
tests; invariants are checked independently of the engine's own ledger."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from controlplane.queues import Admitted, Cycle, Pending, QueueConfig, admit


@dataclass
class Sim:
    config: QueueConfig
    now: float = 0.0
    pending: dict[str, Pending] = field(default_factory=dict)
    running: dict[str, Admitted] = field(default_factory=dict)
    ends: dict[str, float] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    preempted: list[tuple[str, str]] = field(default_factory=list)   # (victim, reason)
    cycles: list[Cycle] = field(default_factory=list)
    nominated: set[str] = field(default_factory=set)

    def submit(self, p: Pending, duration_s: float) -> None:
        self.pending[p.key] = p
        self.durations[p.key] = duration_s

    def step(self, dt: float) -> Cycle:
        self.now += dt
        for k in [k for k, t in self.ends.items() if t <= self.now]:
            del self.ends[k]
            del self.running[k]
        for k, p in self.pending.items():   # a preemptor whose victims were released goes first
            if p.nominated != (k in self.nominated):
                self.pending[k] = Pending(p.key, p.queue, p.gpus, p.models, p.capacity_types, p.providers,
                                          p.priority, p.arrival, k in self.nominated)
        cyc = admit(self.config, list(self.running.values()), list(self.pending.values()), self.now)
        check(self.config, self.running, self.pending, cyc)
        for a in cyc.admitted:
            p = self.pending.pop(a.key)
            self.running[a.key] = Admitted(a.key, a.queue, a.flavour, a.gpus, p.priority, self.now, self.now)
            self.ends[a.key] = self.now + self.durations[a.key]
        self.nominated = (self.nominated | {pr.preemptor for pr in cyc.preemptions}) - set(self.running)
        for pr in cyc.preemptions:   # released at once (no grace period in the simulation): requeued
            v = self.running.pop(pr.victim)
            del self.ends[pr.victim]
            self.preempted.append((pr.victim, pr.reason))
            self.pending[pr.victim] = Pending(v.key, v.queue, v.gpus, (self.config.flavours[v.flavour].gpu_model,),
                                              priority=v.priority, arrival=self.now)
        self.cycles.append(cyc)
        return cyc

    def usage(self, queue: str) -> int:
        return sum(a.gpus for a in self.running.values() if a.queue == queue)


def check(config: QueueConfig, running: dict[str, Admitted], pending: dict[str, Pending], cyc: Cycle) -> None:
    """Quota, cohort and gang invariants after a cycle's admissions."""
    keys = [a.key for a in cyc.admitted]
    assert len(keys) == len(set(keys)), "a workload admitted twice"
    use: dict[tuple[str, str], int] = {}
    for a in running.values():
        use[(a.queue, a.flavour)] = use.get((a.queue, a.flavour), 0) + a.gpus
    for a in cyc.admitted:
        assert a.key in pending and a.key not in running
        assert a.gpus == pending[a.key].gpus, "a gang admitted in part"
        use[(a.queue, a.flavour)] = use.get((a.queue, a.flavour), 0) + a.gpus
    for (qn, f), u in use.items():
        quota = config.queues[qn].quotas[f]
        if quota.borrowing_limit is not None:
            assert u <= quota.nominal + quota.borrowing_limit, f"{qn}/{f} over its borrowing limit"
    for g in {q.group for q in config.queues.values()}:
        for f in config.flavours:
            members = [q for q in config.queues.values() if q.group == g and f in q.quotas]
            over = sum(max(0, use.get((q.name, f), 0) - q.quotas[f].nominal) for q in members)
            lend = 0
            for q in members:
                free = max(0, q.quotas[f].nominal - use.get((q.name, f), 0))
                ll = q.quotas[f].lending_limit
                lend += free if ll is None else min(free, ll)
            # Victims leave at once in the simulation, so no shortfall is ever left to heal.
            assert over <= lend, f"cohort {g}/{f}: members borrow {over}, only {lend} is lent"
    for pr in cyc.preemptions:
        assert pr.victim in running and not running[pr.victim].preempting


def burst(rng: random.Random, config: QueueConfig, n: int, *, models: tuple[str, ...] = ("H100",)) -> list[
        tuple[Pending, float]]:
    teams = sorted(config.queues)
    out = []
    for i in range(n):
        q = rng.choice(teams)
        out.append((Pending(f"w{i}", q, rng.choice([1, 2, 4, 8, 16]), (rng.choice(models),),
                            priority=rng.choice([0, 0, 0, 10, 100]), arrival=float(i)),
                    rng.uniform(300, 3600)))
    return out
