"""Fair-share preemption across a cohort (Kueue's fairSharing strategies): one behaviour per test, then
hypothesis properties checked against shares computed here, independently of the engine's ledger."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.queues import (
    Admitted,
    Flavour,
    Pending,
    Protection,
    Queue,
    QueueConfig,
    QueueError,
    Quota,
    admit,
    parse_queue_text,
)
from controlplane.queues.model import FairStrategy
from tests.controlplane.queues.builders import config, fleets, held, pend, queue
from tests.controlplane.queues.sim import Sim, burst

HOUR = 3600.0
BOTH: tuple[FairStrategy, ...] = ("LessThanOrEqualToFinalShare", "LessThanInitialShare")
FINAL: tuple[FairStrategy, ...] = ("LessThanOrEqualToFinalShare",)
INITIAL: tuple[FairStrategy, ...] = ("LessThanInitialShare",)


def fair(c: QueueConfig, strategies: tuple[FairStrategy, ...] = BOTH) -> QueueConfig:
    return replace(c, fair_sharing=strategies)


def running(key: str, q: str, gpus: int, **kw: object) -> Admitted:
    return held(key, q, gpus, running_since=0.0, **kw)  # type: ignore[arg-type]


def test_a_queue_below_its_share_preempts_borrowed_work_of_a_peer_above_it() -> None:
    # a borrowed all 16 of the idle lender's GPUs; b, of equal weight, borrows nothing and asks for 4.
    c = config(queue("a", 0), queue("b", 0), queue("lender", 16))
    holders = [running(f"a{i}", "a", 4, admitted_at=i) for i in range(4)]
    off = admit(c, holders, [pend("b1", "b", 4)], now=HOUR)
    assert off.preemptions == [] and off.waiting["b1"].reason == "quota"     # not without fair sharing
    on = admit(fair(c), holders, [pend("b1", "b", 4)], now=HOUR)
    assert [(p.victim, p.reason, p.victim_queue) for p in on.preemptions] == [("a3", "FairShare", "a")]
    assert on.waiting["b1"].reason == "preempting"
    # Victim gone, b1 admitted: b holds 4 borrowed (share 4/16), a 12 (12/16): a may not take them back.
    after = admit(fair(c), holders[:3], [pend("b1", "b", 4)], now=HOUR)
    assert [a.key for a in after.admitted] == ["b1"]
    back = admit(fair(c), holders[:3] + [running("b1", "b", 4)], [pend("a3", "a", 4, arrival=1)], now=2 * HOUR)
    assert back.preemptions == [] and back.waiting["a3"].reason == "quota"


def test_no_preemption_once_the_shares_are_even() -> None:
    c = fair(config(queue("a", 0), queue("b", 0), queue("lender", 16)))
    holders = [running("a1", "a", 4), running("a2", "a", 4), running("b0", "b", 4), running("b00", "b", 4)]
    cyc = admit(c, holders, [pend("b1", "b", 4)], now=HOUR)
    assert cyc.preemptions == [] and cyc.waiting["b1"].reason == "quota"


def test_weights_set_the_fair_share() -> None:
    # a weighs 3: 12 of the 16 borrowed GPUs is its fair share against b's 4 (12/16/3 == 4/16/1).
    c = fair(config(queue("a", 0, weight=3), queue("b", 0), queue("lender", 16)))
    holders = [running(f"a{i}", "a", 4, admitted_at=i) for i in range(4)]
    first = admit(c, holders, [pend("b1", "b", 4)], now=HOUR)
    assert [p.victim for p in first.preemptions] == ["a3"]
    second = admit(c, holders[:3] + [running("b1", "b", 4)], [pend("b2", "b", 4)], now=HOUR)
    assert second.preemptions == [], "a at 12 of 16 is at its weighted share: b may not go above"


def test_the_initial_share_strategy_allows_what_the_final_share_one_refuses() -> None:
    # a holds one 12-GPU gang: taking it leaves a at 0, below b's 8/16 after, so the final-share rule says
    # no; b's 8/16 after is below a's 12/16 before, so the initial-share rule says yes.
    c = config(queue("a", 0), queue("b", 0), queue("lender", 16))
    holders = [running("a1", "a", 12), running("b0", "b", 4)]
    assert admit(fair(c, FINAL), holders, [pend("b1", "b", 4)], now=HOUR).preemptions == []
    cyc = admit(fair(c, BOTH), holders, [pend("b1", "b", 4)], now=HOUR)
    assert [(p.victim, p.reason) for p in cyc.preemptions] == [("a1", "FairShare")]
    assert [p.victim for p in admit(fair(c, INITIAL), holders, [pend("b1", "b", 4)], now=HOUR).preemptions] == ["a1"]


def test_protected_long_runs_are_not_fair_share_victims() -> None:
    c = fair(config(queue("a", 0), queue("b", 0), queue("lender", 16),
                    protection=Protection(running_longer_than_s=2 * HOUR, priority_at_least=1000)))
    old = [running(f"a{i}", "a", 4) for i in range(3)] + [running("vip", "a", 4, priority=1000)]
    cyc = admit(c, old, [pend("b1", "b", 4)], now=3 * HOUR)            # every one of a's is protected
    assert cyc.preemptions == [] and cyc.waiting["b1"].reason == "quota"
    young = [running("a-young", "a", 4, admitted_at=5)]
    cyc = admit(c, old[:3] + young, [pend("b1", "b", 4)], now=3 * HOUR)
    assert [p.victim for p in cyc.preemptions] == [], "a-young runs 3 h too: protected"
    cyc = admit(c, old[:3] + [held("a-new", "a", 4, running_since=2.5 * HOUR)], [pend("b1", "b", 4)], now=3 * HOUR)
    assert [p.victim for p in cyc.preemptions] == ["a-new"]


def test_reclaim_within_cohort_policy_bounds_fair_share_preemption() -> None:
    base = [queue("a", 0), queue("lender", 16)]
    holders = [running("a1", "a", 8, priority=5), running("a2", "a", 8, priority=0)]
    never = fair(config(*base, queue("b", 0, reclaim="Never")))
    assert admit(never, holders, [pend("b1", "b", 4, priority=5)], now=HOUR).preemptions == []
    lower = fair(config(*base, queue("b", 0, reclaim="LowerPriority")))
    cyc = admit(lower, holders, [pend("b1", "b", 4, priority=5)], now=HOUR)
    assert [p.victim for p in cyc.preemptions] == ["a2"]          # a1 has b1's priority: not a candidate


def test_fair_sharing_is_read_from_the_policy_document() -> None:
    doc = """
apiVersion: awan.dev/v1alpha1
kind: QueuePolicy
metadata: {name: t}
spec:
  flavours: [{name: h100, gpuModel: H100}]
  queues: [{name: a, cohort: ml, quotas: [{flavour: h100, nominal: 8}]}]
  preemption: {fairSharing: {}}
"""
    assert parse_queue_text(doc).fair_sharing == BOTH
    assert parse_queue_text(doc.replace("{fairSharing: {}}", "{}")).fair_sharing == ()
    one = doc.replace("{fairSharing: {}}", "{fairSharing: {preemptionStrategies: [LessThanInitialShare]}}")
    assert parse_queue_text(one).fair_sharing == INITIAL
    with pytest.raises(QueueError, match="spec.preemption.fairSharing.preemptionStrategies"):
        parse_queue_text(doc.replace("{fairSharing: {}}", "{fairSharing: {preemptionStrategies: "
                                                          "[LessThanInitialShare, LessThanOrEqualToFinalShare]}}"))


def test_a_late_queue_gets_its_share_in_a_few_cycles_and_nothing_ping_pongs() -> None:
    c = fair(config(queue("a", 0), queue("b", 0), queue("lender", 32)))
    sim = Sim(c)
    for i in range(16):
        sim.submit(pend(f"a{i}", "a", 2, arrival=i), 10 * HOUR)
    sim.step(60)
    assert sim.usage("a") == 32
    for i in range(16):
        sim.submit(pend(f"b{i}", "b", 2, arrival=100 + i), 10 * HOUR)
    for _ in range(6):
        sim.step(60)
    assert (sim.usage("a"), sim.usage("b")) == (16, 16)
    assert len(sim.preempted) == 8 and {r for _, r in sim.preempted} == {"FairShare"}
    for _ in range(10):
        sim.step(60)
    assert len(sim.preempted) == 8, "settled shares must not keep preempting"


# ---- properties ---------------------------------------------------------------------------------------

def shares(config: QueueConfig, use: dict[tuple[str, str], int]) -> dict[str, float]:
    """Weighted dominant share of borrowed GPUs per queue, from the definitions (not the engine's ledger)."""
    cap: dict[tuple[str, str], int] = {}
    for q in config.queues.values():
        for f, quota in q.quotas.items():
            cap[(q.group, f)] = cap.get((q.group, f), 0) + quota.nominal
    out = {}
    for q in config.queues.values():
        worst = 0.0
        for f, quota in q.quotas.items():
            worst = max(worst, max(0, use.get((q.name, f), 0) - quota.nominal) / max(1, cap[(q.group, f)]))
        out[q.name] = worst / q.weight
    return out


def usage(holders: list[Admitted]) -> dict[tuple[str, str], int]:
    use: dict[tuple[str, str], int] = {}
    for a in holders:
        use[(a.queue, a.flavour)] = use.get((a.queue, a.flavour), 0) + a.gpus
    return use


@st.composite
def contended(draw: st.DrawFn) -> QueueConfig:
    """A cohort whose borrowers live mostly on an idle lender's quota: where fair sharing has work to do."""
    queues = [Queue(f"q{i}", (f"q{i}",), "ml", draw(st.sampled_from([0.5, 1.0, 2.0, 3.0])),
                    {f: Quota(draw(st.integers(0, 8)), draw(st.none() | st.integers(8, 48)))
                     for f in draw(st.lists(st.sampled_from(["h100", "b200"]), min_size=1, max_size=2, unique=True))},
                    "LowerPriority", draw(st.sampled_from(["Any", "Any", "LowerPriority"])))
              for i in range(draw(st.integers(2, 4)))]
    lender = Queue("lender", ("lender",), "ml", 1.0, {"h100": Quota(draw(st.integers(16, 64))),
                                                      "b200": Quota(draw(st.integers(0, 32)))})
    return QueueConfig({"h100": Flavour("h100", "H100"), "b200": Flavour("b200", "B200")},
                       {q.name: q for q in [*queues, lender]}, protection=Protection(2 * HOUR, 500))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=contended(), seed=st.integers(0, 2**32 - 1), strategies=st.sampled_from([FINAL, INITIAL, BOTH]),
       gpus=st.sampled_from([1, 2, 4, 8, 16]), priority=st.sampled_from([0, 10, 100]),
       model=st.sampled_from(["H100", "B200"]))
def test_a_fair_share_preemption_never_leaves_the_preemptor_above_its_victims(
        fleet: QueueConfig, seed: int, strategies: tuple[FairStrategy, ...], gpus: int, priority: int,
        model: str) -> None:
    fleet = fair(fleet, strategies)
    rng = random.Random(seed)
    sim = Sim(fleet)
    for p, d in burst(rng, fleet, 80, models=("H100", "B200")):
        if p.queue != "lender":
            sim.submit(p, d * 10)
    for _ in range(5):                       # long enough for some runs to pass the 2 h protection
        sim.step(1800.0)
    holders = list(sim.running.values())
    now = shares(fleet, usage(holders))      # the least served borrower asks: the case fair sharing is for
    q = min((n for n in fleet.queues if n != "lender"), key=lambda n: (now[n], rng.random()))
    cyc = admit(fleet, holders, [Pending("new", q, gpus, (model,), priority=priority, arrival=1e9)], sim.now)
    fs = [pr for pr in cyc.preemptions if pr.reason == "FairShare"]
    if not fs:
        return
    assert {pr.reason for pr in cyc.preemptions} == {"FairShare"}        # one choice: not mixed
    by_key = {a.key: a for a in holders}
    before = shares(fleet, usage(holders))
    gone = {pr.victim for pr in fs}
    flavour = fs[0].flavour
    after_use = usage([a for a in holders if a.key not in gone] + [Admitted("new", q, flavour, gpus)])
    after = shares(fleet, after_use)
    for pr in fs:
        v = by_key[pr.victim]
        assert pr.victim_queue != q and fleet.queues[pr.victim_queue].group == fleet.queues[q].group
        assert not fleet.protection.protects(v.priority, v.run_s(sim.now)), "a protected run was a victim"
        if strategies == FINAL:
            assert after[q] <= after[pr.victim_queue] + 1e-9, (after, pr)
        else:   # the initial-share rule (alone or as the fallback): below the victim queue's share before
            assert after[q] < before[pr.victim_queue] + 1e-9, (after, before, pr)
    # Only borrowed GPUs were taken: every victim queue is still at or above its nominal quota.
    for vq in {pr.victim_queue for pr in fs}:
        nominal = fleet.queues[vq].quotas[flavour].nominal
        assert after_use.get((vq, flavour), 0) >= nominal


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets(), seed=st.integers(0, 2**32 - 1), strategies=st.sampled_from([FINAL, INITIAL, BOTH]))
def test_fair_sharing_keeps_quota_gangs_and_protection_on_random_fleets(
        fleet: QueueConfig, seed: int, strategies: tuple[FairStrategy, ...]) -> None:
    fleet = fair(fleet, strategies)
    rng = random.Random(seed)
    sim = Sim(fleet)
    for p, d in burst(rng, fleet, 120, models=("H100", "B200")):
        sim.submit(p, d)
    for _ in range(30):                      # Sim.step checks quota, cohort and gang invariants each cycle
        before = dict(sim.running)
        sim.step(600.0)
        for pr in sim.cycles[-1].preemptions:
            v = before[pr.victim]
            if fleet.protection.protects(v.priority, v.run_s(sim.now)):
                assert pr.reason == "ReclaimNominal" and pr.victim_queue != pr.preemptor_queue
            if pr.reason == "FairShare":
                assert pr.victim_queue != pr.preemptor_queue
