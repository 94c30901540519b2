"""Properties of admission under load, on random fleets (hypothesis) and seeded simulations:
quota respected under a burst of 1,000 submissions, gangs whole, borrowing and reclaim, fair share
converging to the weights, protected long runs never victims."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.queues import Flavour, Protection, Queue, QueueConfig, Quota
from tests.controlplane.queues.builders import config, fleets, pend, queue
from tests.controlplane.queues.sim import Sim, burst

HOUR = 3600.0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets(), seed=st.integers(0, 2**32 - 1))
def test_quota_gangs_and_protection_hold_on_random_fleets(fleet: QueueConfig, seed: int) -> None:
    rng = random.Random(seed)
    sim = Sim(fleet)
    for p, d in burst(rng, fleet, 120, models=("H100", "B200")):
        sim.submit(p, d)
    for _ in range(30):                      # Sim.step checks quota, cohort and gang invariants each cycle
        before = dict(sim.running)
        sim.step(600.0)
        for pr in sim.cycles[-1].preemptions:
            v = before[pr.victim]
            assert pr.gpus == v.gpus
            if fleet.protection.protects(v.priority, v.run_s(sim.now)):
                # Only a reclaim of the preemptor queue's own nominal quota may evict a protected run.
                assert pr.reason == "ReclaimNominal" and pr.victim_queue != pr.preemptor_queue
            if pr.reason == "InQueuePriority":
                assert pr.victim_queue == pr.preemptor_queue


def test_quota_respected_under_a_burst_of_1000_submissions_from_several_teams() -> None:
    c = config(queue("research", 64, weight=2), queue("product", 32), queue("sweeps", 16, borrow=24),
               queue("solo", 8, cohort=None))
    sim = Sim(c)
    for p, d in burst(random.Random(7), c, 1000):
        sim.submit(p, d)
    peak = {q: 0 for q in c.queues}
    cohort_peak = 0
    for _ in range(12 * 8):                  # eight simulated hours, a cycle every five minutes
        sim.step(300.0)                      # each step checks quota, cohort and gang invariants
        for q in c.queues:
            peak[q] = max(peak[q], sim.usage(q))
        cohort = sum(sim.usage(q) for q in ("research", "product", "sweeps"))
        assert cohort <= 64 + 32 + 16
        cohort_peak = max(cohort_peak, cohort)
    assert peak["solo"] <= 8
    assert peak["sweeps"] <= 16 + 24
    assert cohort_peak >= 100, "the cohort's quota was never nearly used: the burst tests nothing"
    assert max(peak["research"] - 64, peak["product"] - 32, peak["sweeps"] - 16) > 0, "nobody borrowed"
    done = 1000 - len(sim.pending) - len(sim.running)
    assert done >= 150, "the fleet did little work"


def test_borrow_while_the_peer_is_idle_and_reclaim_when_it_returns() -> None:
    c = config(queue("a", 16), queue("b", 16))
    sim = Sim(c)
    for i in range(16):
        sim.submit(pend(f"a{i}", "a", 2, arrival=i), 10 * HOUR)
    sim.step(60)
    assert sim.usage("a") == 32                # all of b's idle quota borrowed
    for i in range(4):
        sim.submit(pend(f"b{i}", "b", 4, arrival=100 + i), HOUR)
    sim.step(60)
    assert sim.usage("b") == 0 and len(sim.preempted) == 8 and {r for _, r in sim.preempted} == {"ReclaimNominal"}
    sim.step(60)
    assert (sim.usage("a"), sim.usage("b")) == (16, 16)   # b has its nominal back; a keeps its own
    assert all(k.startswith("a") for k in sim.pending)     # the victims are requeued, not lost


def test_protected_long_runs_are_never_victims() -> None:
    # One queue, in-queue priority preemption only: long runs and priority >= 1000 are protected.
    prot = Protection(running_longer_than_s=4 * HOUR, priority_at_least=1000)
    c = QueueConfig({"h100": Flavour("h100", "H100")},
                    {"a": Queue("a", ("a",), None, 1.0, {"h100": Quota(64)})}, protection=prot)
    rng = random.Random(3)
    sim = Sim(c)
    for i in range(60):
        sim.submit(pend(f"w{i}", "a", rng.choice([2, 4, 8]), priority=rng.choice([0, 0, 5, 5, 1000]),
                        arrival=i), rng.choice([HOUR, 8 * HOUR, 30 * HOUR]))
    victims_checked = spared = 0
    for _ in range(48 * 4):
        before = dict(sim.running)
        sim.step(900.0)
        for pr in sim.cycles[-1].preemptions:
            v = before[pr.victim]
            assert v.priority < 1000 and sim.now - (v.running_since or sim.now) <= 4 * HOUR
            victims_checked += 1
            spared += sum(1 for o in before.values() if o.key not in sim.pending and
                          o.priority < 100 and (o.priority >= 1000 or sim.now - (o.running_since or 0) > 4 * HOUR))
        if len(sim.cycles) % 8 == 0:          # new urgent work keeps arriving
            for j in range(3):
                sim.submit(pend(f"u{len(sim.cycles)}-{j}", "a", 8, priority=rng.choice([10, 100]),
                                arrival=sim.now), HOUR)
    assert victims_checked > 0, "the scenario never preempted: it tests nothing"
    assert spared > 0, "no protected workload was ever in the way: protection was never tested"


def test_fair_share_converges_to_the_weights_over_a_simulated_hour() -> None:
    """Two queues with no quota of their own borrow a lender's 60 GPUs under contention: over an hour
    their time-averaged usage splits 3:1 as weighted, within 5 percentage points."""
    c = config(queue("a", 0, weight=3), queue("b", 0, weight=1), queue("lender", 60))
    rng = random.Random(11)
    sim = Sim(c)
    for i in range(400):                     # more than an hour's work for each queue
        for q in "ab":
            sim.submit(pend(f"{q}{i}", q, rng.choice([1, 2, 4]), arrival=i), rng.uniform(300, 1200))
    used = {"a": 0.0, "b": 0.0}
    for _ in range(120):                     # an hour in 30 s cycles
        sim.step(30.0)
        for q in used:
            used[q] += sim.usage(q)
    share = used["a"] / (used["a"] + used["b"])
    assert abs(share - 0.75) <= 0.05, share
    assert sum(used.values()) / 120 > 50     # and the lender's GPUs were busy, not idle
