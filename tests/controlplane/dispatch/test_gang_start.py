"""All-or-nothing gang start against the fake CKS cluster, through the official kubernetes client: with one
node of the gang's pool missing the Job stays suspended and no pod exists (none runs); when the node
arrives the run step resumes the Job and every rank starts. The run step drives a real ``KubeCluster``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from controlplane.dispatch.clusters import ClusterSet
from controlplane.dispatch.render import L_WORKLOAD
from controlplane.model.manifest import parse_manifests
from controlplane.reconcile.running import RunStep
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.models import Assignment, Workload, WorkloadState
from mockclouds.launcher import MOCK_SECRETS
from providers import nodelabels as L

G, V = "compute.coreweave.com", "v1alpha1"
H100 = "gd-8xh100ib-i128"           # 8 GPUs per node
NS = "default"

MANIFEST = """metadata: {name: held, team: research}
spec:
  kind: training
  gpus: {model: H100, count: 16, perNode: 8}
  template: {image: 'ghcr.io/x/t:1', command: [sh, -c, 'echo rank=$RANK; sleep infinity']}
"""


class Kube:
    def __init__(self, url: str) -> None:
        cfg = client.Configuration()
        cfg.host = url
        cfg.api_key = {"authorization": MOCK_SECRETS["coreweave"]["token"]}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        self.api = client.ApiClient(cfg)
        self.core, self.batch = client.CoreV1Api(self.api), client.BatchV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def pool(self, name: str, target: int) -> None:
        body = {"apiVersion": f"{G}/{V}", "kind": "NodePool",
                "metadata": {"name": name, "labels": {"compute.coreweave.com/zone": "US-EAST-04A"}},
                "spec": {"instanceType": H100, "targetNodes": target, "nodeLabels": {L.POOL: name}}}
        self.custom.create_cluster_custom_object(G, V, "nodepools", body)

    def scale(self, name: str, target: int) -> None:
        self.custom.patch_cluster_custom_object(G, V, "nodepools", name, {"spec": {"targetNodes": target}})

    def ready_nodes(self, pool: str) -> list[Any]:
        return [n for n in self.core.list_node(label_selector=f"{L.POOL}={pool}").items
                if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])]

    def pods(self, selector: str) -> list[Any]:
        return list(self.core.list_namespaced_pod(NS, label_selector=selector).items)


def wait(pred: Callable[[], Any], what: str, timeout: float = 60.0, tick: Callable[[], None] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if tick is not None:
            tick()
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def kube(mock_coreweave: Any) -> Iterator[Kube]:
    k = Kube(mock_coreweave.urls["coreweave"])
    yield k
    k.api.close()


def starting(db: Database, pool: str, nodes: int) -> str:
    w = parse_manifests(MANIFEST)[0]
    with db.session() as s:
        row, _ = repo.submit(s, name=w.name, team=w.team, spec=w.to_manifest(), priority=0, gpus=8 * nodes)
        row.state = WorkloadState.STARTING.value
        row.assignments.append(Assignment(pool=pool, provider="coreweave", region="US-EAST-04", zone="US-EAST-04A",
                                          instance_type=H100, nodes=nodes, gpus=8 * nodes, gpu_model="H100",
                                          capacity_type="on-demand"))
        return str(row.key)


def row(db: Database) -> Workload:
    with db.session() as s:
        [r] = repo.list_(s, limit=10)
        s.expunge(r)
        return r


def test_a_gang_with_a_node_missing_runs_no_pod_and_starts_whole_when_it_arrives(db, mock_coreweave, kube):
    kube.pool("held-p", 1)
    wait(lambda: len(kube.ready_nodes("held-p")) == 1, "the first node")
    key = starting(db, "held-p", 2)
    clusters = ClusterSet(mock_coreweave.config())
    step = RunStep(db, clusters, actor="test", fenced=lambda: True, idle_timeout_s=lambda: 60.0)
    try:
        selector = f"{L_WORKLOAD}={key}"
        for _ in range(5):          # several passes: the gang is held on every one
            step.tick()
            [job] = kube.batch.list_namespaced_job(NS, label_selector=selector).items
            assert job.spec.suspend is True
            assert kube.pods(selector) == [], "no rank may exist while a node of the gang is missing"
            time.sleep(0.1)
        r = row(db)
        assert r.state == "Starting" and "gang held" in r.message and "held-p 1/2" in r.message, r.message

        kube.scale("held-p", 2)
        wait(lambda: len(kube.ready_nodes("held-p")) == 2, "the second node")
        wait(lambda: row(db).state == "Running", "the gang Running", tick=step.tick)
        pods = kube.pods(selector)
        assert len(pods) == 2 and all(p.status.phase == "Running" for p in pods)
        assert {p.spec.node_name for p in pods} == {n.metadata.name for n in kube.ready_nodes("held-p")}
        assert kube.batch.list_namespaced_job(NS, label_selector=selector).items[0].spec.suspend is False
    finally:
        clusters.close()
