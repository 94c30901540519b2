"""The admission engine, one behaviour per test (the properties are in test_properties.py)."""

from __future__ import annotations

from controlplane.queues import Pending, Protection, admit
from tests.controlplane.queues.builders import config, held, pend, queue

HOUR = 3600.0


def test_within_nominal_admits_in_priority_then_arrival_order() -> None:
    c = config(queue("a", 8, cohort=None))
    cyc = admit(c, [], [pend("late", "a", 4, arrival=2), pend("early", "a", 4, arrival=1),
                        pend("urgent", "a", 4, priority=10, arrival=3)])
    assert [a.key for a in cyc.admitted] == ["urgent", "early"]
    w = cyc.waiting["late"]
    assert (w.reason, w.position) == ("quota", 1)
    assert "uses 8 of its nominal 8" in w.message


def test_a_gang_is_admitted_whole_or_not_at_all() -> None:
    c = config(queue("a", 10, cohort=None))
    cyc = admit(c, [held("x", "a", 4)], [pend("gang", "a", 8), pend("small", "a", 2, arrival=1)])
    assert [(a.key, a.gpus) for a in cyc.admitted] == [("small", 2)]   # the gang waits; the small one fits
    assert cyc.usage[("a", "h100")] == 6


def test_borrows_from_an_idle_peer_and_reports_it() -> None:
    c = config(queue("a", 8), queue("b", 8))
    cyc = admit(c, [], [pend("big", "a", 12)])
    assert [(a.key, a.borrowed) for a in cyc.admitted] == [("big", 4)]
    assert cyc.borrowed == {("a", "h100"): 4}


def test_borrowing_limit_and_lending_limit_bound_the_loan() -> None:
    c = config(queue("a", 8, borrow=2), queue("b", 8))
    assert admit(c, [], [pend("w", "a", 12)]).waiting["w"].reason == "policy"   # 12 > 8 + 2, ever
    c = config(queue("a", 8), queue("b", 8, lend=3))
    assert not admit(c, [], [pend("w", "a", 12)]).admitted
    assert admit(c, [], [pend("w", "a", 11)]).admitted


def test_the_lender_reclaims_when_it_returns() -> None:
    c = config(queue("a", 8), queue("b", 8))
    # a borrowed 4 of b's GPUs while b was idle; b's own work arrives and takes its nominal back.
    cyc = admit(c, [held("a1", "a", 8), held("a2", "a", 4)], [pend("b1", "b", 8)], now=HOUR)
    assert [(p.victim, p.reason) for p in cyc.preemptions] == [("a2", "ReclaimNominal")]
    assert cyc.waiting["b1"].reason == "preempting"
    # Next cycle the victim is still stopping: no second victim is chosen.
    again = admit(c, [held("a1", "a", 8), held("a2", "a", 4, preempted_for="b1")], [pend("b1", "b", 8)], now=HOUR)
    assert again.preemptions == [] and again.waiting["b1"].reason == "preempting"
    # Once it is gone, b1 is admitted within b's nominal.
    done = admit(c, [held("a1", "a", 8)], [pend("b1", "b", 8)], now=HOUR)
    assert [(a.key, a.borrowed) for a in done.admitted] == [("b1", 0)]


def test_reclaim_takes_only_what_was_borrowed() -> None:
    c = config(queue("a", 8), queue("b", 8))
    # a borrows 2; b asks for 8 but only 6 are free plus the 2 on loan: a keeps its own nominal.
    cyc = admit(c, [held("a1", "a", 6), held("a2", "a", 2), held("a3", "a", 2), held("b0", "b", 2)],
                [pend("b1", "b", 8)], now=HOUR)
    assert cyc.preemptions == [] and cyc.waiting["b1"].reason == "quota"


def test_victims_minimise_lost_gpu_hours() -> None:
    c = config(queue("a", 16, cohort=None))
    admitted = [held("old", "a", 8, running_since=0.0),            # 8 GPUs x 10 h = 80 GPU-h to lose
                held("new", "a", 8, running_since=9 * HOUR),       # 8 x 1 h = 8
                ]
    cyc = admit(c, admitted, [pend("hi", "a", 8, priority=5)], now=10 * HOUR)
    assert [(p.victim, p.reason, round(p.lost_gpu_hours)) for p in cyc.preemptions] == \
        [("new", "InQueuePriority", 8)]


def test_not_yet_running_workloads_go_first_and_no_more_than_needed() -> None:
    c = config(queue("a", 16, cohort=None))
    admitted = [held("r1", "a", 4, running_since=0.0), held("p1", "a", 4), held("p2", "a", 4),
                held("r2", "a", 4, running_since=0.0)]
    cyc = admit(c, admitted, [pend("hi", "a", 6, priority=1)], now=HOUR)
    assert sorted(p.victim for p in cyc.preemptions) == ["p1", "p2"]
    assert sum(p.lost_gpu_hours for p in cyc.preemptions) == 0


def test_equal_or_higher_priority_is_never_preempted_in_queue() -> None:
    c = config(queue("a", 8, cohort=None))
    cyc = admit(c, [held("x", "a", 8, priority=5)], [pend("y", "a", 8, priority=5)])
    assert cyc.preemptions == []


def test_protected_long_runs_and_priorities_are_not_victims() -> None:
    prot = Protection(running_longer_than_s=24 * HOUR, priority_at_least=1000)
    c = config(queue("a", 16, cohort=None), protection=prot)
    admitted = [held("week", "a", 8, running_since=0.0), held("vip", "a", 8, priority=1000 - 1)]
    now = 7 * 24 * HOUR
    # vip's priority 999 is not protected, but the preemptor's 999 is not above it either.
    assert admit(c, admitted, [pend("hi", "a", 16, priority=999)], now=now).preemptions == []
    c2 = config(queue("a", 16, cohort=None), protection=prot)
    cyc = admit(c2, [held("week", "a", 8, running_since=0.0), held("short", "a", 8, running_since=now - HOUR)],
                [pend("hi", "a", 8, priority=10)], now=now)
    assert [p.victim for p in cyc.preemptions] == ["short"]
    cyc = admit(c2, [held("week", "a", 16, running_since=0.0)], [pend("hi", "a", 8, priority=10)], now=now)
    assert cyc.preemptions == [] and cyc.waiting["hi"].reason == "quota"


def test_protection_yields_only_to_reclaim_of_the_lenders_nominal() -> None:
    prot = Protection(running_longer_than_s=24 * HOUR)
    c = config(queue("a", 8), queue("b", 8), protection=prot)
    now = 48 * HOUR
    cyc = admit(c, [held("a-own", "a", 8, running_since=0.0), held("a-loan", "a", 8, running_since=0.0,
                                                                          admitted_at=1.0)],
                [pend("b1", "b", 8)], now=now)
    assert [(p.victim, p.reason) for p in cyc.preemptions] == [("a-loan", "ReclaimNominal")]
    # b asking beyond its own nominal is not a reclaim: a borrower (protected or not) is never evicted so
    # that another queue can borrow.
    c3 = config(queue("a", 8), queue("b", 8), queue("c", 8), protection=prot)
    cyc = admit(c3, [held("a-own", "a", 8, running_since=0.0), held("a-loan", "a", 8, running_since=now - 60),
                     held("b0", "b", 8)], [pend("b1", "b", 4)], now=now)
    assert cyc.preemptions == [] and cyc.waiting["b1"].reason == "quota"


def test_reclaim_never_and_lower_priority_policies() -> None:
    c = config(queue("a", 8), queue("b", 8, reclaim="Never"))
    assert admit(c, [held("a1", "a", 16)], [pend("b1", "b", 8)]).preemptions == []
    c = config(queue("a", 8), queue("b", 8, reclaim="LowerPriority"))
    assert admit(c, [held("a1", "a", 16, priority=3)], [pend("b1", "b", 8, priority=3)]).preemptions == []
    assert admit(c, [held("a1", "a", 16, priority=3)], [pend("b1", "b", 8, priority=4)]).preemptions


def test_why_it_waits_policy_reasons() -> None:
    c = config(queue("a", 8, cohort=None))
    cyc = admit(c, [], [pend("nq", None, 1), pend("gone", "zzz", 1), pend("b", "a", 1, model="B200"),
                        pend("huge", "a", 9)])
    assert cyc.waiting["nq"].reason == "policy" and "no queue" in cyc.waiting["nq"].message
    assert "'zzz' does not exist" in cyc.waiting["gone"].message
    assert "no quota for GPU model B200" in cyc.waiting["b"].message
    assert "at most 8" in cyc.waiting["huge"].message


def test_fair_share_orders_competing_borrowers_by_weight() -> None:
    # Neither queue has nominal quota; a lender holds 30 idle GPUs. Equal asks, weights 2:1.
    c = config(queue("a", 0, weight=2), queue("b", 0, weight=1), queue("lender", 30))
    pending = [pend(f"a{i}", "a", 1, arrival=i) for i in range(40)] + \
              [pend(f"b{i}", "b", 1, arrival=i) for i in range(40)]
    cyc = admit(c, [], pending)
    got = {q: sum(a.gpus for a in cyc.admitted if a.queue == q) for q in "ab"}
    assert got == {"a": 20, "b": 10}


def test_equal_arrivals_go_by_store_order_not_by_name() -> None:
    c = config(queue("a", 16, cohort=None))
    first = Pending("a_zeta", "a", 16, ("H100",), arrival=5.0, seq=1)
    second = Pending("a_alpha", "a", 8, ("H100",), arrival=5.0, seq=2)
    cyc = admit(c, [], [second, first])
    assert [a.key for a in cyc.admitted] == ["a_zeta"]
    assert cyc.waiting["a_alpha"].position == 1
