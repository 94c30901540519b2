"""A region whose list calls keep failing while its health endpoint answers OK (the mock clouds over HTTP, a
fault on the list operation alone), in the real loop (controller passes, the real placer on the mock's
capacity): its Provisioning workload keeps its short-of-nodes clock and fails over to the healthy region at
the bound, with the reason; its Running workload is held, its message and a metric saying since when; a
region that answers again before the bound moves nothing. The loop's clocks are a test clock, not waited."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from controlplane.model.manifest import parse_manifests
from controlplane.placement.snapshot import FleetSnapshot
from controlplane.policy.model import PolicySet
from controlplane.reconcile import failover, observing
from controlplane.reconcile.controller import Controller, LoopConfig
from controlplane.reconcile.fleet import Observation
from controlplane.reconcile.leader import LeaderElector
from controlplane.reconcile.metrics import LoopMetrics
from controlplane.reconcile.unobserved import Unobserved, leave_out
from controlplane.store import audit
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.models import Assignment, Workload, WorkloadState
from infra.engines.base import ChangeSet, UpResult
from infra.spec import StackSpec
from providers.base import Provider
from providers.catalog import CapacityType, default_catalog
from providers.model import HealthStatus, Node, NodeState
from tests.controlplane.reconcile.fakes import FakeCloud, FakeProvider, manifest
from tests.controlplane.reconcile.harness import drive, submit
from tests.controlplane.reconcile.test_regional_observing import AWS, GCP, Cloud, _node_for, _workload

PROVISIONING, RUNNING, PENDING = (WorkloadState.PROVISIONING.value, WorkloadState.RUNNING.value,
                                  WorkloadState.PENDING.value)
BOUND = failover.SHORT_BOUND_S
LIST_OP = {"gcp": "instances.list", "aws": "DescribeInstances"}   # each mock's own name of the list call


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class NoopEngine:
    """Stack runs that succeed and change nothing: which region a workload is placed in is what is judged
    here, not its nodes (the ones the test made stand for them)."""

    name = "noop"

    def __init__(self) -> None:
        self.runs: list[str] = []

    def preview(self, stack: StackSpec) -> ChangeSet:
        return ChangeSet()

    def up(self, stack: StackSpec) -> UpResult:
        self.runs.append(stack.name)
        return UpResult(stack.name, ChangeSet(), {}, 0.0)

    def destroy(self, stack: StackSpec) -> None:
        return None


@dataclass
class Loop:
    c: Controller
    clock: Clock
    cloud: Cloud
    mc: Any
    p: Provider


@pytest.fixture(params=[GCP, AWS], ids=lambda c: c.name)
def loop(request: pytest.FixtureRequest, db: Database) -> Iterator[Loop]:
    cloud: Cloud = request.param
    mc = request.getfixturevalue(cloud.fixture)
    p = cloud.make(mc, [cloud.healthy[0], cloud.faulted[0]])
    elector = LeaderElector(db, "r1", ttl_s=15.0, renew_s=5.0)
    c = Controller(db, {cloud.name: p}, NoopEngine(), elector=elector, policies=PolicySet.default,  # type: ignore[arg-type]
                   config=LoopConfig(interval_s=0.05, resync_s=3600, retry_base_s=0.01))
    clock = Clock()
    c.short = failover.ShortWatch(BOUND, clock=clock)
    c.unseen = Unobserved(clock=clock)
    try:
        yield Loop(c, clock, cloud, mc, p)
    finally:
        p.close()


def _list_fails(lp: Loop) -> int:
    """The faulted region's list call fails; every other call there (its health among them) answers."""
    got = httpx.post(lp.mc.urls[lp.cloud.name] + "/_mock/faults",
                     json={"kind": "outage", "region": lp.cloud.faulted[0], "operation": LIST_OP[lp.cloud.name]})
    assert got.status_code < 300, got.text
    return int(got.json()["id"])


def _rows(db: Database) -> dict[str, Workload]:
    with db.session() as s:
        rows = {w.name: w for w in repo.list_(s)}
        for w in rows.values():
            _ = list(w.assignments)
        s.expunge_all()
        return rows


def _failovers(db: Database, name: str) -> list[dict[str, Any]]:
    with db.session() as s:
        return [dict(e.details) for e in audit.events(s, subject=name) if e.action == "failover"]


def _since(c: Controller, cloud: Cloud) -> float | None:
    return c.metrics.registry.get_sample_value("awan_unobserved_since_timestamp_seconds",
                                              {"provider": cloud.name, "region": cloud.faulted[0]})


def _submit_in(db: Database, name: str, region: str) -> None:
    """A workload that may run in ``region`` only ("provider:region")."""
    w = parse_manifests(manifest(name, gpus=8).replace("perNode: 8}", f"perNode: 8}}, location: {{regions: ['{region}']}}"))[0]
    with db.session() as s:
        repo.submit(s, name=w.name, team=w.team, spec=w.to_manifest(), priority=0, gpus=w.total_gpus)


def _at(lp: Loop, t: float, passes: int = 2) -> None:
    lp.clock.now = t
    drive(lp.c, passes)


def test_a_provisioning_workload_in_a_region_that_cannot_be_listed_fails_over_at_the_bound(
        db: Database, loop: Loop) -> None:
    lp, cloud = loop, loop.cloud
    _node_for(lp.p, cloud, _workload(db, cloud, "eu-wait", cloud.faulted, PROVISIONING), "eu-wait", cloud.faulted)
    _list_fails(lp)
    health = lp.p.health()
    assert health.regions.get(cloud.faulted[0], HealthStatus.OK) != HealthStatus.DOWN   # only the list fails
    _at(lp, 0.0)
    rows = _rows(db)
    assert rows["eu-wait"].state == PROVISIONING
    assert rows["eu-wait"].message.startswith(f"not observed: {cloud.name}/{cloud.faulted[0]} since ")
    _at(lp, BOUND - 1)
    assert _rows(db)["eu-wait"].state == PROVISIONING and not _failovers(db, "eu-wait")
    _at(lp, BOUND, passes=3)
    # Failed over: its pool blocked, re-placed by the real placer on the mock's capacity, in the healthy
    # region (the one it could not be observed in is left out of placement by now).
    events = _failovers(db, "eu-wait")
    assert len(events) == 1, events
    assert events[0]["trigger"] == "unobserved"
    assert f"{cloud.name}/{cloud.faulted[0]} could not be observed for {BOUND:.0f} s" in events[0]["reason"]
    assert events[0]["from"][0]["region"] == cloud.faulted[0]
    assert events[0]["blocked"] == [f"{cloud.name}/{cloud.faulted[1]}/{cloud.instance_type}/on-demand"]
    row = _rows(db)["eu-wait"]
    assert row.state != PENDING, row.message
    assert {a.region for a in row.assignments} == {cloud.healthy[0]}, row.message
    # While it stays unobservable nothing new is placed there (its nodes could not be confirmed either); once
    # it answers again, it is.
    _submit_in(db, "eu-new", f"{cloud.name}:{cloud.faulted[0]}")
    _at(lp, BOUND + 1)
    row = _rows(db)["eu-new"]
    assert row.state == PENDING and not row.assignments, row.message
    httpx.delete(lp.mc.urls[cloud.name] + "/_mock/faults").raise_for_status()
    _at(lp, BOUND + 2, passes=3)
    row = _rows(db)["eu-new"]
    assert {a.region for a in row.assignments} == {cloud.faulted[0]}, row.message


def test_a_running_workload_there_is_held_and_says_since_when(db: Database, loop: Loop) -> None:
    lp, cloud = loop, loop.cloud
    _node_for(lp.p, cloud, _workload(db, cloud, "eu-run", cloud.faulted, RUNNING), "eu-run", cloud.faulted)
    _at(lp, 0.0)
    assert _since(lp.c, cloud) is None
    fault = _list_fails(lp)
    _at(lp, 1.0)
    for t in (BOUND, 10 * BOUND):
        _at(lp, t)
        row = _rows(db)["eu-run"]
        # Its nodes were confirmed: a monitoring failure does not move it (a second set of nodes, a killed run).
        assert row.state == RUNNING and [a.region for a in row.assignments] == [cloud.faulted[0]]
        assert row.message.startswith(f"not observed: {cloud.name}/{cloud.faulted[0]} since "), row.message
        assert "held, not moved" in row.message
        assert _since(lp.c, cloud) is not None
    assert not _failovers(db, "eu-run")
    # It answers again: the note and the metric go, nothing was moved.
    httpx.delete(lp.mc.urls[cloud.name] + "/_mock/faults", params={"id": fault}).raise_for_status()
    _at(lp, 10 * BOUND + 1)
    row = _rows(db)["eu-run"]
    assert row.state == RUNNING and row.message == "1/1 nodes running"
    assert _since(lp.c, cloud) is None and not _failovers(db, "eu-run")


def test_a_region_that_answers_again_before_the_bound_moves_nothing(db: Database, loop: Loop) -> None:
    lp, cloud = loop, loop.cloud
    _node_for(lp.p, cloud, _workload(db, cloud, "eu-wait", cloud.faulted, PROVISIONING), "eu-wait", cloud.faulted)
    fault = _list_fails(lp)
    _at(lp, 0.0)
    _at(lp, BOUND / 2)
    assert _rows(db)["eu-wait"].state == PROVISIONING
    httpx.delete(lp.mc.urls[cloud.name] + "/_mock/faults", params={"id": fault}).raise_for_status()
    _at(lp, BOUND - 1)
    row = _rows(db)["eu-wait"]
    assert row.state == RUNNING and row.message == "1/1 nodes running"   # confirmed: its node was up
    _at(lp, 10 * BOUND)
    row = _rows(db)["eu-wait"]
    assert row.state == RUNNING and [a.region for a in row.assignments] == [cloud.faulted[0]]
    assert not _failovers(db, "eu-wait")


# -- a provider listed whole (not region by region) whose list call fails: the same rule ----------------------
def _obs(providers: dict[str, Provider]) -> Observation:
    return observing.observe(providers, LoopMetrics())


def coreweave_pair(db: Database) -> tuple[FakeCloud, FakeProvider, dict[str, str]]:
    """Two workloads on a provider listed whole, each with its node up: one Provisioning, one Running."""
    cloud, keys = FakeCloud(), {}
    for name, state in (("wait", PROVISIONING), ("run", RUNNING)):
        submit(db, name, gpus=8)
        with db.session() as s:
            row = repo.get(s, name)
            assert row is not None
            row.state = state
            row.assignments.append(Assignment(pool=f"{name}-p", provider="coreweave", region="US-EAST-04",
                                              zone="US-EAST-04A", instance_type="gd-8xh100ib-i128", nodes=1, gpus=8,
                                              gpu_model="H100", capacity_type="on-demand"))
            keys[name] = row.key
        cloud.nodes[f"{name}-n"] = Node(provider="coreweave", id=f"{name}-n", name=f"{name}-n", region="US-EAST-04",
                                        zone="US-EAST-04A", instance_type="gd-8xh100ib-i128",
                                        capacity_type=CapacityType.ON_DEMAND, state=NodeState.RUNNING,
                                        pool=f"{name}-p", workload=keys[name], gpus=8)
    return cloud, FakeProvider("coreweave", cloud), keys


def test_a_provider_listed_whole_that_cannot_be_listed_is_held_then_its_provisioning_workload_moves(
        db: Database) -> None:
    clock = Clock()
    _, cw, _ = coreweave_pair(db)
    cw.fail_list = True
    short, unseen, blocks, metrics = (failover.ShortWatch(BOUND, clock=clock), Unobserved(clock=clock),
                                      failover.BlockList(clock=clock), LoopMetrics())

    def apply(t: float) -> None:
        clock.now = t
        observing.apply_observation(db, _obs({"coreweave": cw}), actor="test", fenced=lambda: True, metrics=metrics,
                                    blocks=blocks, short=short, unseen=unseen)

    apply(0.0)
    apply(BOUND - 1)
    rows = _rows(db)
    assert rows["wait"].state == PROVISIONING and rows["run"].state == RUNNING
    assert rows["run"].message.startswith("not observed: coreweave since ")
    assert metrics.registry.get_sample_value("awan_unobserved_since_timestamp_seconds",
                                             {"provider": "coreweave", "region": "*"}) is not None
    assert unseen.past(BOUND) == set()
    apply(BOUND)
    rows = _rows(db)
    assert rows["wait"].state == PENDING and rows["run"].state == RUNNING
    (ev,) = _failovers(db, "wait")
    assert ev["trigger"] == "unobserved" and f"coreweave could not be observed for {BOUND:.0f} s" in ev["reason"]
    assert ("coreweave", "US-EAST-04A", "gd-8xh100ib-i128", "on-demand", "") in blocks.active()
    assert unseen.past(BOUND) == {("coreweave", None)}
    assert not _failovers(db, "run")
    # Placement leaves the provider out while it cannot be listed.
    snap = FleetSnapshot.from_catalog(default_catalog())
    out = leave_out(snap, unseen.past(BOUND))
    assert {k[0] for k in out.blocked} == {"coreweave"}
    assert len(out.blocked) == sum(1 for p in snap.pools if p.provider == "coreweave")
    cw.fail_list = False
    apply(BOUND + 1)
    assert unseen.past(0.0) == set() and _rows(db)["run"].message == "1/1 nodes running"
