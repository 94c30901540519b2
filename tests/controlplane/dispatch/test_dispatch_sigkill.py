"""The controller SIGKILLed at every step of dispatch (a real process that kills itself with SIGKILL the
moment it passes the step: an object created, the gang resumed, one rank ungated, just before or after
the store write), then restarted on the same store: the run ends Running with exactly one set of objects
and pods in the cluster and nothing orphaned, as the kubernetes client sees it, and dispatch is recorded
once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controlplane.dispatch.render import L_WORKLOAD, MANAGED_BY, MANAGER
from controlplane.model.manifest import parse_manifests
from controlplane.store import audit
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from controlplane.store.models import Assignment, WorkloadState
from providers import nodelabels as L
from tests.controlplane.dispatch.test_gang_start import NS, Kube

REPO = Path(__file__).resolve().parents[3]
GB200 = "gb200-4x"          # 4 GPUs per node, NVL72 racks of 18 nodes
POOL = "crash-p"
STEPS = ["created-Service", "created-Job", "resumed", "before-record-dispatched", "after-record-dispatched",
         "ungated-one", "before-record-running", "after-record-running"]
MANIFEST = """metadata: {name: crash, team: research}
spec:
  kind: training
  gpus: {model: GB200, count: 8, perNode: 4}
  topology: {domain: nvlink, domainSize: 8}
  template: {image: 'ghcr.io/x/t:1', command: [sh, -c, 'echo rank=$RANK; sleep infinity']}
"""


def _start(url: str, config: dict[str, Any], log: Path, kill_at: str = "") -> subprocess.Popen[str]:
    out = log.open("a")     # a file, not a pipe: a child never read from must not block on writing
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("AWAN_TEST_KILL_AT", None)
    if kill_at:
        env["AWAN_TEST_KILL_AT"] = kill_at
    return subprocess.Popen([sys.executable, "-m", "tests.controlplane.dispatch.dispatch_child", url,
                             json.dumps(config)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)


def _wait(cond: Callable[[], Any], what: str, log: Path, timeout: float = 120.0) -> Any:
    end = time.monotonic() + timeout
    while not (got := cond()):
        assert time.monotonic() < end, f"timed out waiting for {what}\n{log.read_text()[-3000:]}"
        time.sleep(0.1)
    return got


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS)
def test_a_sigkill_at_each_step_of_dispatch_leaves_one_set_of_pods_and_nothing_orphaned(step, tmp_path,
                                                                                        mock_coreweave):
    kube = Kube(mock_coreweave.urls["coreweave"])
    body = {"apiVersion": "compute.coreweave.com/v1alpha1", "kind": "NodePool",
            "metadata": {"name": POOL, "labels": {"compute.coreweave.com/zone": "US-EAST-04A"}},
            "spec": {"instanceType": GB200, "targetNodes": 2, "nodeLabels": {L.POOL: POOL}}}
    kube.custom.create_cluster_custom_object("compute.coreweave.com", "v1alpha1", "nodepools", body)
    log = tmp_path / "child.log"
    _wait(lambda: len(kube.ready_nodes(POOL)) == 2, "the gang's two nodes", log)

    url = f"sqlite:///{tmp_path / 'awan.db'}"
    db = Database.from_url(url)
    upgrade(db.engine)
    w = parse_manifests(MANIFEST)[0]
    with db.session() as s:
        row, _ = repo.submit(s, name=w.name, team=w.team, spec=w.to_manifest(), priority=0, gpus=8)
        row.state = WorkloadState.STARTING.value
        row.assignments.append(Assignment(pool=POOL, provider="coreweave", region="US-EAST-04", zone="US-EAST-04A",
                                          instance_type=GB200, nodes=2, gpus=8, gpu_model="GB200",
                                          capacity_type="on-demand"))
        key = row.key
    config = mock_coreweave.config_dict()

    child = _start(url, config, log, kill_at=step)
    try:
        assert child.wait(timeout=180) == -signal.SIGKILL, log.read_text()[-3000:]
        assert f"SIGKILL at {step}" in log.read_text()
        child = _start(url, config, log)            # a new controller on the same store and cluster

        def state() -> str:
            with db.session() as s:
                return str(repo.list_(s, limit=5)[0].state)

        _wait(lambda: state() == "Running", "the run Running after the restart", log)
        passes = log.read_text().count("pass ")
        _wait(lambda: log.read_text().count("pass ") >= passes + 5, "five more passes", log)
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)

    # Exactly one set: the Job and its headless Service, two pods (ranks 0 and 1) on the two nodes, none
    # gated; and nothing else Awan owns in the cluster.
    owned = f"{MANAGED_BY}={MANAGER}"
    jobs = kube.batch.list_namespaced_job(NS, label_selector=owned).items
    services = kube.core.list_namespaced_service(NS, label_selector=owned).items
    pods = kube.pods(owned)
    assert [j.metadata.labels[L_WORKLOAD] for j in jobs] == [key] and len(services) == 1
    assert services[0].metadata.name == jobs[0].metadata.name and jobs[0].spec.suspend is False
    assert len(pods) == 2 and all(p.status.phase == "Running" and not p.spec.scheduling_gates for p in pods)
    ranks = sorted(p.metadata.annotations["batch.kubernetes.io/job-completion-index"] for p in pods)
    assert ranks == ["0", "1"]
    assert {p.spec.node_name for p in pods} == {n.metadata.name for n in kube.ready_nodes(POOL)}
    assert len({p.spec.node_selector[L.NVLINK_DOMAIN] for p in pods}) == 1
    with db.session() as s:
        assert audit.count(s, action="dispatched", subject="crash") == 1
        assert audit.count(s, action="running", subject="crash") == 1
    kube.api.close()
    db.dispose()
