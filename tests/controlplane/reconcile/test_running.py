"""The run step over a fake cluster (the real one is exercised in tests/e2e/test_run_e2e.py): dispatch is
create-or-get and crash-safe, the run is followed to the end, a failed run is retried against maxRetries,
capacity is released after the idle timeout and no object is left behind."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from controlplane.dispatch.clusters import ClusterSet
from controlplane.dispatch.kube import Owned
from controlplane.dispatch.render import L_INCARNATION
from controlplane.model.manifest import parse_manifests
from controlplane.reconcile.running import RunStep
from controlplane.store import audit
from controlplane.store import workloads as repo
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import Assignment, RunLog, WorkloadState
from providers.config import ClusterConfig, parse_config


class FakeCluster:
    """Jobs make one pod per completion index; the test sets the pods' phases."""

    def __init__(self, cfg: ClusterConfig) -> None:
        self.name, self.namespace = cfg.name, cfg.namespace
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[str, dict[str, Any]] = {}
        self.node_objs: dict[str, dict[str, Any]] = {}
        self.created = 0

    def create(self, obj: dict[str, Any]) -> bool:
        k = (obj["kind"], obj["metadata"]["name"])
        if k in self.objects:
            return False
        self.objects[k] = obj = {**obj, "spec": dict(obj["spec"])}
        self.created += 1
        if obj["kind"] == "Job":
            # The gang's nodes: Ready, one per rank, with the GPUs a rank asks for.
            tmpl = obj["spec"]["template"]["spec"]
            gpus = tmpl["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
            for i in range(obj["spec"]["completions"]):
                self.node_objs[f"node-{i}"] = {
                    "metadata": {"name": f"node-{i}", "labels": dict(tmpl["nodeSelector"])},
                    "status": {"conditions": [{"type": "Ready", "status": "True"}],
                               "allocatable": {"nvidia.com/gpu": gpus}}}
            if not obj["spec"].get("suspend"):
                self._pods_of(obj)
        return True

    def _pods_of(self, obj: dict[str, Any]) -> None:
        for i in range(obj["spec"]["completions"]):
            name = f"{obj['metadata']['name']}-{i}-x"
            self.pods[name] = {"metadata": {"name": name, "labels": dict(obj["spec"]["template"]["metadata"]["labels"]),
                                            "annotations": {"batch.kubernetes.io/job-completion-index": str(i)}},
                               "spec": {"nodeName": f"node-{i}"}, "status": {"phase": "Pending"}}

    def nodes(self, selector: str) -> list[dict[str, Any]]:
        return list(self.node_objs.values())

    def resume(self, job: str) -> None:
        obj = self.objects[("Job", job)]
        obj["spec"]["suspend"] = False
        self._pods_of(obj)

    def ungate(self, pod: dict[str, Any], gate: str, node_selector: dict[str, str]) -> None:
        raise AssertionError("these gangs are not over NVLink domains: nothing is gated")

    def owned(self, selector: str) -> Owned:
        return Owned([dict(o) for o in self.objects.values()], [dict(p) for p in self.pods.values()])

    def delete(self, kind: str, name: str) -> None:
        if kind == "Pod":
            self.pods.pop(name, None)
            return
        self.objects.pop((kind, name), None)
        if kind == "Job":
            for p in [p for p in self.pods if p.startswith(name + "-")]:
                del self.pods[p]

    def log(self, pod: str, *, tail_lines: int | None = None) -> str:
        return f"hello from {pod}\n"

    def follow(self, pod: str) -> Iterator[bytes]:
        yield b""

    def close(self) -> None:
        pass

    def set_pods(self, phase: str, exit_code: int | None = None, reason: str = "") -> None:
        for p in self.pods.values():
            p["status"] = {"phase": phase, "reason": reason}
            if exit_code is not None:
                p["status"]["containerStatuses"] = [{"state": {"terminated": {"exitCode": exit_code}}}]

    def incarnations(self) -> set[str]:
        return {o["metadata"]["labels"][L_INCARNATION] for o in self.objects.values()}


MANIFEST = """metadata: {name: job-a, team: research}
spec:
  gpus: {model: H100, count: 16, perNode: 8}
  template: {image: 'ghcr.io/x/y:1', command: [python, train.py]}
  run: {restartPolicy: RP, maxRetries: 1, checkpoint: {uri: 's3://c/'}}
"""


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def env(db: Database) -> tuple[Database, FakeCluster, Any]:
    clusters: dict[str, FakeCluster] = {}

    def factory(cfg: ClusterConfig) -> FakeCluster:
        return clusters.setdefault(cfg.name, FakeCluster(cfg))

    cfg = parse_config({"clusters": [{"name": "eks", "provider": "aws", "regions": ["us-*"], "endpoint": "http://x"}]})
    cs = ClusterSet(cfg, factory=factory)
    cs.for_region("aws", "us-east-1")
    return db, clusters["eks"], cs


def starting(db: Database, policy: str = "Never") -> None:
    w = parse_manifests(MANIFEST.replace("RP", policy))[0]
    with db.session() as s:
        row, _ = repo.submit(s, name=w.name, team=w.team, spec=w.to_manifest(), priority=0, gpus=16)
        row.state = WorkloadState.STARTING.value
        row.assignments.append(Assignment(pool="job-a-p-0", provider="aws", region="us-east-1", zone="us-east-1a",
                                          instance_type="p5.48xlarge", nodes=2, gpus=16, gpu_model="H100",
                                          capacity_type="on-demand"))


def step(db: Database, cs: ClusterSet, clock: Clock | None = None, idle: float = 60.0) -> RunStep:
    return RunStep(db, cs, actor="test", fenced=lambda: True, idle_timeout_s=lambda: idle, clock=clock or utcnow)


def row(db: Database) -> Any:
    with db.session() as s:
        r = repo.get(s, "job-a")
        assert r is not None
        s.expunge_all()
        return r


def actions(db: Database) -> list[str]:
    with db.session() as s:
        return [e.action for e in audit.events(s, subject="job-a")]


def test_a_controller_killed_between_creating_and_recording_creates_nothing_twice(env, monkeypatch):
    db, cluster, cs = env
    starting(db)
    killed = step(db, cs)

    def sigkill(changes: Any) -> None:
        raise SystemExit("killed before recording")

    monkeypatch.setattr(killed, "_apply", sigkill)
    with pytest.raises(SystemExit):
        killed.tick()
    assert cluster.created == 2 and row(db).dispatched_at is None    # a headless Service and the Job
    for _ in range(3):                                               # the next leader, several passes
        step(db, cs).tick()
    assert cluster.created == 2 and len(cluster.pods) == 2
    assert row(db).dispatched_at is not None and actions(db).count("dispatched") == 1


def test_followed_to_success_then_released_after_the_idle_timeout_and_collected(env):
    db, cluster, cs = env
    starting(db)
    clock = Clock()
    s = step(db, cs, clock)
    s.tick()
    assert row(db).state == "Starting" and "0/2 pods running" in row(db).message
    cluster.set_pods("Running")
    s.tick()
    assert row(db).state == "Running"
    cluster.set_pods("Succeeded", 0)
    s.tick()
    r = row(db)
    assert (r.state, r.exit_code, r.reason, r.restarts) == ("Succeeded", 0, "Completed", 0)
    with db.session() as sess:
        assert sorted(lg.rank for lg in sess.query(RunLog)) == [0, 1]
    s.tick()
    assert row(db).released_at is None and cluster.objects                   # held while idle
    clock.now += timedelta(seconds=61)
    s.tick()
    assert row(db).released_at is not None and row(db).assignments == []
    s.tick()
    assert cluster.objects == {} and cluster.pods == {}
    assert actions(db)[-4:] == ["dispatched", "running", "succeeded", "released"]


def test_on_failure_retries_then_fails_with_the_exit_code(env):
    db, cluster, cs = env
    starting(db, "OnFailure")
    s = step(db, cs)
    s.tick()
    cluster.set_pods("Failed", 3, "Error")
    s.tick()
    r = row(db)
    assert (r.state, r.restarts, r.dispatched_at) == ("Starting", 1, None) and "retry 1 of 1" in r.message
    s.tick()                                          # the old incarnation goes, the next one is created
    assert cluster.incarnations() == {"1"}
    cluster.set_pods("Failed", 3, "Error")
    s.tick()
    r = row(db)
    assert (r.state, r.exit_code, r.restarts) == ("Failed", 3, 1) and "exited 3" in r.message


def test_never_fails_at_once_and_a_lost_node_is_not_a_failed_run(env):
    db, cluster, cs = env
    starting(db, "Never")
    s = step(db, cs)
    s.tick()
    cluster.set_pods("Failed", None, "NodeLost")
    s.tick()
    r = row(db)
    assert r.state == "Starting" and "lost its node" in r.message          # observation re-places it
    cluster.set_pods("Failed", 1, "Error")
    s.tick()
    assert (row(db).state, row(db).exit_code) == ("Failed", 1)


def test_without_a_cluster_for_the_region_it_says_so(db):
    starting(db)
    s = step(db, ClusterSet(parse_config({}), factory=FakeCluster))
    s.tick()
    s.tick()
    assert row(db).state == "Starting" and "no Kubernetes cluster configured for aws/us-east-1" in row(db).message
    assert actions(db).count("dispatch-blocked") == 1
