"""Observing and dispatch shared by the replicas on one PostgreSQL (round leases, controlplane/reconcile/
sharing): each provider is listed by one replica a round and the replicas split the providers; each run is
followed by one replica a round, every object created once; a replica that stalls past its lease's life
hands its provider or its run to another and its late answer or result is refused by the fence."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from controlplane.dispatch.clusters import ClusterSet
from controlplane.dispatch.kube import Owned
from controlplane.model.manifest import parse_manifests
from controlplane.policy import PolicySet
from controlplane.reconcile.controller import Controller, LoopConfig
from controlplane.reconcile.leader import LeaderElector
from controlplane.reconcile.metrics import LoopMetrics
from controlplane.reconcile.observing import SharedObserver
from controlplane.reconcile.running import RunStep
from controlplane.reconcile.sharing import WorkShare
from controlplane.store import audit
from controlplane.store import work_leases as wl
from controlplane.store import workloads as repo
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import Assignment, Observed, WorkloadState
from providers.catalog.model import CapacityType
from providers.config import ClusterConfig, parse_config
from providers.model import Node, NodeState
from tests.controlplane.reconcile.fakes import FakeCloud, FakeEngine, FakePlacer, FakeProvider

pytestmark = pytest.mark.postgres
PROVIDERS = ["aws", "azure", "coreweave", "gcp", "lambda", "oci"]


def wait_for(cond, timeout_s: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


# -- observing -------------------------------------------------------------------------------------------
@dataclass
class Listing:
    provider: str
    replica: str
    start: float
    end: float = 0.0


@dataclass
class ListLog:
    calls: list[Listing] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def overlapping(self) -> list[tuple[Listing, Listing]]:
        with self.lock:
            calls = sorted(self.calls, key=lambda c: c.start)
        return [(a, b) for i, a in enumerate(calls) for b in calls[i + 1:]
                if a.provider == b.provider and a.replica != b.replica and b.start < (a.end or float("inf"))]


class LoggedProvider(FakeProvider):
    """The fake provider whose list calls take a while, are logged with who made them, and can hang."""

    def __init__(self, name: str, cloud: FakeCloud, log: ListLog, replica: str, delay_s: float = 0.05) -> None:
        super().__init__(name, cloud)
        self.log, self.replica, self.delay_s = log, replica, delay_s
        self.hold = threading.Event()
        self.hold.set()
        self.inside = threading.Event()

    def list_nodes(self) -> list[Node]:
        call = Listing(self.name, self.replica, time.monotonic())
        with self.log.lock:
            self.log.calls.append(call)
        try:
            nodes = super().list_nodes()
            self.inside.set()
            time.sleep(self.delay_s)
            self.hold.wait(120)
            return nodes
        finally:
            call.end = time.monotonic()


def node(provider: str, i: int, state: NodeState = NodeState.RUNNING) -> Node:
    return Node(provider=provider, id=f"{provider}-{i}", name=f"{provider}-{i}", region="r1", zone="r1a",
                instance_type="gpu.8x", capacity_type=CapacityType.SPOT, state=state, pool=f"p{i}",
                workload=f"research/w{i}", gpus=8, labels={"stack": f"awan-{provider}-r1"})


@dataclass
class ObsReplica:
    db: Database
    share: WorkShare
    providers: dict[str, LoggedProvider]
    observer: SharedObserver

    def close(self) -> None:
        self.share.stop()
        self.db.dispose()


def obs_replica(url: str, i: int, cloud: FakeCloud, log: ListLog, *, ttl_s: float = 30.0, every_s: float = 60.0,
                names: list[str] = PROVIDERS) -> ObsReplica:
    db = Database.from_url(url, pool_size=2, max_overflow=2)
    share = WorkShare(db, f"r{i}", ttl_s)
    providers = {n: LoggedProvider(n, cloud, log, f"r{i}") for n in names}
    return ObsReplica(db, share, providers, SharedObserver(db, providers, share, LoopMetrics(), every_s=every_s,
                                                           max_age_s=60.0))


def test_each_provider_is_listed_once_a_round_and_the_replicas_split_them(pg_url: str) -> None:
    cloud, log = FakeCloud(), ListLog()
    for p in PROVIDERS:
        for i in range(2):
            cloud.nodes[f"{p}-{i}"] = node(p, i)
    cloud.nodes["gcp-9"] = node("gcp", 9, NodeState.PREEMPTED)
    reps = [obs_replica(pg_url, i, cloud, log) for i in range(3)]
    try:
        for r in reps:
            r.share.members()                 # every replica joins before the round...
        assert [r.share.members(fresh=True) for r in reps] == [3, 3, 3]   # ...and counts the others
        start = threading.Barrier(3)

        def rounds(r: ObsReplica) -> None:
            start.wait()
            for _ in range(5):                # a round lasts every_s (60 s): the later calls find nothing free
                r.observer.round()

        threads = [threading.Thread(target=rounds, args=(r,)) for r in reps]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        listed = sorted(c.provider for c in log.calls)
        assert listed == PROVIDERS, "a provider listed twice in a round, or not at all"
        assert log.overlapping() == []
        by_replica = {r.share.holder: sum(1 for c in log.calls if c.replica == r.share.holder) for r in reps}
        assert sorted(by_replica.values()) == [2, 2, 2], by_replica
        # Whichever replica listed them, every answer is there for the leader, as it was seen.
        seen = reps[2].observer.latest()
        assert seen.observed == set(PROVIDERS) and seen.failed == {}
        assert sorted((n.id, n.state) for n in seen.nodes) == sorted((n.id, n.state) for n in cloud.nodes.values())
    finally:
        for r in reps:
            r.close()


def test_a_stalled_lister_hands_its_provider_over_and_its_late_answer_is_refused(pg_url: str) -> None:
    cloud, log = FakeCloud(), ListLog()
    cloud.nodes["aws-0"] = node("aws", 0)
    a = obs_replica(pg_url, 0, cloud, log, ttl_s=1.0, every_s=0.05, names=["aws"])
    b = obs_replica(pg_url, 1, cloud, log, ttl_s=1.0, every_s=0.05, names=["aws"])
    a.providers["aws"].hold.clear()          # a's list call hangs (a stalled process)
    late: list[set[str]] = []
    t = threading.Thread(target=lambda: late.append(a.observer.round()))
    try:
        t.start()
        assert a.providers["aws"].inside.wait(30)
        (epoch,) = wl.held(a.db, wl.OBSERVE).values()
        assert epoch == ("r0", 1)
        a.share._stop.set()                  # "killed": a renews nothing any more
        with cloud.lock:
            cloud.nodes["aws-1"] = node("aws", 1)
        wait_for(lambda: b.observer.round() == {"aws"})   # after a's lease expired, b lists and publishes
        assert {n.id for n in b.observer.latest().nodes} == {"aws-0", "aws-1"}
    finally:
        a.providers["aws"].hold.set()
        t.join(timeout=60)
    assert late == [set()]                   # a woke up: nothing of its answer was written
    with a.db.session() as s:
        row = s.get(Observed, "aws")
        assert row is not None and (row.holder, row.epoch) == ("r1", 2)
    assert {n.id for n in a.observer.latest().nodes} == {"aws-0", "aws-1"}    # b's, not a's older one
    assert [c.replica for c in log.calls][:2] == ["r0", "r1"]
    a.close()
    b.close()


def test_a_stale_fence_refuses_and_an_older_observation_never_overwrites(pg_url: str) -> None:
    db = Database.from_url(pg_url)
    try:
        assert wl.claim(db, wl.OBSERVE, ["aws"], "a", ttl_s=0.3, limit=1) == {"aws": 1}
        time.sleep(0.5)
        assert wl.claim(db, wl.OBSERVE, ["aws"], "b", ttl_s=30, limit=1) == {"aws": 2}
        with db.session() as s:
            assert wl.still_mine(s, wl.OBSERVE, {"aws": 1}, "a") == set()
            assert wl.still_mine(s, wl.OBSERVE, {"aws": 2}, "b") == {"aws"}
            assert wl.still_mine(s, wl.OBSERVE, {"aws": 1}, "b") == set()    # an older claim of b's
        now = utcnow()
        with db.session() as s:
            assert wl.publish(s, "aws", [], None, now, "b", 2)
        with db.session() as s:
            assert not wl.publish(s, "aws", [{"x": 1}], None, now.replace(year=now.year - 1), "b", 2)
            row = s.get(Observed, "aws")
            assert row is not None and row.nodes == {"nodes": []}
        assert wl.release_many(db, wl.OBSERVE, {"aws": 1}, "b") == 0          # not the claim of that epoch
        assert wl.release_many(db, wl.OBSERVE, {"aws": 2}, "b", backoff_s=30) == 1
        assert wl.claim(db, wl.OBSERVE, ["aws"], "c", ttl_s=30, limit=1) == {}   # its backoff holds for all
    finally:
        db.dispose()


# -- dispatch ---------------------------------------------------------------------------------------------
class SharedCluster:
    """One fake cluster the replicas share (thread-safe): a Job's pods run on nodes of its own, are Running
    once created; every create call is counted by object and by replica."""

    def __init__(self, name: str = "eks", phase: str = "Running") -> None:
        self.name, self.namespace, self.phase = name, "awan", phase
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[str, dict[str, Any]] = {}
        self.node_objs: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str, bool]] = []     # (replica, kind, name, created)
        self.lock = threading.Lock()

    def create(self, replica: str, obj: dict[str, Any]) -> bool:
        with self.lock:
            k = (obj["kind"], obj["metadata"]["name"])
            made = k not in self.objects
            self.calls.append((replica, k[0], k[1], made))
            if not made:
                return False
            self.objects[k] = obj = {**obj, "spec": dict(obj["spec"])}
            if obj["kind"] == "Job":
                tmpl = obj["spec"]["template"]["spec"]
                gpus = tmpl["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
                for i in range(obj["spec"]["completions"]):
                    n = f"{k[1]}-node-{i}"
                    self.node_objs[n] = {"metadata": {"name": n, "labels": dict(tmpl["nodeSelector"])},
                                         "status": {"conditions": [{"type": "Ready", "status": "True"}],
                                                    "allocatable": {"nvidia.com/gpu": gpus}}}
                if not obj["spec"].get("suspend"):
                    self._pods_of(obj)
            return True

    def _pods_of(self, obj: dict[str, Any]) -> None:
        job = obj["metadata"]["name"]
        for i in range(obj["spec"]["completions"]):
            self.pods[f"{job}-{i}-x"] = {
                "metadata": {"name": f"{job}-{i}-x", "labels": dict(obj["spec"]["template"]["metadata"]["labels"]),
                             "annotations": {"batch.kubernetes.io/job-completion-index": str(i)}},
                "spec": {"nodeName": f"{job}-node-{i}"}, "status": {"phase": self.phase}}

    def jobs_created(self) -> dict[str, int]:
        with self.lock:
            out: dict[str, int] = {}
            for _r, kind, name, made in self.calls:
                if kind == "Job" and made:
                    out[name] = out.get(name, 0) + 1
            return out


class ReplicaView:
    """One replica's client of the shared cluster (its calls can be made to hang)."""

    def __init__(self, shared: SharedCluster, replica: str) -> None:
        self.shared, self.replica, self.name, self.namespace = shared, replica, shared.name, shared.namespace
        self.hold = threading.Event()
        self.hold.set()
        self.waiting = threading.Event()

    def create(self, obj: dict[str, Any]) -> bool:
        if not self.hold.is_set():
            self.waiting.set()
            self.hold.wait(120)
        return self.shared.create(self.replica, obj)

    def owned(self, selector: str) -> Owned:
        with self.shared.lock:
            return Owned([dict(o) for o in self.shared.objects.values()],
                         [dict(p) for p in self.shared.pods.values()])

    def delete(self, kind: str, name: str) -> None:
        with self.shared.lock:
            if kind == "Pod":
                self.shared.pods.pop(name, None)
                return
            self.shared.objects.pop((kind, name), None)

    def nodes(self, selector: str) -> list[dict[str, Any]]:
        with self.shared.lock:
            return [dict(n) for n in self.shared.node_objs.values()]

    def resume(self, job: str) -> None:
        with self.shared.lock:
            obj = self.shared.objects[("Job", job)]
            obj["spec"]["suspend"] = False
            self.shared._pods_of(obj)

    def ungate(self, pod: dict[str, Any], gate: str, node_selector: dict[str, str]) -> None:
        raise AssertionError("these gangs are not over NVLink domains: nothing is gated")

    def log(self, pod: str, *, tail_lines: int | None = None) -> str:
        return f"hello from {pod}\n"

    def follow(self, pod: str) -> Iterator[bytes]:
        yield b""

    def close(self) -> None:
        pass


CLUSTERS = parse_config({"clusters": [{"name": "eks", "provider": "aws", "regions": ["us-*"],
                                       "endpoint": "http://x"}]})


def cluster_set(shared: SharedCluster, replica: str) -> tuple[ClusterSet, ReplicaView]:
    view = ReplicaView(shared, replica)

    def factory(cfg: ClusterConfig) -> ReplicaView:
        return view

    return ClusterSet(CLUSTERS, factory=factory), view


RUN = """metadata: {name: NAME, team: research}
spec:
  gpus: {model: H100, count: 16, perNode: 8}
  template: {image: 'ghcr.io/x/y:1', command: [python, train.py]}
"""


def starting(db: Database, name: str) -> None:
    """What provisioning and observing leave: nodes up, Starting."""
    w = parse_manifests(RUN.replace("NAME", name))[0]
    with db.session() as s:
        row, _ = repo.submit(s, name=w.name, team=w.team, spec=w.to_manifest(), priority=0, gpus=16)
        row.state = WorkloadState.STARTING.value
        row.assignments.append(Assignment(pool=f"{name}-p-0", provider="aws", region="us-east-1", zone="us-east-1a",
                                          instance_type="p5.48xlarge", nodes=2, gpus=16, gpu_model="H100",
                                          capacity_type="on-demand"))


@dataclass
class RunReplica:
    db: Database
    share: WorkShare
    view: ReplicaView
    step: RunStep

    def close(self) -> None:
        self.share.stop()
        self.db.dispose()


def run_replica(url: str, i: int, shared: SharedCluster, ttl_s: float = 30.0, every_s: float = 0.05) -> RunReplica:
    db = Database.from_url(url, pool_size=2, max_overflow=2)
    share = WorkShare(db, f"r{i}", ttl_s)
    cs, view = cluster_set(shared, f"r{i}")
    step = RunStep(db, cs, actor=f"controller:r{i}", fenced=lambda: False, idle_timeout_s=lambda: 3600.0,
                   share=share, every_s=every_s)
    return RunReplica(db, share, view, step)


def dispatched(db: Database) -> dict[str, int]:
    with db.session() as s:
        return {w.name: audit.count(s, action="dispatched", subject=w.name)
                for w in repo.list_(s, include_deleted=True)}


def actors(db: Database, action: str) -> dict[str, str]:
    with db.session() as s:
        return {e.subject: e.actor for e in audit.events(s, kind="workload", limit=10_000) if e.action == action}


def test_replicas_split_the_runs_and_each_is_dispatched_once(pg_url: str) -> None:
    shared = SharedCluster()
    reps = [run_replica(pg_url, i, shared) for i in range(3)]
    names = [f"job-{i:02d}" for i in range(12)]
    for n in names:
        starting(reps[0].db, n)
    try:
        for r in reps:
            r.share.members()
        assert [r.share.members(fresh=True) for r in reps] == [3, 3, 3]
        stop = threading.Event()
        start = threading.Barrier(3)

        def rounds(r: RunReplica) -> None:
            start.wait()
            while not stop.is_set():
                r.step.tick()
                time.sleep(0.02)

        threads = [threading.Thread(target=rounds, args=(r,)) for r in reps]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: set(dispatched(reps[0].db).values()) == {1} and
                     all(st == "Running" for st in states(reps[0].db).values()))
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        assert dispatched(reps[0].db) == {n: 1 for n in names}
        jobs = shared.jobs_created()
        assert len(jobs) == len(names) and set(jobs.values()) == {1}   # exactly one Job per workload
        with shared.lock:
            attempts: dict[tuple[str, str], int] = {}
            for _r, kind, name, _made in shared.calls:
                attempts[(kind, name)] = attempts.get((kind, name), 0) + 1
        assert set(attempts.values()) == {1}, "two replicas followed one run in the same round"
        assert len(set(actors(reps[0].db, "dispatched").values())) >= 2, "one replica dispatched everything"
    finally:
        for r in reps:
            r.close()


def states(db: Database) -> dict[str, str]:
    with db.session() as s:
        return {w.name: w.state for w in repo.list_(s, include_deleted=True)}


def test_a_stalled_dispatcher_hands_its_run_over_and_its_late_result_is_refused(pg_url: str) -> None:
    # Pods stay Pending: b's pass leaves the row Starting, so a's late change still matches the row and only
    # the fence stands between it and a second "dispatched".
    shared = SharedCluster(phase="Pending")
    a = run_replica(pg_url, 0, shared, ttl_s=1.0)
    b = run_replica(pg_url, 1, shared, ttl_s=1.0)
    starting(a.db, "job-0")
    a.view.hold.clear()                       # a's calls to the cluster hang (a stalled process)
    t = threading.Thread(target=a.step.tick)
    try:
        t.start()
        assert a.view.waiting.wait(30)
        assert {k: h for k, (h, _e) in wl.held(a.db, wl.DISPATCH).items()} == {"research_job-0": "r0"}
        a.share._stop.set()                   # "killed": its leases expire
        wait_for(lambda: (b.step.tick(), dispatched(b.db))[1] == {"job-0": 1})
        assert wl.held(b.db, wl.DISPATCH) == {} or wl.held(b.db, wl.DISPATCH)["research_job-0"][0] == "r1"
    finally:
        a.view.hold.set()                     # a wakes up late and finishes its pass
        t.join(timeout=60)
    assert dispatched(a.db) == {"job-0": 1}
    assert actors(a.db, "dispatched") == {"job-0": "controller:r1"}
    assert list(shared.jobs_created().values()) == [1]
    made = [(r, kind) for r, kind, _n, created in shared.calls if created]
    assert {r for r, _k in made} == {"r1"}    # a's creates found b's objects there: nothing made twice
    a.close()
    b.close()


# -- the controllers, end to end ------------------------------------------------------------------------
def controller(url: str, i: int, cloud: FakeCloud, placer: FakePlacer, shared: SharedCluster,
               log: ListLog) -> Controller:
    db = Database.from_url(url, pool_size=4, max_overflow=4)
    elector = LeaderElector(db, f"r{i}", ttl_s=3.0, renew_s=1.0)
    cs, _view = cluster_set(shared, f"r{i}")
    cfg = LoopConfig(interval_s=0.05, resync_s=3600, retry_base_s=0.01, work_lease_ttl_s=3.0)
    providers = {n: LoggedProvider(n, cloud, log, f"r{i}", delay_s=0.0) for n in ("aws", "azure", "gcp")}
    return Controller(db, providers, FakeEngine(cloud),
                      elector=elector, policies=PolicySet.default, config=cfg, place=placer,
                      snapshot=lambda: None, clusters=cs)


def test_three_controllers_share_observing_and_dispatch_one_placer(pg_url: str) -> None:
    cloud, placer, shared, log = FakeCloud(), FakePlacer(), SharedCluster(), ListLog()
    cs = [controller(pg_url, i, cloud, placer, shared, log) for i in range(3)]
    names = [f"job-{i}" for i in range(9)]
    try:
        for c in cs:
            c.start()
        for n in names:
            w = parse_manifests(RUN.replace("NAME", n))[0]
            with cs[0].db.session() as s:
                repo.submit(s, name=w.name, team=w.team, spec=w.to_manifest(), priority=0, gpus=16)
        wait_for(lambda: set(states(cs[0].db).values()) == {"Running"} and len(states(cs[0].db)) == 9)
    finally:
        for c in cs:
            c.stop(grace_s=10)
    assert placer.decided == {n: 1 for n in names}
    assert len(cloud.creates) == len(set(cloud.creates)) == 18
    assert dispatched(cs[0].db) == {n: 1 for n in names}
    assert set(shared.jobs_created().values()) == {1} and len(shared.jobs_created()) == 9
    assert log.overlapping() == []            # never two replicas listing at once
    with cs[0].db.session() as s:
        placers = {e.actor for e in audit.events(s, kind="workload", limit=1000) if e.action == "placed"}
    assert len(placers) == 1
    assert {c.replica for c in log.calls} - {p.removeprefix("controller:") for p in placers}, \
        "only the leader observed"
    for c in cs:
        c.db.dispose()


def test_only_free_idle_dispatch_leases_are_pruned(pg_url: str) -> None:
    db = Database.from_url(pg_url)
    try:
        got = wl.claim(db, wl.DISPATCH, ["done", "running"], "a", ttl_s=30, limit=2)
        assert wl.release_many(db, wl.DISPATCH, {"done": got["done"]}, "a") == 1
        time.sleep(0.05)
        assert wl.prune(db, wl.DISPATCH, idle_s=3600) == 0        # free, but not idle for an hour yet
        assert wl.prune(db, wl.DISPATCH, idle_s=0) == 1           # the held one stays
        assert set(wl.held(db, wl.DISPATCH)) == {"running"}
        assert wl.claim(db, wl.DISPATCH, ["done"], "b", ttl_s=30, limit=1) == {"done": 1}   # needed again: back
    finally:
        db.dispose()
