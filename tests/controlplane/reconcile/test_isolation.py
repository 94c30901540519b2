"""Failure isolation in the loop (issue 13): one workload's bad luck or bad input never touches another's
pools, state or messages; extra nodes are drift; a pool that stays short is a capacity failure."""

from __future__ import annotations

import itertools
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from controlplane.model.identity import pool_name, workload_key
from controlplane.reconcile import failover
from controlplane.store import audit
from controlplane.store import workloads as repo
from infra.engines.base import UpResult
from infra.spec import StackSpec
from providers.model import NodeState
from tests.controlplane.reconcile.fakes import FakeCloud, FakeEngine, FakePlacer
from tests.controlplane.reconcile.harness import drive, make_controller, states, submit


def _rows(db: Any) -> dict[tuple[str, str], Any]:
    with db.session() as s:
        return {(w.team, w.name): SimpleNamespace(state=w.state, message=w.message, key=w.key,
                                                  pools=[a.pool for a in w.assignments], nodes=sum(a.nodes for a in w.assignments))
                for w in repo.list_(s, include_deleted=True)}


def test_pool_names_never_collide():
    """Item 1: 'nl\\n' and 'nl' both got pool 'nl-0'; names cut at 56 characters shared pools too."""
    long_a, long_b = "x" * 60 + "-aa", "x" * 60 + "-bb"
    names = {pool_name(long_a, 0, workload_key("t", long_a)), pool_name(long_b, 0, workload_key("t", long_b)),
             pool_name("train", 0, workload_key("alpha", "train")), pool_name("train", 0, workload_key("beta", "train")),
             pool_name("train", 0, workload_key("alpha", "train") + "#2")}
    assert len(names) == 5 and all(len(n) <= 40 for n in names)
    assert workload_key("a-b", "c") != workload_key("a", "b-c")
    k1, k2 = workload_key("t" * 63, "n" * 63), workload_key("t" * 63, "n" * 62 + "m")
    assert k1 != k2 and len(k1) == len(k2) == 63


def test_two_teams_may_both_run_train_in_one_stack(db):
    cloud, placer = FakeCloud(), FakePlacer()
    c = make_controller(db, cloud, placer)
    submit(db, "train", team="alpha")
    submit(db, "train", team="beta")
    drive(c, passes=6)
    rows = _rows(db)
    assert {k: r.state for k, r in rows.items()} == {("alpha", "train"): "Running", ("beta", "train"): "Running"}
    assert {n.workload for n in cloud.nodes.values()} == {workload_key("alpha", "train"), workload_key("beta", "train")}
    assert not set(rows["alpha", "train"].pools) & set(rows["beta", "train"].pools)


def _live(cloud: FakeCloud, key: str) -> int:
    return sum(1 for n in cloud.nodes.values() if n.workload == key and n.state in (NodeState.RUNNING, NodeState.PENDING))


def test_extra_nodes_are_drift_and_are_removed(db):
    """Item 3: 11 workloads held extra nodes ('44/4 nodes running') and were still called Running."""
    cloud, placer = FakeCloud(), FakePlacer()
    c = make_controller(db, cloud, placer)
    submit(db, "gang", gpus=16)
    drive(c)
    row = _rows(db)["research", "gang"]
    assert row.state == "Running" and _live(cloud, row.key) == row.nodes == 2
    some = next(iter(cloud.nodes.values()))
    for i in (7, 8, 9):    # nodes a killed run left behind: its pool and a pool it no longer has
        nid = f"{some.pool}/{i}" if i < 9 else "stale-pool/0"
        cloud.nodes[nid] = replace(some, id=nid, name=nid, pool=some.pool if i < 9 else "stale-pool")
    assert _live(cloud, row.key) == 5
    drive(c)
    assert _live(cloud, row.key) == row.nodes == 2 and states(db)["gang"] == "Running"


class RefusingEngine(FakeEngine):
    """Refuses pools on an instance type, as a provider's component does (output ``refused``), and
    applies the rest of the stack."""

    def __init__(self, cloud: FakeCloud, bad_type: str) -> None:
        super().__init__(cloud)
        self.bad_type = bad_type

    def up(self, stack: StackSpec) -> UpResult:
        refused = {p.pool: f"pool {p.pool!r}: instance_type: {p.instance_type} has no InfiniBand"
                   for p in stack.pools if p.instance_type == self.bad_type}
        result = super().up(replace(stack, pools=tuple(p for p in stack.pools if p.pool not in refused)))
        result.outputs["refused"] = refused
        return result


class TwoTypePlacer(FakePlacer):
    """Workloads named bad-* go on the refused instance type, then (once blocked) on a good one."""

    def __call__(self, workloads: Any, snapshot: Any, policies: Any) -> Any:
        out = super().__call__(workloads, snapshot, policies)
        for d in out.decisions:
            if d.workload.startswith("bad") and self.decided[d.workload] == 1:
                d.assignments = [replace(a, instance_type="Standard_NC40ads_H100_v5") for a in d.assignments]
        return out


def test_a_refused_pool_fails_alone_and_names_no_other_pool(db):
    """Item 7: a pool the component refused failed its whole stack; the innocent workload's message named
    the other's pool (another team's)."""
    cloud, placer = FakeCloud(), TwoTypePlacer()
    c = make_controller(db, cloud, placer, engine=RefusingEngine(cloud, "Standard_NC40ads_H100_v5"))
    submit(db, "bad-gang", team="alpha")
    submit(db, "innocent", team="beta")
    drive(c, passes=8)
    rows = _rows(db)
    assert rows["beta", "innocent"].state == "Running"
    assert rows["alpha", "bad-gang"].state == "Running"           # re-placed away from the refused type
    with db.session() as s:
        ev = [e for e in audit.events(s, subject="bad-gang") if e.action == "failover"]
        beta = [e for e in audit.events(s, team="beta")]
    assert ev and "InfiniBand" in ev[0].details["reason"] and ev[0].details["trigger"] == "refused"
    text = " ".join([rows["beta", "innocent"].message, *(str(e.details) for e in beta)])
    assert "bad-gang" not in text and "alpha" not in text


class PendingEngine(FakeEngine):
    """Applies pools but the nodes of one instance type never come up (a revoked, emptied zone)."""

    def __init__(self, cloud: FakeCloud, stuck_type: str) -> None:
        super().__init__(cloud)
        self.stuck_type = stuck_type

    def up(self, stack: StackSpec) -> UpResult:
        result = super().up(stack)
        with self.cloud.lock:
            for nid, n in list(self.cloud.nodes.items()):
                if n.instance_type == self.stuck_type:
                    self.cloud.nodes[nid] = replace(n, state=NodeState.PENDING)
        return result


def test_a_pool_short_past_the_bound_is_a_capacity_failure(db):
    """Item 4: CoreWeave kept 12 workloads Provisioning ('0/1 nodes running') for over 6.5 minutes."""
    cloud, placer = FakeCloud(), TwoTypePlacer()
    c = make_controller(db, cloud, placer, engine=PendingEngine(cloud, "Standard_NC40ads_H100_v5"))
    # The bound on a clock of passes, not seconds: a workload is overdue once seen short in 4 passes in a
    # row. With a 0 s bound, a healthy pool seen between "Provisioning" and its stack run's nodes (a race a
    # loaded machine wins) was failed over too; the stuck pool stays short every pass. The clock advances
    # once a pass, not once a reading: with one tick per reading, every other short workload's reading moved
    # this one's clock too, and a re-placed workload seen short twice while its stack ran was overdue.
    passes = itertools.count()
    now = [next(passes)]
    tick = c.tick

    def counted_tick() -> None:
        now[0] = next(passes)
        tick()

    c.tick = counted_tick  # type: ignore[method-assign]
    c.short = failover.ShortWatch(bound_s=3, clock=lambda: now[0])
    submit(db, "bad-luck", team="alpha")
    submit(db, "fine", team="beta")
    drive(c, passes=16)
    rows = _rows(db)
    assert rows["alpha", "bad-luck"].state == "Running" and rows["beta", "fine"].state == "Running"
    assert placer.decided["bad-luck"] == 2 and placer.decided["fine"] == 1
    assert ("aws", "us-east-1a", "Standard_NC40ads_H100_v5", "on-demand", "") in c.blocks.active()
    with db.session() as s:
        ev = [e for e in audit.events(s, subject="bad-luck") if e.action == "failover"]
    assert ev and ev[0].details["trigger"] == "capacity" and "not supplied" in ev[0].details["reason"]


class RefuseTeamPlacer(FakePlacer):
    def __init__(self, team: str) -> None:
        super().__init__()
        self.team = team

    def __call__(self, workloads: Any, snapshot: Any, policies: Any) -> Any:
        out = super().__call__(workloads, snapshot, policies)
        for w, d in zip(workloads, out.decisions, strict=True):
            if w.team == self.team:
                d.placed, d.assignments, d.reasons = False, [], ["no capacity: nothing matches"]
        return out


def test_an_unplaceable_workload_does_not_starve_another_teams_workload_of_the_same_name(db):
    cloud = FakeCloud()
    c = make_controller(db, cloud, RefuseTeamPlacer("alpha"))
    submit(db, "job", team="alpha")     # first in every batch, never placed
    submit(db, "job", team="beta")
    drive(c, passes=6)
    rows = _rows(db)
    assert rows["alpha", "job"].state == "Pending" and rows["beta", "job"].state == "Running"
    assert "beta" not in rows["alpha", "job"].message and "alpha" not in rows["beta", "job"].message
