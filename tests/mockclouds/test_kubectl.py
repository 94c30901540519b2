"""A real kubectl against the fake CKS apiserver.

kubectl sends a kubeconfig's bearer token only over TLS (client-go's clientcmd drops it for http://),
so this suite starts the fake with ``tls=True`` and trusts its self-signed certificate.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mockclouds.kubernetes.resources import NODES
from mockclouds.kubernetes.server import start
from mockclouds.launcher import MOCK_SECRETS

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (scripts/system-deps.sh installs it)")

NODEPOOL_YAML = """\
apiVersion: compute.coreweave.com/v1alpha1
kind: NodePool
metadata:
  name: research-h100
  labels:
    compute.coreweave.com/zone: US-EAST-04A
spec:
  computeClass: default
  instanceType: gd-8xh100ib-i128
  autoscaling: false
  targetNodes: {target}
  minNodes: 0
  maxNodes: 0
  nodeLabels:
    team: research
  nodeTaints:
    - key: dedicated
      value: research
      effect: NoSchedule
"""


@pytest.fixture(scope="module")
def tls_server():
    srv = start("127.0.0.1", 0, tls=True)
    yield srv
    srv.stop()


@pytest.fixture
def kubectl(tls_server, tmp_path: Path):
    tls_server.backend.reset()
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "cks",
        "clusters": [{"name": "cks", "cluster": {
            "server": tls_server.url,
            "certificate-authority-data": base64.b64encode(tls_server.ca_pem).decode()}}],
        "users": [{"name": "awan", "user": {"token": MOCK_SECRETS["coreweave"]["token"]}}],
        "contexts": [{"name": "cks", "context": {"cluster": "cks", "user": "awan"}}],
    }))
    env = {"KUBECONFIG": str(cfg), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            p = subprocess.run([KUBECTL or "kubectl", *args], env=env, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"kubectl {' '.join(args)} hung: {e.stderr!r}") from None
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return p

    run.tmp = tmp_path  # type: ignore[attr-defined]
    return run


def _apply(kubectl, target: int) -> str:
    manifest = kubectl.tmp / "nodepool.yaml"
    manifest.write_text(NODEPOOL_YAML.format(target=target))
    return kubectl("apply", "-f", str(manifest)).stdout


def test_get_nodes_json_on_an_empty_cluster(kubectl):
    out = json.loads(kubectl("get", "nodes", "-o", "json").stdout)
    assert out["items"] == []


def test_apply_nodepool_then_inspect_it(kubectl):
    assert "nodepool.compute.coreweave.com/research-h100 created" in _apply(kubectl, 2)
    pools = json.loads(kubectl("get", "nodepools.compute.coreweave.com", "-o", "json").stdout)["items"]
    assert [p["metadata"]["name"] for p in pools] == ["research-h100"]
    assert pools[0]["status"]["currentNodes"] == 2
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert len(nodes) == 2
    assert all(n["metadata"]["labels"]["node.coreweave.cloud/type"] == "gd-8xh100ib-i128" for n in nodes)
    assert all(n["spec"]["taints"][0]["key"] == "dedicated" for n in nodes)

    # re-apply with another size: a patch, and the controller follows
    assert "configured" in _apply(kubectl, 3)
    pool = json.loads(kubectl("get", "nodepool", "research-h100", "-o", "json").stdout)
    assert (pool["spec"]["targetNodes"], pool["status"]["currentNodes"]) == (3, 3)


def test_get_nodes_with_label_selectors(kubectl, tls_server):
    _apply(kubectl, 2)
    tls_server.backend.create(NODES, "", {"metadata": {"name": "cpu-0", "labels": {"team": "infra"}}})
    out = kubectl("get", "nodes", "-l", "team=research,compute.coreweave.com/node-pool in (research-h100)").stdout
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["NAME", "STATUS"]
    assert sorted(line.split()[0] for line in lines[1:]) == ["research-h100-0", "research-h100-1"]
    names = kubectl("get", "nodes", "-l", "team!=research", "-o", "name").stdout.split()
    assert names == ["node/cpu-0"]
    p = kubectl("get", "nodes", "-l", "team in (", check=False)
    assert p.returncode != 0


def test_delete_nodepool_removes_its_nodes(kubectl):
    _apply(kubectl, 2)
    kubectl("delete", "nodepool", "research-h100")
    assert json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"] == []


def test_kubectl_without_the_token_is_refused(kubectl, tmp_path):
    cfg = json.loads((tmp_path / "kubeconfig").read_text())
    cfg["users"][0]["user"]["token"] = "wrong"
    (tmp_path / "kubeconfig").write_text(json.dumps(cfg))
    p = kubectl("get", "nodes", check=False)
    assert p.returncode != 0 and "credentials" in p.stderr


JOB_YAML = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: hello
spec:
  completions: 2
  parallelism: 2
  completionMode: Indexed
  backoffLimit: 0
  template:
    metadata:
      annotations:
        mock.awan.dev/duration-seconds: "0.3"
    spec:
      restartPolicy: Never
      nodeSelector:
        compute.coreweave.com/node-pool: research-h100
      tolerations:
        - {key: dedicated, operator: Exists, effect: NoSchedule}
      containers:
        - name: main
          image: busybox:1.36
          command: ["sh", "-c", "echo hello from rank $JOB_COMPLETION_INDEX"]
          resources:
            limits: {nvidia.com/gpu: "8"}
"""

DEPLOY_YAML = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      tolerations:
        - {key: dedicated, operator: Exists}
      containers:
        - name: srv
          image: nginx:1.27
          ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80}]
"""


def _apply_text(kubectl, name: str, text: str) -> str:
    manifest = kubectl.tmp / name
    manifest.write_text(text)
    return kubectl("apply", "-f", str(manifest)).stdout


def test_a_job_runs_and_kubectl_shows_pods_jobs_and_logs(kubectl):
    _apply(kubectl, 2)
    assert "job.batch/hello created" in _apply_text(kubectl, "job.yaml", JOB_YAML)
    kubectl("wait", "--for=condition=complete", "job/hello", "--timeout=50s")
    out = kubectl("get", "pods,jobs").stdout
    pod_rows = [line.split() for line in out.splitlines() if line.startswith("pod/hello-")]
    assert len(pod_rows) == 2 and all(r[1:3] == ["0/1", "Completed"] for r in pod_rows)
    job_row = next(line.split() for line in out.splitlines() if line.startswith("job.batch/hello"))
    assert job_row[1:3] == ["Complete", "2/2"]
    wide = kubectl("get", "pods", "-o", "wide").stdout.splitlines()
    assert "NODE" in wide[0] and {r.split()[6] for r in wide[1:]} == {"research-h100-0", "research-h100-1"}
    names = kubectl("get", "pods", "-l", "batch.kubernetes.io/job-completion-index=1", "-o", "name").stdout.split()
    assert len(names) == 1
    log = kubectl("logs", names[0]).stdout.splitlines()
    assert "hello from rank 1" in log and "[mock-kubelet] env JOB_COMPLETION_INDEX=1" in log
    assert kubectl("logs", names[0], "-c", "main", "--tail=1").stdout == \
        "[mock-kubelet] container main exited with code 0\n"
    assert "hello from rank" in kubectl("logs", "job/hello").stdout
    events = kubectl("get", "events").stdout
    assert "SuccessfulCreate" in events and "Completed" in events
    kubectl("delete", "job", "hello")          # kubectl asks for Background propagation: the pods go too
    assert kubectl("get", "pods", "-o", "name").stdout.strip() == ""


def test_an_unfit_pod_shows_pending_and_a_deployment_rolls_out(kubectl):
    _apply(kubectl, 1)
    kubectl("run", "greedy", "--image=busybox", "--restart=Never",
            "--overrides", json.dumps({"spec": {"containers": [{"name": "greedy", "image": "busybox",
                                                                 "resources": {"limits": {"nvidia.com/gpu": "9"}}}],
                                                 "tolerations": [{"operator": "Exists"}]}}))
    row = kubectl("get", "pod", "greedy").stdout.splitlines()[1].split()
    assert row[2] == "Pending"
    described = kubectl("describe", "pod", "greedy").stdout
    assert "FailedScheduling" in described and "Insufficient nvidia.com/gpu" in described
    _apply_text(kubectl, "web.yaml", DEPLOY_YAML)
    kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    row = kubectl("get", "deployment", "web").stdout.splitlines()[1].split()
    assert row[1:4] == ["2/2", "2", "2"]
    svc = kubectl("get", "svc", "web").stdout.splitlines()[1].split()
    assert svc[1] == "ClusterIP" and svc[4] == "80/TCP"
