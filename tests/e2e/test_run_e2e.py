"""Running workloads end to end through the HTTP API of a real service against the mock clouds: submit a
manifest with a template -> placed -> provisioned -> its pods Running on the provisioned nodes (seen
through the kubernetes client in the region's cluster) -> Succeeded -> capacity released, and `awan logs`
(the API under it) returns what the pods printed. Then a lost gang: re-placed, resumed with the same
checkpoint, the retry counted; with no retries left it ends Failed with the reason.

The pods run ``sleep infinity`` in the mock kubelet until the test finishes them (``/_mock/pods/finish``):
the schedule is the test's, not the wall clock's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from controlplane.api import create_app
from controlplane.auth import create_token
from controlplane.dispatch.render import L_WORKLOAD
from controlplane.model.identity import workload_key
from controlplane.reconcile.runtime import build_controller
from controlplane.settings import Settings
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from providers import nodelabels
from providers.registry import build_providers
from tests.e2e.test_service_e2e import POLICIES, Service, _inventory

pytestmark = pytest.mark.slow
PINNED = {"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus", "coreweave": "US-EAST-04"}
CKPT = "s3://ckpt/e2e/"


def manifest(name: str, provider: str, region: str, *, nodes: int = 2, max_retries: int = 2) -> str:
    return f"""apiVersion: awan.dev/v1alpha1
kind: GPUWorkload
metadata: {{name: {name}, team: research}}
spec:
  kind: training
  gpus: {{model: [H100], count: {8 * nodes}, perNode: 8}}
  capacityType: [on-demand]
  location: {{regions: ['{provider}:{region}']}}
  template:
    image: ghcr.io/example/trainer:1
    command: [sh, -c, 'echo rank=$RANK world=$WORLD_SIZE ckpt=$CKPT; sleep infinity']
  run: {{maxRetries: {max_retries}, checkpoint: {{uri: '{CKPT}', env: CKPT}}}}
"""


@pytest.fixture
def service(mockclouds, mock_config, tmp_path: Path) -> Iterator[tuple[Service, str, Any]]:
    # SQLite only: these are long, and the store's side of a run is tested on both stores
    # (tests/controlplane/reconcile/test_running.py).
    db_url = f"sqlite:///{tmp_path}/awan.db"
    # A finished run's capacity is released at once here (the shipped policy holds it 5 minutes).
    idle = tmp_path / "99-idle.yaml"
    idle.write_text("apiVersion: awan.dev/v1alpha1\nkind: PlacementPolicy\nmetadata: {name: release-now}\n"
                    "spec: {lifecycle: {idleTimeoutSeconds: 0}}\n")
    providers = build_providers(mock_config)
    db = Database.from_url(db_url)
    upgrade(db.engine)
    with db.session() as s:
        member, _ = create_token(s, "research", "member")
    settings = Settings(db_url=db_url, reconcile_interval_s=0.2, lease_ttl_s=5, lease_renew_s=1,
                        policies=[*POLICIES, str(idle)])

    def factory(ctx: Any) -> Any:
        from controlplane.store.stack_state import DbStackStateStore
        from infra.engines.select import select_engine

        return build_controller(ctx, engine=select_engine("local", config=mock_config, store=DbStackStateStore(ctx.db)))

    app = create_app(settings, db=db, providers=providers, config=mock_config, controller_factory=factory)
    with Service(app) as svc:
        yield svc, member, mockclouds
    for p in providers.values():
        p.close()
    db.dispose()


def wait_for(c: httpx.Client, name: str, ok: Any, what: str, timeout_s: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    w: dict[str, Any] = {}
    while time.monotonic() < deadline:
        w = c.get(f"/v1/workloads/{name}").json()
        if ok(w):
            return w
        time.sleep(0.2)
    raise AssertionError(f"{name}: not {what} within {timeout_s} s: {w.get('state')}: {w.get('message')}")


def kube(mc: Any, provider: str, region: str) -> Any:
    """A kubernetes client for the region's cluster in the mock, as a user's kubeconfig would give."""
    from kubernetes import client

    cfg = mc.config().cluster_for(provider, region)
    conf = client.Configuration()
    conf.host = cfg.endpoint
    conf.api_key = {"authorization": cfg.secret("token")}
    conf.api_key_prefix = {"authorization": "Bearer"}
    return client.CoreV1Api(client.ApiClient(conf))


def finish(mc: Any, provider: str, region: str, name: str, exit_code: int = 0) -> None:
    """End the workload's running pods now, through the mock's own control (what ``POST /_mock/pods/finish``
    does; called in-process because the regional clusters' HTTP route of it answers 500 in this version)."""
    from mockclouds.kubernetes.controls import finish_request
    from mockclouds.kubernetes.regional import ClusterMount

    body = {"region": region, "labelSelector": f"{L_WORKLOAD}={workload_key('research', name)}", "exitCode": exit_code}
    app = mc.servers[provider].server.app
    if isinstance(app, ClusterMount):
        app.clusters.sync()
        cluster = app.clusters.cluster(region)
    else:
        cluster = mc.backend(provider)
    r = finish_request(body, cluster)
    assert r.status_code == 200 and r.json["pods"], r.get_data(as_text=True)


def run_to_completion(svc: Service, token: str, mc: Any, provider: str) -> None:
    region = PINNED[provider]
    name = f"run-{provider}"
    key = workload_key("research", name)
    with httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        r = c.post("/v1/workloads", content=manifest(name, provider, region), headers={"Content-Type": "application/yaml"})
        assert r.status_code == 201 and r.json()["capacityOnly"] == [], r.text
        v1 = kube(mc, provider, region)
        try:
            w = wait_for(c, name, lambda w: w["state"] == "Running", "Running")
        except AssertionError as e:       # say why the pods did not run, as the cluster tells it
            pods = v1.list_namespaced_pod("default", label_selector=f"{L_WORKLOAD}={key}").items
            why = [(p.metadata.name, p.status.phase, [(x.type, x.reason, x.message) for x in p.status.conditions or []])
                   for p in pods]
            nodes = [(n.metadata.name, n.metadata.labels) for n in v1.list_node().items]
            raise AssertionError(f"{e}\npods: {why}\nnodes: {nodes}") from None
        assert {(a["provider"], a["region"]) for a in w["assignments"]} == {(provider, region)}
        pools = {a["pool"] for a in w["assignments"]}

        # The pods run on the nodes Awan provisioned for it, as the cluster itself says.
        pods = v1.list_namespaced_pod("default", label_selector=f"{L_WORKLOAD}={key}").items
        assert len(pods) == 2 and all(p.status.phase == "Running" for p in pods)
        nodes = {n.metadata.name: n.metadata.labels for n in v1.list_node().items}
        for p in pods:
            assert nodes[p.spec.node_name].get(nodelabels.POOL) in pools, (p.spec.node_name, nodes[p.spec.node_name])
        assert len({p.spec.node_name for p in pods}) == 2          # one pod per node

        live = c.get(f"/v1/workloads/{name}/logs").json()
        assert [it["rank"] for it in live["items"]] == [0, 1] and all(it["live"] for it in live["items"])
        assert all(f"ckpt={CKPT}" in it["text"] and "world=2" in it["text"] for it in live["items"]), live

        finish(mc, provider, region, name, 0)
        w = wait_for(c, name, lambda w: w["state"] == "Succeeded", "Succeeded")
        assert (w["exitCode"], w["restarts"]) == (0, 0)
        w = wait_for(c, name, lambda w: w["releasedAt"] is not None and not w["assignments"], "released")
        deadline = time.monotonic() + 180
        while _inventory(mc, provider, name) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert _inventory(mc, provider, name) == [], f"{name}: its nodes are still held in {provider}"
        kept = c.get(f"/v1/workloads/{name}/logs", params={"rank": 1}).json()
        assert [(it["rank"], it["live"]) for it in kept["items"]] == [(1, False)]
        assert f"ckpt={CKPT}" in kept["items"][0]["text"]
        actions = [e["action"] for e in c.get(f"/v1/workloads/{name}/events").json()["items"]]
        for a in ("placed", "provisioning", "dispatched", "running", "succeeded", "released"):
            assert a in actions, (a, actions)
        # Nothing of the run is left in the cluster once its capacity is gone.
        deadline = time.monotonic() + 60
        while v1.list_namespaced_pod("default", label_selector=f"{L_WORKLOAD}={key}").items:
            assert time.monotonic() < deadline, "pods left behind"
            time.sleep(0.3)


def test_a_job_runs_to_completion_on_aws(service):
    svc, token, mc = service
    run_to_completion(svc, token, mc, "aws")


@pytest.mark.parametrize("provider", ["gcp", "azure", "coreweave"])
def test_a_job_runs_to_completion_on_every_provider(service, provider):
    svc, token, mc = service
    run_to_completion(svc, token, mc, provider)


def lose_nodes(mc: Any, provider: str, w: dict[str, Any]) -> None:
    a = w["assignments"][0]
    r = httpx.post(mc.urls[provider] + "/_mock/revoke", json={"region": a["region"], "zone": a["zone"],
                                                               "instanceType": a["instanceType"]}, timeout=30)
    assert r.status_code == 200 and r.json()["nodes"], r.text


def test_a_lost_gang_resumes_from_its_checkpoint_and_the_retry_is_counted(service):
    svc, token, mc = service
    name = "gang-lost"
    with httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        assert c.post("/v1/workloads", content=manifest(name, "aws", "us-east-1", max_retries=2),
                      headers={"Content-Type": "application/yaml"}).status_code == 201
        w = wait_for(c, name, lambda w: w["state"] == "Running", "Running")
        lose_nodes(mc, "aws", w)
        w = wait_for(c, name, lambda w: w["state"] == "Running" and w["restarts"] == 1, "Running again, 1 retry")
        logs = c.get(f"/v1/workloads/{name}/logs").json()["items"]
        assert len(logs) == 2 and all(it["incarnation"] == 1 and f"ckpt={CKPT}" in it["text"] for it in logs), logs
        events = c.get(f"/v1/workloads/{name}/events").json()["items"]
        retry = [e for e in events if e["action"] == "retry"]
        assert len(retry) == 1 and retry[0]["details"]["restarts"] == 1 and retry[0]["details"]["maxRetries"] == 2
        assert sum(1 for e in events if e["action"] == "dispatched") == 2
        # Only the new incarnation's pods are left in the cluster.
        v1 = kube(mc, "aws", w["assignments"][0]["region"])
        pods = v1.list_namespaced_pod("default", label_selector=f"{L_WORKLOAD}={workload_key('research', name)}")
        deadline = time.monotonic() + 60
        while {p.metadata.labels["awan.dev/incarnation"] for p in pods.items} != {"1"}:
            assert time.monotonic() < deadline, [p.metadata.name for p in pods.items]
            time.sleep(0.3)
            pods = v1.list_namespaced_pod("default",
                                          label_selector=f"{L_WORKLOAD}={workload_key('research', name)}")
        finish(mc, "aws", w["assignments"][0]["region"], name, 0)
        w = wait_for(c, name, lambda w: w["state"] == "Succeeded", "Succeeded")
        assert w["restarts"] == 1


def test_a_gang_out_of_retries_ends_failed_with_the_reason(service):
    svc, token, mc = service
    name = "gang-spent"
    with httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        assert c.post("/v1/workloads", content=manifest(name, "aws", "us-east-1", max_retries=0),
                      headers={"Content-Type": "application/yaml"}).status_code == 201
        w = wait_for(c, name, lambda w: w["state"] == "Running", "Running")
        lose_nodes(mc, "aws", w)
        w = wait_for(c, name, lambda w: w["state"] == "Failed", "Failed")
        assert w["reason"] == "MaxRetriesExceeded" and "maxRetries" in w["message"] and w["restarts"] == 0, w
        deadline = time.monotonic() + 180
        while _inventory(mc, "aws", name) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert _inventory(mc, "aws", name) == []
