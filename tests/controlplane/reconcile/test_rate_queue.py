"""The loop's work queue: per-key back-off, one rate budget, and keys of one kind handed out without those
of another (placement's back-off keys share the queue with stack keys)."""

from __future__ import annotations

from controlplane.reconcile.queue import RateLimitedQueue


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_back_off_doubles_and_forget_clears_it():
    clock = Clock()
    q = RateLimitedQueue(base_s=1.0, max_s=4.0, clock=clock)
    assert [q.retry("stack:a") for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]
    assert q.backing_off("stack:a") and q.ready() == []
    clock.t = 4.0
    assert q.ready() == ["stack:a"] and not q.backing_off("stack:a")
    q.forget("stack:a")
    assert q.failures("stack:a") == 0


def test_keys_of_another_prefix_neither_pop_nor_spend_the_budget():
    # A burst: hundreds of placement back-offs due before the stacks the pass just planned.
    clock = Clock()
    q = RateLimitedQueue(base_s=0.5, rate_per_s=0.0, burst=10, clock=clock)
    for i in range(500):
        q.retry(f"place:w{i}")
    clock.t = 1.0
    for i in range(5):
        q.add(f"stack:s{i}")
    assert q.ready(prefix="stack:") == [f"stack:s{i}" for i in range(5)]
    assert q.backing_off("place:w0") is False and q.failures("place:w0") == 1   # still kept, not popped
    assert len(q) == 500
    # Without the prefix, the oldest keys (the placement ones) take the whole budget: what the loop did.
    for i in range(5):
        q.add(f"stack:s{i}")
    assert all(k.startswith("place:") for k in q.ready())


def test_keys_of_another_prefix_left_past_their_longest_back_off_are_dropped():
    """A placement key stays in the queue (ready() with the stack prefix never pops it); once past the
    longest back-off its workload was placed or deleted, so it goes with its failures: no growth per
    workload ever unplaced."""
    clock = Clock()
    q = RateLimitedQueue(base_s=1.0, max_s=4.0, clock=clock)
    for i in range(100):
        q.retry(f"place:w{i}")
    clock.t = 3.0
    q.ready(prefix="stack:")
    assert len(q) == 100 and q.failures("place:w0") == 1    # due at 1.0, not yet stale
    q.retry("place:w0")                                     # still failing: kept, backing off
    clock.t = 5.01                                          # the others are 4.01 s past due
    q.ready(prefix="stack:")
    assert len(q) == 1 and q.failures("place:w1") == 0 and q.failures("place:w0") == 2
