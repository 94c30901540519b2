"""Two controllers on one PostgreSQL share the stack runs: both run stacks (only one places), no stack is
ever run by both at once, every workload comes up with each node created once; a replica that stops
renewing (presumed dead) mid-run loses its stacks to the other, and its late result is refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from controlplane.placement.results import Assignment
from controlplane.store import audit
from controlplane.store import work_leases as wl
from controlplane.store.db import Database
from infra.engines.base import UpResult
from infra.spec import StackSpec
from providers.catalog.model import CapacityType
from tests.controlplane.reconcile.fakes import FakeCloud, FakeDecision, FakeEngine, FakeResult
from tests.controlplane.reconcile.harness import make_controller, states, submit

pytestmark = pytest.mark.postgres
REGIONS = [f"us-east-{i}" for i in range(1, 9)]


class SpreadPlacer:
    """Each workload on its own region (by its number), so there are many stacks to share."""

    def __init__(self) -> None:
        self.decided: dict[str, int] = {}

    def __call__(self, workloads: Sequence[Any], snapshot: Any, policies: Any) -> FakeResult:
        out = []
        for w in workloads:
            self.decided[w.name] = self.decided.get(w.name, 0) + 1
            region = REGIONS[int(w.name.rsplit("-", 1)[1]) % len(REGIONS)]
            out.append(FakeDecision(w.name, True, [Assignment(
                w.name, "aws", region, f"{region}a", "p5.48xlarge", 1, 8, "H100", CapacityType.ON_DEMAND,
                price_per_hour=98.3)], ["spread"]))
        return FakeResult(out)


@dataclass
class Run:
    stack: str
    replica: str
    start: float
    end: float = 0.0


@dataclass
class RunLog:
    runs: list[Run] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def overlaps(self) -> list[tuple[Run, Run]]:
        """Pairs of runs of one stack by two replicas whose times intersect."""
        out = []
        with self.lock:
            runs = sorted(self.runs, key=lambda r: r.start)
        for i, a in enumerate(runs):
            for b in runs[i + 1:]:
                if b.stack == a.stack and b.replica != a.replica and b.start < (a.end or float("inf")):
                    out.append((a, b))
        return out


class SlowEngine(FakeEngine):
    """The fake engine with cloud latency, logging each run's interval and who ran it."""

    def __init__(self, cloud: FakeCloud, log: RunLog, replica: str, delay_s: float = 0.15) -> None:
        super().__init__(cloud)
        self.log, self.replica, self.delay_s = log, replica, delay_s
        self.hold = threading.Event()
        self.hold.set()

    def up(self, stack: StackSpec) -> UpResult:
        run = Run(stack.name, self.replica, time.monotonic())
        with self.log.lock:
            self.log.runs.append(run)
        try:
            time.sleep(self.delay_s)
            self.hold.wait(120)
            return super().up(stack)
        finally:
            run.end = time.monotonic()


def wait_for(cond, timeout_s: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_every_replica_runs_stacks_never_the_same_one_at_once(pg_url: str) -> None:
    cloud, placer, log = FakeCloud(), SpreadPlacer(), RunLog()
    dbs = [Database.from_url(pg_url, pool_size=4, max_overflow=4) for _ in range(2)]
    cs = [make_controller(dbs[i], cloud, placer, holder=f"r{i}", ttl_s=3.0, stack_workers=2,
                          engine=SlowEngine(cloud, log, f"r{i}"), provider_concurrency=2) for i in range(2)]
    for c in cs:
        c.start()
    try:
        for i in range(32):
            submit(dbs[0], f"job-{i}", gpus=8)
        wait_for(lambda: len(states(dbs[0])) == 32 and set(states(dbs[0]).values()) == {"Running"})
    finally:
        for c in cs:
            c.stop()
    assert log.overlaps() == []
    assert {r.replica for r in log.runs} == {"r0", "r1"}, "only one replica ran stacks"
    assert placer.decided == {f"job-{i}": 1 for i in range(32)}
    assert len(cloud.creates) == len(set(cloud.creates)) == 32
    with dbs[0].session() as s:
        placers = {e.actor for e in audit.events(s, kind="workload", limit=1000) if e.action == "placed"}
        runners = {e.actor for e in audit.events(s, kind="workload", limit=1000) if e.action == "provisioning"}
    assert len(placers) == 1                       # one placer (the leader)
    assert runners == {"controller:r0", "controller:r1"}
    for d in dbs:
        d.dispose()


def test_a_replica_presumed_dead_mid_run_loses_its_stack_and_its_late_result(pg_url: str) -> None:
    cloud, placer, log = FakeCloud(), SpreadPlacer(), RunLog()
    dbs = [Database.from_url(pg_url, pool_size=4, max_overflow=4) for _ in range(2)]
    slow = SlowEngine(cloud, log, "r0", delay_s=0.0)
    slow.hold.clear()                               # r0's runs hang (a stalled process)
    a = make_controller(dbs[0], cloud, placer, holder="r0", ttl_s=3.0, engine=slow, work_lease_ttl_s=1.5)
    a.start()
    wait_for(lambda: a.elector.is_leader)
    submit(dbs[0], "job-0", gpus=8)
    wait_for(lambda: any(r.replica == "r0" for r in log.runs))
    stack = log.runs[0].stack
    (epoch,) = [e for k, (h, e) in wl.held(dbs[0], wl.STACK).items() if k == stack and h == "r0"]
    # "Killed": r0 stops renewing and stops its loop, but its stuck run is still in the air.
    a.share._stop.set()
    a._stop.set()
    a.elector.stop(release=False)
    b = make_controller(dbs[1], cloud, placer, holder="r1", ttl_s=3.0,
                        engine=SlowEngine(cloud, log, "r1", delay_s=0.0), work_lease_ttl_s=1.5)
    b.start()
    try:
        wait_for(lambda: states(dbs[1]) == {"job-0": "Running"})
        held_by = {k: h for k, (h, _e) in wl.held(dbs[1], wl.STACK).items()}
        assert held_by.get(stack) != "r0"
        assert not a.share.fence(stack, epoch)()     # r0's claim is over
        slow.hold.set()                             # the stalled run wakes up late and finishes
        a.wait_idle(timeout_s=60)
        with dbs[0].session() as s:                 # its result was refused: only r1's run is recorded
            assert audit.count(s, action="provisioning", subject="job-0") == 1
            assert {e.actor for e in audit.events(s, kind="workload", limit=100)
                    if e.action == "provisioning"} == {"controller:r1"}
            # r0's run was a "changed" run: accepted, it would have written a stack-applied event of its own.
            assert {e.actor for e in audit.events(s, kind="stack", limit=100)
                    if e.action == "stack-applied"} == {"controller:r1"}
    finally:
        slow.hold.set()
        b.stop()
        a.stop(release_lease=False, grace_s=5)
    assert placer.decided == {"job-0": 1}
    assert len(cloud.creates) == len(set(cloud.creates)) == 1
    for d in dbs:
        d.dispose()
