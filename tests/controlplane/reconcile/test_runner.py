"""A runner (controlplane/reconcile/runner.py: a Controller that never leads, with a live "runner" lease) beside
the leader on one PostgreSQL: while the runner is live every stack run is the runner's and the leader only
places; no stack is run by both at once; when the runner stops renewing (killed) or leaves (drained) the leader
runs the stacks itself again. Waits are on conditions with generous bounds."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, TypeVar, cast

import pytest
from prometheus_client import generate_latest
from sqlalchemy import select

from controlplane.policy import PolicySet
from controlplane.reconcile import provisioning
from controlplane.reconcile.child import ChildLoop
from controlplane.reconcile.controller import Controller, LoopConfig
from controlplane.reconcile.leader import LeaderElector
from controlplane.reconcile.metrics import LoopMetrics
from controlplane.reconcile.runner import NeverLeads, Presence, WithRunners, runner_holder, runner_processes
from controlplane.settings import Settings
from controlplane.store import audit
from controlplane.store import work_leases as wl
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import Stack, WorkLease, Workload
from infra.engines.base import UpResult
from infra.spec import StackSpec, stack_name
from providers.errors import UnavailableError
from providers.model import HealthStatus, ProviderHealth
from tests.controlplane.cli.served import counter
from tests.controlplane.reconcile.fakes import FakeCloud, FakeProvider, FakeResult
from tests.controlplane.reconcile.harness import make_controller, states, submit
from tests.controlplane.reconcile.test_work_sharing import (
    REGIONS,
    Run,
    RunLog,
    SlowEngine,
    SpreadPlacer,
    wait_for,
)

TTL_S = 3.0


class Runner:
    """A runner process's Controller and its presence beat (child.main's loop beats every 0.5 s)."""

    def __init__(self, db: Database, cloud: FakeCloud, placer: SpreadPlacer, log: RunLog, holder: str,
                 ttl_s: float = TTL_S, retry_base_s: float = 0.01, engine: SlowEngine | None = None) -> None:
        cfg = LoopConfig(interval_s=0.05, resync_s=3600, retry_base_s=retry_base_s, work_lease_ttl_s=ttl_s,
                         stack_workers=2, provider_concurrency=2)
        self.engine = engine or SlowEngine(cloud, log, holder)
        self.controller = Controller(db, {"aws": FakeProvider("aws", cloud)}, self.engine,
                                     elector=NeverLeads(db, holder), policies=PolicySet.default, config=cfg,
                                     place=placer, snapshot=lambda: None)
        self.presence = Presence(self.controller.share)
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._beats, daemon=True)

    def _beats(self) -> None:
        while not self._stop.wait(0.1):
            self.presence.beat()

    def start(self) -> None:
        self.presence.beat()
        self._beat.start()
        self.controller.start()

    def kill(self, grace_s: float = 60.0) -> None:
        """Stops acting and renewing without a word (its leases are left to expire), as a SIGKILL would;
        a stack run still going after ``grace_s`` is cut off from the store by its fence, as a dead one's."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._beat.join()
        self.controller.stop(release_lease=False, grace_s=grace_s)

    def drain(self) -> None:
        self.kill()
        self.presence.leave()


def _leader(db: Database, cloud: FakeCloud, placer: SpreadPlacer, log: RunLog) -> Controller:
    return make_controller(db, cloud, placer, holder="leader", ttl_s=TTL_S, stack_workers=2, provider_concurrency=2,
                           work_lease_ttl_s=TTL_S, engine=SlowEngine(cloud, log, "leader"),
                           stacks_to_runners=True)


def _actors(db: Database, action: str) -> set[str]:
    with db.session() as s:
        return {e.actor for e in audit.events(s, kind="workload", limit=10_000) if e.action == action}


def _running(db: Database, names: list[str]) -> bool:
    got = states(db)
    return all(got.get(n) == "Running" for n in names)


@pytest.mark.postgres
@pytest.mark.slow
def test_the_runner_runs_every_stack_and_the_leader_takes_them_back_when_it_is_killed(pg_url: str) -> None:
    cloud, placer, log = FakeCloud(), SpreadPlacer(), RunLog()
    dbs = [Database.from_url(pg_url, pool_size=4, max_overflow=4) for _ in range(2)]
    leader = _leader(dbs[0], cloud, placer, log)
    runner = Runner(dbs[1], cloud, placer, log, "runner")
    runner.start()
    wait_for(lambda: wl.count_live(dbs[0], wl.RUNNER) == 1)
    leader.start()
    try:
        first = [f"job-{i}" for i in range(16)]
        for n in first:
            submit(dbs[0], n, gpus=8)
        wait_for(lambda: _running(dbs[0], first))
        assert {r.replica for r in log.runs} == {"runner"}, "the leader ran stacks beside a live runner"
        assert _actors(dbs[0], "provisioning") == {"controller:runner"}
        assert _actors(dbs[0], "placed") == {"controller:leader"}

        runner.kill()
        ran = len(log.runs)
        second = [f"job-{i}" for i in range(16, 32)]
        for n in second:
            submit(dbs[0], n, gpus=8)
        wait_for(lambda: _running(dbs[0], second))   # after the runner lease's expiry (TTL_S), by the leader
        assert {r.replica for r in log.runs[ran:]} == {"leader"}
        assert "controller:leader" in _actors(dbs[0], "provisioning")
    finally:
        leader.stop()
        runner.kill()
    assert log.overlaps() == []
    assert placer.decided == {f"job-{i}": 1 for i in range(32)}
    assert len(cloud.creates) == len(set(cloud.creates)) == 32
    for d in dbs:
        d.dispose()


@pytest.mark.postgres
def test_a_drained_runner_hands_the_stacks_back_at_once(pg_url: str) -> None:
    """Its "runner" lease released: the leader runs stacks at its next count, not after the lease's life."""
    cloud, placer, log = FakeCloud(), SpreadPlacer(), RunLog()
    dbs = [Database.from_url(pg_url, pool_size=4, max_overflow=4) for _ in range(2)]
    runner = Runner(dbs[1], cloud, placer, log, "runner")
    runner.start()
    wait_for(lambda: wl.count_live(dbs[0], wl.RUNNER) == 1)
    runner.drain()
    assert wl.count_live(dbs[0], wl.RUNNER) == 0
    leader = _leader(dbs[0], cloud, placer, log)
    leader.start()
    try:
        submit(dbs[0], "job-0", gpus=8)
        wait_for(lambda: _running(dbs[0], ["job-0"]))
    finally:
        leader.stop()
    assert {r.replica for r in log.runs} == {"leader"}
    for d in dbs:
        d.dispose()


@pytest.mark.postgres
def test_a_dead_runners_leases_freed_by_its_parent_let_the_next_runner_take_its_stack_at_once(pg_url: str) -> None:
    """A runner killed mid-run: its parent (child.ChildLoop) frees the dead holder's leases
    (work_leases.release_holder) before it starts the next runner, which takes the stack at its next pass, not
    after the leases' life (600 s here: without the release the wait below runs out)."""
    ttl_s = 600.0
    cloud, placer, log = FakeCloud(), SpreadPlacer(), RunLog()
    dbs = [Database.from_url(pg_url, pool_size=4, max_overflow=4) for _ in range(3)]
    leader = make_controller(dbs[0], cloud, placer, holder="leader", ttl_s=TTL_S, stack_workers=2,
                             provider_concurrency=2, work_lease_ttl_s=ttl_s,
                             engine=SlowEngine(cloud, log, "leader"), stacks_to_runners=True)
    dead = Runner(dbs[1], cloud, placer, log, "svc.runner0.aaaaaa", ttl_s=ttl_s)
    dead.engine.hold.clear()        # its stack run never ends: it dies in the middle of it
    dead.start()
    wait_for(lambda: wl.count_live(dbs[0], wl.RUNNER) == 1)
    leader.start()
    nxt: Runner | None = None
    try:
        submit(dbs[0], "job-0", gpus=8)
        wait_for(lambda: [h for h, _ in wl.held(dbs[0], wl.STACK).values()] == ["svc.runner0.aaaaaa"])
        dead.kill(grace_s=0.1)
        assert wl.held(dbs[0], wl.STACK), "the killed runner's stack lease is still live (its TTL)"
        assert wl.release_holder(dbs[0], "svc.runner0.aaaaaa") >= 2    # its stack, "runner" and "replica" leases
        assert not [h for h, _ in wl.held(dbs[0], wl.STACK).values()]
        nxt = Runner(dbs[2], cloud, placer, log, "svc.runner0.bbbbbb", ttl_s=ttl_s)
        nxt.start()
        wait_for(lambda: _running(dbs[0], ["job-0"]))
        assert [r.replica for r in log.runs] == ["svc.runner0.aaaaaa", "svc.runner0.bbbbbb"]
        # Fenced: the freed holder's name no longer matches any lease, so a late release of its own frees nothing.
        assert wl.release_holder(dbs[0], "svc.runner0.aaaaaa") == 0
        assert _actors(dbs[0], "provisioning") == {"controller:svc.runner0.bbbbbb"}
    finally:
        dead.engine.hold.set()      # the dead run's late result: refused by its fence
        leader.stop()
        if nxt is not None:
            nxt.kill()
    wait_for(lambda: log.runs[0].end is not None)
    assert _actors(dbs[0], "provisioning") == {"controller:svc.runner0.bbbbbb"}
    for d in dbs:
        d.dispose()


@pytest.mark.postgres
def test_the_parent_frees_the_dead_holders_leases_only(pg_url: str) -> None:
    """ChildLoop's release on a child's exit (its own connection, the operator's URL options kept: here the test
    schema's search_path): every lease of the dead holder, none of another's."""
    db = Database.from_url(pg_url)
    wl.claim(db, wl.STACK, ["s1", "s2"], "svc.runner0.dead", 600, 10)
    wl.claim(db, wl.RUNNER, ["svc.runner0.dead"], "svc.runner0.dead", 600, 1)
    wl.claim(db, wl.STACK, ["s3"], "svc.runner1.live", 600, 1)
    ChildLoop({"db_url": pg_url, "replica_id": "svc"}, None, runner=0)._release_leases("svc.runner0.dead")
    assert wl.held(db, wl.STACK) == {"s3": ("svc.runner1.live", 1)}
    assert wl.held(db, wl.RUNNER) == {}
    assert wl.claim(db, wl.STACK, ["s1"], "svc.runner0.next", 600, 1) == {"s1": 2}   # free now, a new epoch
    db.dispose()


class _Regional(FakeProvider):
    """A provider whose health names its regions; ``down`` ones answer DOWN."""

    def __init__(self, name: str, cloud: FakeCloud) -> None:
        super().__init__(name, cloud)
        self.down: set[str] = set()

    def health(self) -> ProviderHealth:
        return ProviderHealth(self.name, self.endpoint, HealthStatus.OK, 1.0,
                              regions={r: HealthStatus.DOWN if r in self.down else HealthStatus.OK
                                       for r in REGIONS})


class _OutageEngine(SlowEngine):
    """Stack runs of a region in ``down`` (shared by the replicas' engines) fail as a region outage does."""

    def __init__(self, cloud: FakeCloud, log: RunLog, replica: str, down: set[str]) -> None:
        super().__init__(cloud, log, replica)
        self.down = down

    def up(self, stack: StackSpec) -> UpResult:
        if any(p.region in self.down for p in stack.pools) or any(r in stack.name for r in self.down):
            with self.log.lock:
                self.log.runs.append(Run(stack.name, self.replica, time.monotonic(), time.monotonic()))
            raise UnavailableError("region down", provider="aws")
        return super().up(stack)


class _RefusingPlacer(SpreadPlacer):
    """Places nothing in a region that is down (as placement on the health-filtered snapshot would)."""

    def __init__(self) -> None:
        super().__init__()
        self.down: set[str] = set()

    def __call__(self, workloads: Sequence[Any], snapshot: Any, policies: Any) -> FakeResult:
        got = super().__call__(workloads, snapshot, policies)
        for d in got.decisions:
            if d.assignments and d.assignments[0].region in self.down:
                d.placed, d.assignments, d.reasons = False, [], ["region down"]
        return got


R = TypeVar("R", bound=_Regional)


def _outage_pair(pg_url: str, regional: type[R]) -> tuple[FakeCloud, RunLog, _RefusingPlacer, list[Database], R,
                                                         set[str], Controller, Runner]:
    """A leader and one live runner process stand-in, both backing off 300 s+ after a failed run, whose engines
    fail in the regions in the returned ``outage`` set; started (the runner first, seen live by the leader)."""
    cloud, log = FakeCloud(), RunLog()
    placer = _RefusingPlacer()
    dbs = [Database.from_url(pg_url, pool_size=4, max_overflow=4) for _ in range(2)]
    aws = regional("aws", cloud)
    cfg = LoopConfig(interval_s=0.05, resync_s=3600, retry_base_s=300.0, retry_max_s=600.0, work_lease_ttl_s=TTL_S,
                     stack_workers=2, provider_concurrency=2, stacks_to_runners=True, health_confirm=2)
    outage: set[str] = set()
    leader = Controller(dbs[0], {"aws": aws}, _OutageEngine(cloud, log, "leader", outage),
                        elector=LeaderElector(dbs[0], "leader", ttl_s=TTL_S, renew_s=1.0), policies=PolicySet.default,
                        config=cfg, place=placer, snapshot=lambda: None)
    runner = Runner(dbs[1], cloud, placer, log, "runner", retry_base_s=300.0,
                    engine=_OutageEngine(cloud, log, "runner", outage))
    runner.start()
    wait_for(lambda: wl.count_live(dbs[0], wl.RUNNER) == 1)
    leader.start()
    return cloud, log, placer, dbs, aws, outage, leader, runner


@pytest.mark.postgres
def test_with_a_runner_live_a_recovered_regions_stacks_run_at_once_despite_their_backoff(pg_url: str) -> None:
    """Issue 12, gap 2: the leader's re-queue of a recovered region's stacks (Controller._check_health) is its own
    queue, and with a runner live the leader runs no stacks. They are run at once anyway: the outage evacuated
    the region's workloads, so each of its stacks has a new spec (reason "changed"), which every replica claims
    at its next pass regardless of its local backoff and of the lease's shared one (forced). Here both
    backoffs are 300 s+ (retry_base_s 300): the dead pools are deleted within the wait's bound (without the
    forced claim the wait runs out)."""
    cloud, log, placer, dbs, aws, outage, leader, runner = _outage_pair(pg_url, _Regional)
    region = REGIONS[0]
    stack = stack_name("aws", region)
    try:
        submit(dbs[0], "job-8", gpus=8)       # REGIONS[8 % 8]
        wait_for(lambda: _running(dbs[0], ["job-8"]))
        assert cloud.pools(stack)
        outage.add(region)
        placer.down.add(region)
        aws.down.add(region)
        wait_for(lambda: states(dbs[0])["job-8"] == "Pending")          # evacuated
        wait_for(lambda: _failed(dbs[0], stack))                        # a run in the outage failed
        assert cloud.pools(stack), "the dead pools are still there during the outage"
        plans = {p.spec.name: p.reason for p in provisioning.plan(dbs[0], resync_s=3600)}
        assert plans.get(stack) == "changed"
        # The stack's lease backs off 300 s for every replica (the local queue's backoff of a changed stack is
        # overridden at each pass: Controller._run_stacks adds it again).
        wait_for(lambda: _shared_backoff_s(dbs[0], stack) > 200)
        ran = len(log.runs)
        outage.clear()
        aws.down.discard(region)
        wait_for(lambda: not cloud.pools(stack))                        # the dead pools deleted
        # By the runner; or the leader, when its observation saw the evacuated workload's nodes as drift (then
        # it runs stacks itself: Controller._runners_take_stacks).
        assert {r.replica for r in log.runs[ran:] if r.stack == stack} <= {"runner", "leader"}
    finally:
        outage.clear()
        leader.stop()
        runner.kill()
    for d in dbs:
        d.dispose()


class _CountingRegional(_Regional):
    """Counts the DOWN answers it gave (only the leader probes health)."""

    def __init__(self, name: str, cloud: FakeCloud) -> None:
        super().__init__(name, cloud)
        self.down_answers = 0

    def health(self) -> ProviderHealth:
        if self.down:
            self.down_answers += 1
        return super().health()


@pytest.mark.postgres
def test_a_recovered_regions_failed_stack_of_an_unchanged_spec_is_run_again_at_once_by_the_runner_that_failed_it(
        pg_url: str) -> None:
    """Issue 12: a stack whose spec did not change (no forced claim) and whose run failed in the outage, by the one
    runner live, backs off 300 s in that runner's queue and 600 s in its work lease. When the region answers
    again the leader ends the lease's backoff (work_leases.expedite, from Controller._check_health) and the
    runner, seeing it over, its own (Controller._expedited): the stack runs again within the wait's bound.
    Without either, the wait runs out. The stack keeps its spec because its one workload has finished (its pool
    is kept until the idle timeout, so the outage moves nothing); its failed run is started by marking it failed
    as another replica's failed run would (the runner then runs it again, "retry", and fails in the outage)."""
    cloud, log, placer, dbs, aws, outage, leader, runner = _outage_pair(pg_url, _CountingRegional)
    region = REGIONS[0]
    stack = stack_name("aws", region)
    try:
        submit(dbs[0], "job-8", gpus=8)       # REGIONS[8 % 8]
        wait_for(lambda: _running(dbs[0], ["job-8"]))
        with dbs[0].session() as s:           # finished: its pool stays (idle timeout), it is not evacuated
            s.scalars(select(Workload).where(Workload.name == "job-8")).one().state = "Succeeded"
        outage.add(region)
        placer.down.add(region)
        aws.down.add(region)
        # A run of the unchanged spec failed in the outage (as another replica's would be recorded).
        plan = next(p for p in provisioning.plan(dbs[0], resync_s=3600, force=[stack]) if p.spec.name == stack)
        provisioning.record_failure(dbs[0], plan, UnavailableError("region down", provider="aws"),
                                    actor="controller:gone", max_attempts=10**9, fenced=lambda: True)
        wait_for(lambda: any(r.stack == stack and r.replica == "runner" for r in log.runs))   # "retry": fails
        wait_for(lambda: _shared_backoff_s(dbs[0], stack) > 200)
        assert runner.controller.queue.backing_off(f"stack:{stack}")
        assert {p.spec.name: p.reason for p in provisioning.plan(dbs[0], resync_s=3600)}.get(stack) == "retry"
        wait_for(lambda: aws.down_answers >= 3)   # the leader has seen the region DOWN (health_confirm 2)
        ran = len(log.runs)
        outage.clear()
        aws.down.discard(region)
        wait_for(lambda: not _failed(dbs[0], stack))                     # run again, and it succeeded
        assert [r.replica for r in log.runs[ran:] if r.stack == stack] == ["runner"]
        assert states(dbs[0])["job-8"] == "Succeeded"
    finally:
        outage.clear()
        leader.stop()
        runner.kill()
    for d in dbs:
        d.dispose()


def _shared_backoff_s(db: Database, stack: str) -> float:
    """How long the stack's free lease is still unclaimable (its shared backoff); 0 while held or free."""
    with db.session() as s:
        row = s.get(WorkLease, (wl.STACK, stack))
        return 0.0 if row is None or row.holder is not None else (row.expires_at - utcnow()).total_seconds()


def _failed(db: Database, stack: str) -> bool:
    with db.session() as s:
        st = s.get(Stack, stack)
        return st is not None and st.status == "failed"


class _Exposing:
    """A child as /metrics sees it: its exposition."""

    def __init__(self, metrics: LoopMetrics) -> None:
        self.metrics = metrics

    def exposition(self) -> bytes:
        return generate_latest(self.metrics.registry)


def test_the_service_loops_metrics_count_the_runners_too() -> None:
    """One exposition for the loop and its runners (what the API process and, with --workers N, the parent
    answer for the loop): counters summed, so the runners' stack runs are counted; a gauge is the loop's."""
    loop, runner = LoopMetrics(), LoopMetrics()
    loop.ticks.inc(3)
    runner.stack_runs.labels("ok").inc(5)
    runner.stack_runs.labels("failed").inc(1)
    loop.stack_runs.labels("ok").inc(2)
    loop.unobserved_since.labels("aws", "us-east-1").set(100)
    runner.unobserved_since.labels("aws", "us-east-1").set(200)
    merged = WithRunners(cast(ChildLoop, _Exposing(loop)), [cast(ChildLoop, _Exposing(runner))]).exposition()
    text = merged.decode()
    assert counter(text, "awan_stack_runs") == 8
    assert counter(text, "awan_reconcile_ticks") == 3
    assert 'awan_unobserved_since_timestamp_seconds{provider="aws",region="us-east-1"} 100.0' in text


def test_runner_processes_are_opt_in() -> None:
    pg = "postgresql+psycopg://u@h/db"
    assert runner_processes(Settings(db_url=pg)) == 0
    assert runner_processes(Settings(db_url="sqlite:///x.db")) == 0
    assert runner_processes(Settings(db_url=pg, runner_processes=3)) == 3
    assert runner_processes(Settings(db_url=pg, runner_processes=0)) == 0
    assert runner_processes(Settings(db_url=pg, controller_process="inline")) == 0   # no child processes
    assert runner_processes(Settings(db_url=pg, reconcile=False)) == 0


def test_each_start_of_a_runner_has_a_holder_of_its_own() -> None:
    """A restarted runner must not renew (by holder) the leases its dead predecessor left to expire."""
    names = {runner_holder("r1", 0) for _ in range(20)}
    assert len(names) == 20 and all(n.startswith("r1.runner0.") for n in names)
