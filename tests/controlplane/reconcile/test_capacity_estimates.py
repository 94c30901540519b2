"""Capacity learned from stock-outs: the cap's arithmetic (held, then probing back up, then forgotten), the
placement property (never more into a capped pool than its cap), the store (shared by every replica), and
failover recording a stock-out with what the pool still holds."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.model import parse_manifests
from controlplane.placement.engine import place
from controlplane.placement.snapshot import FleetSnapshot, pool_key
from controlplane.policy.model import PolicySet
from controlplane.reconcile import capacity_estimates as ce
from controlplane.reconcile import failover, fleet
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.models import Assignment, WorkloadState
from providers.catalog import default_catalog
from providers.errors import CapacityError

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
KEY: ce.PoolKey = ("aws", "us-east-1a", "p5.48xlarge", "on-demand", "")


@settings(max_examples=200, deadline=None)
@given(nodes=st.integers(0, 500), outs=st.integers(1, 8), age=st.floats(0, 20_000), later=st.floats(0, 5_000))
def test_cap_holds_then_recovers_and_never_shrinks_over_time(nodes, outs, age, later):
    e = ce.Estimate(KEY, nodes, outs, T0)
    now = T0 + timedelta(seconds=age)
    a, b = e.allowed(now), e.allowed(now + timedelta(seconds=later))
    if age < e.hold_s():
        assert a == nodes                          # held at what the pool had
    if a is not None:
        assert a >= nodes
        assert b is None or b >= a                 # probing only ever widens the cap
    # After the hold and one TTL the pool is offered more than it had: the estimate recovers.
    recovered = e.allowed(T0 + timedelta(seconds=e.hold_s() + ce.TTL_S))
    assert recovered is None or recovered > nodes


def test_repeated_stock_outs_hold_longer_and_spent_estimates_are_forgotten():
    one, three = ce.Estimate(KEY, 4, 1, T0), ce.Estimate(KEY, 4, 3, T0)
    assert one.hold_s() == ce.TTL_S and three.hold_s() == 4 * ce.TTL_S
    assert one.allowed(T0 + timedelta(seconds=ce.TTL_S + 1)) == 5
    assert one.allowed(T0 + timedelta(seconds=3 * ce.TTL_S + 1)) == 8
    assert three.allowed(T0 + timedelta(seconds=ce.TTL_S + 1)) == 4
    assert one.allowed(T0 + timedelta(days=1)) is None
    assert one.describe(T0 + timedelta(seconds=125)) == \
        "aws:us-east-1a p5.48xlarge on-demand capped at 4 nodes after a stock-out 2 min ago"


def _one_gpu_burst(n: int):
    docs = "\n---\n".join(
        f"metadata: {{name: b{i}, team: t}}\nspec: {{kind: inference, gpus: {{model: [H100, A100, L4], count: 1}}}}\n"
        for i in range(n))
    return parse_manifests(docs)


SNAP = FleetSnapshot.from_catalog(default_catalog(), scale=1.0)


@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_placement_never_puts_more_into_a_pool_than_its_cap(data):
    workloads = _one_gpu_burst(data.draw(st.integers(20, 120), label="burst"))
    # Cap the pools placement picks first (uncapped), then place again within the caps.
    first = place(workloads, SNAP, PolicySet.default())
    used = Counter((a.provider, a.zone, a.instance_type, str(a.capacity_type), a.reservation or "")
                   for d in first.decisions for a in d.assignments)
    caps = {k: ce.Cap(data.draw(st.integers(0, n), label=f"cap {k}"), f"{k} capped") for k, n in used.items()}
    capped = fleet.apply_caps(SNAP, ce.Learned(caps, {}))
    for p in capped.pools:
        if pool_key(p) in caps:
            assert p.available_nodes <= caps[pool_key(p)].free
    again = place(workloads, capped, PolicySet.default())
    got: Counter[ce.PoolKey] = Counter()
    for d in again.decisions:
        for a in d.assignments:
            got[(a.provider, a.zone, a.instance_type, str(a.capacity_type), a.reservation or "")] += a.nodes
    for k, cap in caps.items():
        assert got[k] <= cap.free, (k, got[k], cap.free)


def _hold(db: Database, name: str, state: WorkloadState, key: ce.PoolKey, nodes: int) -> str:
    with db.session() as s:
        row, _ = repo.submit(s, name=name, team="research", spec={"metadata": {"name": name}}, priority=0,
                             gpus=8 * nodes)
        row.state = state.value
        row.assignments = [Assignment(pool=f"p-{name}", provider=key[0], region="us-east-1", zone=key[1],
                                      instance_type=key[2], nodes=nodes, gpus=8 * nodes, gpu_model="H100",
                                      capacity_type=key[3], reservation=key[4])]
        return row.key


def test_caps_are_shared_through_the_store_and_count_what_is_assigned(db):
    _hold(db, "a", WorkloadState.RUNNING, KEY, 3)
    _hold(db, "b", WorkloadState.PLACED, KEY, 1)
    _hold(db, "c", WorkloadState.PENDING, KEY, 5)          # not holding anything yet
    now = datetime.now(UTC)
    with db.session() as s:
        counts = ce.held(s, [KEY])
        assert counts == {KEY: 4}
        ce.record_stock_out(s, {KEY: 3}, now=now)
    # Another replica (a second Database on the same store) sees it: held, 3 allowed, 4 assigned.
    other = Database.from_url(str(db.engine.url.render_as_string(hide_password=False)))
    try:
        caps = ce.caps(other, now=now + timedelta(seconds=10))
        assert caps[KEY].free == 0 and "capped at 3 nodes" in caps[KEY].why
        assert ce.caps(other, now=now + timedelta(seconds=ce.TTL_S + 5))[KEY].free == 0   # 4 allowed, 4 assigned
        assert ce.caps(other, now=now + timedelta(seconds=2 * ce.TTL_S + 5))[KEY].free == 1
        assert ce.caps(other, now=now + timedelta(days=2)) == {}
        assert ce.load(other) == []                         # spent: deleted
    finally:
        other.dispose()


def test_a_second_stock_out_while_capped_doubles_the_hold(db):
    now = datetime.now(UTC)
    with db.session() as s:
        ce.record_stock_out(s, {KEY: 2}, now=now)
    with db.session() as s:
        [e] = ce.record_stock_out(s, {KEY: 1}, now=now + timedelta(seconds=200))
    assert (e.nodes, e.stock_outs) == (1, 2) and e.hold_s() == 2 * ce.TTL_S


def test_stock_out_in_a_stack_run_caps_the_pool_at_what_it_still_holds(db):
    kept = _hold(db, "kept", WorkloadState.RUNNING, KEY, 2)
    waiting = [_hold(db, f"w{i}", WorkloadState.PLACED, KEY, 1) for i in range(5)]
    with db.session() as s:
        pools = [type("P", (), {"pool": a.pool, "workload": r.key})()
                 for r in repo.list_(s, limit=100) for a in r.assignments]
    moved = failover.on_stack_failure(db, pools, CapacityError("InsufficientInstanceCapacity"), state=None,
                                      blocks=failover.BlockList(), actor="t", fenced=lambda: True)
    assert sorted(moved) == sorted(waiting) and kept not in moved
    [e] = ce.load(db)
    assert (e.key, e.nodes) == (KEY, 2)
    with db.session() as s:
        msgs = {r.key: r.message for r in repo.list_(s, limit=100)}
    assert "capped at 2 nodes after a stock-out" in msgs[waiting[0]]
    assert ce.caps(db)[KEY].free == 0


def test_quota_errors_teach_no_capacity(db):
    _hold(db, "q", WorkloadState.PLACED, KEY, 1)
    with db.session() as s:
        pools = [type("P", (), {"pool": a.pool, "workload": r.key})()
                 for r in repo.list_(s, limit=10) for a in r.assignments]
    from providers.errors import QuotaError

    failover.on_stack_failure(db, pools, QuotaError("quota"), state=None, blocks=failover.BlockList(),
                              actor="t", fenced=lambda: True)
    assert ce.load(db) == []


def test_a_partial_fill_keeps_the_nodes_it_got_and_counts_them(db):
    """The run created two pools before the cloud ran out on the third: those two keep their nodes (no
    orphan, no re-placement) and the pool is capped at them; the rest move."""
    names = [f"pf{i}" for i in range(5)]
    keys = [_hold(db, n, WorkloadState.PLACED, KEY, 1) for n in names]
    state = {"resources": {
        "urn:pulumi:s::awan::pool::p-pf0": {"name": "p-pf0", "status": "created"},
        "urn:pulumi:s::awan::pool::p-pf1": {"name": "p-pf1", "status": "created"},
        "urn:pulumi:s::awan::pool::p-pf2": {"name": "p-pf2", "status": "failed"}}}
    with db.session() as s:
        pools = [type("P", (), {"pool": a.pool, "workload": r.key})()
                 for r in repo.list_(s, limit=100) for a in r.assignments]
    moved = failover.on_stack_failure(db, pools, CapacityError("stock-out"), state=state,
                                      blocks=failover.BlockList(), actor="t", fenced=lambda: True)
    assert sorted(moved) == sorted(keys[2:])
    [e] = ce.load(db)
    assert e.nodes == 2
    assert ce.caps(db)[KEY].free == 0


def test_slow_start_spreads_unpublished_pools_and_grows_with_confirmed_nodes():
    learned = ce.Learned({}, {KEY: (10, 4)}, start=8)
    assert learned.free(KEY, 100, known=False) == (0, learned.free(KEY, 100, known=False)[1])   # 8 allowed, 10 in
    assert "at most 8 nodes" in learned.free(KEY, 100, known=False)[1]
    grown = ce.Learned({}, {KEY: (25, 20)}, start=8)
    assert grown.free(KEY, 100, known=False)[0] == 15                                        # 2 x 20 - 25
    assert grown.free(KEY, 10, known=False) is None           # the report is lower: nothing to cap
    assert learned.free(KEY, 100, known=True) is None         # published capacity is not second-guessed
    capped = ce.Learned({KEY: ce.Cap(3, "why")}, {KEY: (0, 0)}, start=8)
    assert capped.free(KEY, 100, known=True) == (3, "why")    # an estimate caps any pool that ran out


def test_without_slow_start_only_pools_that_ran_out_are_capped():
    # The service's default (AWAN_CAPACITY_SLOW_START=0): a 128-node gang into a pool nothing has run in is
    # not held back by a start size; a pool that stocked out is still capped by what it taught.
    off = ce.Learned({KEY: ce.Cap(3, "why")}, {}, start=None)
    other = (KEY[0], KEY[1], "other-type", KEY[3], KEY[4])
    assert off.free(other, 128, known=False) is None
    assert off.free(KEY, 128, known=False) == (3, "why")


def test_usage_counts_assigned_and_confirmed_nodes(db):
    _hold(db, "u1", WorkloadState.PLACED, KEY, 2)
    _hold(db, "u2", WorkloadState.RUNNING, KEY, 3)
    _hold(db, "u3", WorkloadState.PENDING, KEY, 7)
    assert ce.learned(db).usage[KEY] == (5, 3)


def test_a_provider_whose_pools_ran_out_small_gets_a_smaller_slow_start(db):
    _hold(db, "s1", WorkloadState.RUNNING, KEY, 3)
    with db.session() as s:
        ce.record_stock_out(s, {KEY: 3})
    got = ce.learned(db, start=32)
    other = ("aws", "us-east-1b", "p5.48xlarge", "on-demand", "")
    assert got.starts == {"aws": 3}
    assert got.free(other, 100, known=False)[0] == 3
    assert got.free(("gcp", "us-central1-a", "a3-highgpu-8g", "on-demand", ""), 100, known=False)[0] == 32


def test_without_slow_start_a_cloud_whose_pools_ran_out_offers_its_other_pools_what_they_held(db):
    # The 2,000-workload burst: with the slow start off, each pass met one stock-out per provider (the whole
    # remainder piled into the next cheapest pool); a cloud's stock-outs now teach its other unconfirmed pools.
    _hold(db, "t1", WorkloadState.RUNNING, KEY, 3)
    with db.session() as s:
        ce.record_stock_out(s, {KEY: 3})
    got = ce.learned(db, start=None)
    other = ("aws", "us-east-1b", "p5.48xlarge", "on-demand", "")
    assert got.starts == {"aws": 3}
    free = got.free(other, 100, known=False)
    assert free is not None and free[0] == 3 and "what its pools that ran out held" in free[1]
    assert got.free(other, 100, known=True) is None          # published capacity is not second-guessed
    # A cloud that has not run out anywhere is not capped (no slow start configured).
    assert got.free(("gcp", "us-central1-a", "a3-highgpu-8g", "on-demand", ""), 100, known=False) is None
    # A pool that delivered what its cloud taught is not probed past it (one failed stack run per pool)...
    full = dataclasses.replace(got, usage={other: (3, 3)})
    assert full.allowed(other) == 3 and full.free(other, 100, known=False)[0] == 0
    # ... nor when the estimates probe back up (every pool of the cloud would probe at once): the pool that
    # ran out probes alone, and the start lasts as long as the estimates do.
    later = ce.learned(db, start=None, now=datetime.now(UTC) + timedelta(seconds=ce.TTL_S + 1))
    assert later.starts == {"aws": 3} and later.caps[KEY].free == 1
    assert dataclasses.replace(later, usage={other: (3, 3)}).free(other, 100, known=False)[0] == 0
    assert ce.learned(db, start=None, now=datetime.now(UTC) + timedelta(days=2)).starts == {}


def test_the_largest_waiting_gang_is_placeable_in_a_pool_nothing_of_ours_ran_in(db):
    # A start smaller than a single gang would hold that gang forever: the floor is its size.
    _hold(db, "g1", WorkloadState.RUNNING, KEY, 3)
    with db.session() as s:
        ce.record_stock_out(s, {KEY: 3})
        repo.submit(s, name="gang", team="research", spec={"metadata": {"name": "gang"}}, priority=0, gpus=64)
    other = ("aws", "us-east-1b", "p5.48xlarge", "on-demand", "")
    for start in (None, 32):
        got = ce.learned(db, start=start)
        assert got.floor == 64
        assert got.free(other, 100, known=False)[0] == 64
        assert got.free(KEY, 100, known=False)[0] == 0       # the pool that ran out stays at what it held
    with db.session() as s:
        row = repo.get(s, "gang", "research")
        assert row is not None
        row.state = WorkloadState.RUNNING.value
    assert ce.learned(db, start=32).floor == 0
    assert ce.learned(db, start=32).free(other, 100, known=False)[0] == 3


def test_a_stock_out_sends_back_what_waits_beyond_what_its_cloud_taught(db):
    # Placed before aws taught "3 nodes a pool": 5 waiting in another aws pool, 5 in a pool of a stack now
    # running, 5 in a gcp pool. The first stack run of the 5 would meet a stock-out at the 4th node.
    _hold(db, "h", WorkloadState.RUNNING, KEY, 3)
    with db.session() as s:
        ce.record_stock_out(s, {KEY: 3})
    other = ("aws", "us-east-1b", "p5.48xlarge", "on-demand", "")
    west = ("aws", "us-west-2a", "p5.48xlarge", "on-demand", "")
    gcp = ("gcp", "us-central1-a", "a3-highgpu-8g", "on-demand", "")
    waiting = [_hold(db, f"w{i}", WorkloadState.PLACED, other, 1) for i in range(5)]
    busy = [_hold(db, f"b{i}", WorkloadState.PLACED, west, 1) for i in range(5)]
    gcps = [_hold(db, f"g{i}", WorkloadState.PLACED, gcp, 1) for i in range(5)]
    with db.session() as s:   # _hold names every region us-east-1: put the west pools in their own stack
        for row in repo.list_(s, limit=100):
            for a in row.assignments:
                if a.zone == "us-west-2a":
                    a.region = "us-west-2"
    moved = failover.trim_to_learned(db, ce.learned(db, start=None), ["aws"], busy_stacks=["awan-aws-us-west-2"],
                                     actor="t", fenced=lambda: True)
    assert sorted(moved) == sorted(waiting[3:])                 # the oldest 3 keep their places
    with db.session() as s:
        states = {r.key: (r.state, r.message) for r in repo.list_(s, limit=100)}
    assert all(states[k][0] == "Pending" and "may hold 3 nodes" in states[k][1] for k in waiting[3:])
    assert all(states[k][0] == "Placed" for k in waiting[:3] + busy + gcps)
    # Nothing is moved when the leader's fence is lost, and nothing more once within the caps.
    assert failover.trim_to_learned(db, ce.learned(db, start=None), ["aws"], busy_stacks=[], actor="t",
                                    fenced=lambda: False) == []
    # (The two sent back wait as gangs of 8 GPUs: the floor keeps 8 a pool placeable while they wait.)
    assert ce.learned(db, start=None).floor == 8
    taught = dataclasses.replace(ce.learned(db, start=None), floor=0)
    assert failover.trim_to_learned(db, taught, ["aws"], busy_stacks=[], actor="t", fenced=lambda: True) == busy[3:]
    assert failover.trim_to_learned(db, taught, ["aws"], busy_stacks=[], actor="t", fenced=lambda: True) == []
