"""Workloads on the fake CKS cluster through the official kubernetes client: Jobs, Deployments, Services,
pods/log, and the simulated scheduler and kubelet (fit, Pending -> Running -> Succeeded/Failed, node loss).

Every wait polls a condition with a generous bound: nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from mockclouds.launcher import MOCK_SECRETS

G, V = "compute.coreweave.com", "v1alpha1"
H100 = "gd-8xh100ib-i128"           # 8 GPUs per node
NS = "default"
POOL_LABEL = "compute.coreweave.com/node-pool"


class Kube:
    def __init__(self, api: client.ApiClient, url: str) -> None:
        self.core, self.batch, self.apps = client.CoreV1Api(api), client.BatchV1Api(api), client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.url = url

    def pool(self, name: str, target: int, compute_class: str = "default", taints: list[dict] | None = None) -> None:
        spec: dict[str, Any] = {"instanceType": H100, "targetNodes": target, "computeClass": compute_class}
        if taints:
            spec["nodeTaints"] = taints
        self.custom.create_cluster_custom_object(G, V, "nodepools", {
            "apiVersion": f"{G}/{V}", "kind": "NodePool",
            "metadata": {"name": name, "labels": {"compute.coreweave.com/zone": "US-EAST-04A"}}, "spec": spec})

    def pods(self, selector: str) -> list[client.V1Pod]:
        return sorted(self.core.list_namespaced_pod(NS, label_selector=selector).items,
                      key=lambda p: p.metadata.name)

    def control(self, path: str, body: dict) -> dict:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())


@pytest.fixture
def kube(mock_coreweave) -> Any:
    cfg = client.Configuration()
    cfg.host = mock_coreweave.urls["coreweave"]
    cfg.api_key = {"authorization": MOCK_SECRETS["coreweave"]["token"]}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    api = client.ApiClient(cfg)
    yield Kube(api, mock_coreweave.urls["coreweave"])
    api.close()


def wait(pred: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def container(command: str = "", gpus: int = 0, env: dict[str, str] | None = None, **extra: Any) -> dict:
    c: dict[str, Any] = {"name": "main", "image": "ghcr.io/awan/trainer:1", **extra}
    if command:
        c["command"] = ["sh", "-c", command]
    if gpus:
        c["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    if env:
        c["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return c


def job(name: str, *, pool: str | None = None, annotations: dict[str, str] | None = None, completions: int = 1,
        parallelism: int = 1, indexed: bool = False, backoff: int = 0, **c: Any) -> dict:
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container(**c)]}
    if pool:
        spec["nodeSelector"] = {POOL_LABEL: pool}
    js: dict[str, Any] = {"completions": completions, "parallelism": parallelism, "backoffLimit": backoff,
                          "template": {"metadata": {"annotations": annotations or {}}, "spec": spec}}
    if indexed:
        js["completionMode"] = "Indexed"
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": js}


def condition(obj: Any, type_: str) -> Any:
    return next((c for c in (obj.status.conditions or []) if c.type == type_ and c.status == "True"), None)


# -- Jobs ------------------------------------------------------------------------------------------
def test_a_job_runs_to_succeeded_and_its_logs_show_the_output(kube):
    kube.pool("p", 1)
    kube.batch.create_namespaced_job(NS, job("hello", command="echo hello from $WHO; sleep 0.2; exit 0",
                                             env={"WHO": "awan"}))
    done = wait(lambda: condition(j := kube.batch.read_namespaced_job("hello", NS), "Complete") and j, "Complete")
    assert done.status.succeeded == 1 and not done.status.failed and done.status.completion_time
    (pod,) = kube.pods("job-name=hello")
    assert pod.status.phase == "Succeeded" and pod.spec.node_name == "p-0"
    assert pod.status.container_statuses[0].state.terminated.exit_code == 0
    assert pod.metadata.owner_references[0].kind == "Job" and pod.metadata.owner_references[0].controller
    log = kube.core.read_namespaced_pod_log(pod.metadata.name, NS)
    assert "hello from awan" in log.splitlines() and "[mock-kubelet] env WHO=awan" in log
    assert log.splitlines()[-1] == "[mock-kubelet] container main exited with code 0"
    assert kube.core.read_namespaced_pod_log(pod.metadata.name, NS, container="main", tail_lines=1) == \
        "[mock-kubelet] container main exited with code 0\n"
    reasons = {e.reason for e in kube.core.list_namespaced_event(NS).items}
    assert {"Scheduled", "Started", "SuccessfulCreate", "Completed"} <= reasons


def test_an_indexed_job_runs_four_pods_pinned_to_one_pool(kube):
    kube.pool("train", 4)
    kube.pool("other", 4)
    kube.batch.create_namespaced_job(NS, job(
        "gang", pool="train", completions=4, parallelism=4, indexed=True, gpus=8,
        command="echo rank=$JOB_COMPLETION_INDEX; sleep 0.3", env={"WORLD_SIZE": "4"}))
    wait(lambda: condition(kube.batch.read_namespaced_job("gang", NS), "Complete"), "Complete")
    j = kube.batch.read_namespaced_job("gang", NS)
    assert j.status.succeeded == 4 and j.status.completed_indexes == "0-3"
    pods = kube.pods("job-name=gang")
    assert len(pods) == 4
    nodes = {p.spec.node_name for p in pods}
    assert nodes == {"train-0", "train-1", "train-2", "train-3"}       # one 8-GPU pod per 8-GPU node
    for p in pods:
        idx = p.metadata.annotations["batch.kubernetes.io/job-completion-index"]
        assert p.metadata.labels["batch.kubernetes.io/job-completion-index"] == idx
        assert p.spec.hostname == f"gang-{idx}"
        log = kube.core.read_namespaced_pod_log(p.metadata.name, NS)
        assert f"rank={idx}" in log.splitlines() and f"[mock-kubelet] env JOB_COMPLETION_INDEX={idx}" in log
        assert "[mock-kubelet] env WORLD_SIZE=4" in log


def test_an_unfit_pod_stays_pending_with_the_schedulers_reason(kube):
    kube.pool("p", 2, taints=[{"key": "dedicated", "value": "research", "effect": "NoSchedule"}])
    tol = [{"key": "dedicated", "operator": "Equal", "value": "research", "effect": "NoSchedule"}]
    cases = {
        "too-many-gpus": ({"containers": [container(gpus=16)], "tolerations": tol}, "Insufficient nvidia.com/gpu"),
        "no-toleration": ({"containers": [container(gpus=8)]}, "untolerated taint {dedicated=research}"),
        "wrong-pool": ({"containers": [container()], "tolerations": tol, "nodeSelector": {POOL_LABEL: "nope"}},
                       "didn't match Pod's node affinity/selector"),
        "affinity-not-in": ({"containers": [container()], "tolerations": tol, "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["US-WEST-01A"]}]}]}}}},
            "didn't match Pod's node affinity/selector"),
    }
    for name, (spec, _) in cases.items():
        kube.core.create_namespaced_pod(NS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                             "spec": {"restartPolicy": "Never", **spec}})
    fits = {"containers": [container(gpus=8)], "tolerations": tol, "restartPolicy": "Never",
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": POOL_LABEL, "operator": "In", "values": ["p"]}]}]}}}}
    kube.core.create_namespaced_pod(NS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fits"},
                                         "spec": fits})
    wait(lambda: kube.core.read_namespaced_pod("fits", NS).status.phase == "Succeeded", "the fitting pod ran")
    for name, (_, reason) in cases.items():
        p = kube.core.read_namespaced_pod(name, NS)
        assert p.status.phase == "Pending" and not p.spec.node_name, name
        cond = next(c for c in p.status.conditions if c.type == "PodScheduled")
        assert cond.status == "False" and cond.reason == "Unschedulable" and reason in cond.message, (name, cond)
        assert cond.message.startswith("0/2 nodes are available")
    failed = [e for e in kube.core.list_namespaced_event(NS, field_selector="metadata.namespace=default").items
              if e.reason == "FailedScheduling"]
    assert {e.involved_object.name for e in failed} == set(cases)


def test_a_pending_pod_binds_when_a_fitting_node_appears(kube):
    kube.core.create_namespaced_pod(NS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "waits"}, "spec": {
        "restartPolicy": "Never", "nodeSelector": {POOL_LABEL: "late"}, "containers": [container(gpus=8)]}})
    p = kube.core.read_namespaced_pod("waits", NS)
    assert p.status.phase == "Pending" and "0/0 nodes are available" in p.status.conditions[0].message
    kube.pool("late", 1)
    wait(lambda: kube.core.read_namespaced_pod("waits", NS).spec.node_name == "late-0", "binding")


def test_preempting_the_node_fails_the_pod_and_the_job_replaces_it(kube):
    kube.pool("spot", 1, compute_class="spot")
    kube.batch.create_namespaced_job(NS, job("long", pool="spot", backoff=1, gpus=8,
                                             annotations={"mock.awan.dev/duration-seconds": "inf"}))
    wait(lambda: [p for p in kube.pods("job-name=long") if p.status.phase == "Running"], "Running")
    assert kube.control("/_mock/preempt", {"instanceType": H100}) == {"nodes": ["spot-0"]}
    first = wait(lambda: [p for p in kube.pods("job-name=long") if p.status.phase == "Failed"], "NodeLost")[0]
    assert first.status.reason == "NodeLost" and "spot-0" in first.status.message
    dt = next(c for c in first.status.conditions if c.type == "DisruptionTarget")
    assert dt.status == "True" and dt.reason == "DeletionByPodGC"
    assert first.status.container_statuses[0].state.terminated.exit_code == 137
    # The Job counts the failure and makes a replacement, which waits for a node.
    j = wait(lambda: (j := kube.batch.read_namespaced_job("long", NS)).status.failed == 1 and j, "failed=1")
    assert j.status.active == 1 and not condition(j, "Failed")
    repl = [p for p in kube.pods("job-name=long") if p.metadata.uid != first.metadata.uid]
    assert len(repl) == 1 and repl[0].status.phase == "Pending" and not repl[0].spec.node_name
    # A second loss exceeds backoffLimit 1: the Job fails.
    kube.custom.patch_cluster_custom_object(G, V, "nodepools", "spot", {"spec": {"targetNodes": 1}})
    wait(lambda: kube.core.read_namespaced_pod(repl[0].metadata.name, NS).status.phase == "Running", "rerun")
    kube.control("/_mock/revoke", {"instanceType": H100})
    j = wait(lambda: condition(j := kube.batch.read_namespaced_job("long", NS), "Failed") and j, "Job Failed")
    assert condition(j, "Failed").reason == "BackoffLimitExceeded" and j.status.failed == 2


def test_pod_failure_policy_can_ignore_disruptions(kube):
    kube.pool("spot", 1, compute_class="spot")
    body = job("tolerant", pool="spot", backoff=0, gpus=8, annotations={"mock.awan.dev/duration-seconds": "inf"})
    body["spec"]["podFailurePolicy"] = {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    kube.batch.create_namespaced_job(NS, body)
    wait(lambda: [p for p in kube.pods("job-name=tolerant") if p.status.phase == "Running"], "Running")
    kube.control("/_mock/preempt", {})
    wait(lambda: len(kube.pods("job-name=tolerant")) == 2, "a replacement")
    j = kube.batch.read_namespaced_job("tolerant", NS)
    assert not j.status.failed and not condition(j, "Failed")
    kube.custom.patch_cluster_custom_object(G, V, "nodepools", "spot", {"spec": {"targetNodes": 1}})
    wait(lambda: any(p.status.phase == "Running" for p in kube.pods("job-name=tolerant")), "rerun")
    assert kube.control("/_mock/pods/finish", {"labelSelector": "job-name=tolerant", "exitCode": 42})["pods"]
    j = wait(lambda: condition(j := kube.batch.read_namespaced_job("tolerant", NS), "Failed") and j, "FailJob")
    assert condition(j, "Failed").reason == "PodFailurePolicy"


def test_exit_codes_count_against_backoff_limit(kube):
    kube.pool("p", 2)
    kube.batch.create_namespaced_job(NS, job("crash", backoff=1, command="echo boom; exit 3"))
    j = wait(lambda: condition(j := kube.batch.read_namespaced_job("crash", NS), "Failed") and j, "Failed")
    assert j.status.failed == 2 and condition(j, "Failed").reason == "BackoffLimitExceeded"
    pods = kube.pods("job-name=crash")
    assert [p.status.container_statuses[0].state.terminated.exit_code for p in pods] == [3, 3]
    assert all(p.status.container_statuses[0].state.terminated.reason == "Error" for p in pods)


def test_exit_code_by_index_fails_one_rank(kube):
    kube.pool("p", 2)
    kube.batch.create_namespaced_job(NS, job("ranks", completions=2, parallelism=2, indexed=True, backoff=0,
                                             annotations={"mock.awan.dev/exit-code-by-index": "1=7"}))
    j = wait(lambda: condition(j := kube.batch.read_namespaced_job("ranks", NS), "Failed") and j, "Failed")
    codes = {p.metadata.annotations["batch.kubernetes.io/job-completion-index"]:
             p.status.container_statuses[0].state.terminated.exit_code
             for p in kube.pods("job-name=ranks") if p.status.container_statuses[0].state.terminated}
    assert codes.get("1") == 7 and j.status.failed == 1


def test_active_deadline_fails_a_job_that_runs_too_long(kube):
    kube.pool("p", 1)
    body = job("slow", annotations={"mock.awan.dev/duration-seconds": "inf"})
    body["spec"]["activeDeadlineSeconds"] = 1
    kube.batch.create_namespaced_job(NS, body)
    j = wait(lambda: condition(j := kube.batch.read_namespaced_job("slow", NS), "Failed") and j, "deadline")
    assert condition(j, "Failed").reason == "DeadlineExceeded"
    wait(lambda: not kube.pods("job-name=slow"), "active pods removed")


def test_the_finish_control_ends_a_running_job(kube):
    kube.pool("p", 1)
    kube.batch.create_namespaced_job(NS, job("held", annotations={"mock.awan.dev/duration-seconds": "inf"}))
    wait(lambda: [p for p in kube.pods("job-name=held") if p.status.phase == "Running"], "Running")
    assert not condition(kube.batch.read_namespaced_job("held", NS), "Complete")
    assert len(kube.control("/_mock/pods/finish", {"namespace": NS, "labelSelector": "job-name=held"})["pods"]) == 1
    wait(lambda: condition(kube.batch.read_namespaced_job("held", NS), "Complete"), "Complete")


def test_env_from_a_missing_secret_waits_then_runs(kube):
    kube.pool("p", 1)
    c = container(command="echo token=$TOKEN")
    c["env"] = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]
    kube.core.create_namespaced_pod(NS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "needs-secret"},
                                         "spec": {"restartPolicy": "Never", "containers": [c]}})
    p = wait(lambda: (p := kube.core.read_namespaced_pod("needs-secret", NS)).status.container_statuses and p,
             "container status")
    assert p.status.phase == "Pending"
    assert p.status.container_statuses[0].state.waiting.reason == "CreateContainerConfigError"
    with pytest.raises(ApiException) as e:
        kube.core.read_namespaced_pod_log("needs-secret", NS)
    assert e.value.status == 400 and "waiting to start: CreateContainerConfigError" in e.value.body
    kube.core.create_namespaced_secret(NS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                                            "stringData": {"token": "s3cret"}})
    wait(lambda: kube.core.read_namespaced_pod("needs-secret", NS).status.phase == "Succeeded", "Succeeded")
    assert "token=s3cret" in kube.core.read_namespaced_pod_log("needs-secret", NS).splitlines()


# -- Deployments and Services ------------------------------------------------------------------------
def deployment(name: str, replicas: int, **ann: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}, "annotations": dict(ann)},
                                  "spec": {"containers": [container(gpus=1, ports=[{"containerPort": 8000}])]}}}}


def test_a_deployment_becomes_ready_and_replaces_pods_on_a_lost_node(kube):
    kube.pool("serve", 3)
    kube.apps.create_namespaced_deployment(NS, deployment("llm", 2))
    d = wait(lambda: (d := kube.apps.read_namespaced_deployment("llm", NS)).status.ready_replicas == 2 and d, "ready")
    assert d.status.available_replicas == 2 and d.status.updated_replicas == 2 and d.status.observed_generation == 1
    assert condition(d, "Available").reason == "MinimumReplicasAvailable"
    (rs,) = kube.apps.list_namespaced_replica_set(NS, label_selector="app=llm").items
    assert rs.metadata.owner_references[0].kind == "Deployment" and rs.status.ready_replicas == 2
    pods = kube.pods("app=llm")
    assert all(p.metadata.owner_references[0].name == rs.metadata.name for p in pods)
    assert all(p.status.phase == "Running" and p.status.pod_ip for p in pods)
    svc = kube.core.create_namespaced_service(NS, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "llm"},
                                                   "spec": {"selector": {"app": "llm"}, "ports": [{"port": 80,
                                                                                                  "targetPort": 8000}]}})
    assert svc.spec.cluster_ip and svc.spec.ports[0].protocol == "TCP"
    # Deleting the node of one replica: that pod is lost and a new one comes up elsewhere.
    lost = pods[0].spec.node_name
    kube.core.delete_node(lost)
    wait(lambda: (r := kube.pods("app=llm")) and len(r) == 2 and all(p.spec.node_name != lost for p in r)
         and all(p.status.phase == "Running" for p in r), "replacement")
    kube.apps.patch_namespaced_deployment("llm", NS, {"spec": {"replicas": 1}})
    wait(lambda: len(kube.pods("app=llm")) == 1, "scaled down")
    wait(lambda: kube.apps.read_namespaced_deployment("llm", NS).status.replicas == 1, "status follows")


def test_a_readiness_delay_keeps_a_replica_unready_until_it_passes(kube):
    kube.pool("serve", 1)
    kube.apps.create_namespaced_deployment(NS, deployment("warm", 1, **{"mock.awan.dev/ready-seconds": "0.5"}))
    p = wait(lambda: [p for p in kube.pods("app=warm") if p.status.phase == "Running"], "Running")[0]
    ready = next(c for c in p.status.conditions if c.type == "Ready")
    assert ready.status == "False"     # read right after start: the 0.5 s delay has not passed
    wait(lambda: kube.apps.read_namespaced_deployment("warm", NS).status.ready_replicas == 1, "ready later")


# -- API semantics -----------------------------------------------------------------------------------
def test_status_objects_list_kinds_and_delete_propagation(kube, mock_coreweave):
    kube.pool("p", 1)
    body = job("twice", annotations={"mock.awan.dev/duration-seconds": "inf"})
    kube.batch.create_namespaced_job(NS, body)
    with pytest.raises(ApiException) as e:
        kube.batch.create_namespaced_job(NS, body)
    assert e.value.status == 409 and json.loads(e.value.body)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as e:
        kube.batch.read_namespaced_job("absent", NS)
    st = json.loads(e.value.body)
    assert (e.value.status, st["kind"], st["reason"], st["details"]["kind"]) == (404, "Status", "NotFound", "jobs")
    req = urllib.request.Request(mock_coreweave.urls["coreweave"] + "/apis/batch/v1/namespaces/default/jobs",
                                 headers={"Authorization": f"Bearer {MOCK_SECRETS['coreweave']['token']}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        doc = json.loads(r.read())
    assert doc["kind"] == "JobList" and doc["apiVersion"] == "batch/v1" and int(doc["metadata"]["resourceVersion"]) > 0
    j = doc["items"][0]
    assert j["kind"] == "Job" and j["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"] == \
        j["metadata"]["uid"]
    # As on a real apiserver, a Job deleted without a propagation policy orphans its pods...
    wait(lambda: kube.pods("job-name=twice"), "a pod")
    kube.batch.delete_namespaced_job("twice", NS)
    (orphan,) = kube.pods("job-name=twice")
    assert not orphan.metadata.owner_references
    kube.core.delete_namespaced_pod(orphan.metadata.name, NS)
    # ...and with Background its pods go with it.
    kube.batch.create_namespaced_job(NS, body)
    wait(lambda: kube.pods("job-name=twice"), "a pod")
    kube.batch.delete_namespaced_job("twice", NS, propagation_policy="Background")
    assert not kube.pods("job-name=twice")


def test_invalid_workloads_are_422_naming_the_field(kube):
    bad = job("bad")
    del bad["spec"]["template"]["spec"]["containers"][0]["image"]
    with pytest.raises(ApiException) as e:
        kube.batch.create_namespaced_job(NS, bad)
    st = json.loads(e.value.body)
    assert e.value.status == 422 and st["details"]["causes"][0]["field"] == "spec.template.spec.containers[0].image"
    always = job("always")
    always["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(ApiException) as e:
        kube.batch.create_namespaced_job(NS, always)
    assert e.value.status == 422 and "spec.template.spec.restartPolicy" in e.value.body
    d = deployment("mismatch", 1)
    d["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    with pytest.raises(ApiException) as e:
        kube.apps.create_namespaced_deployment(NS, d)
    assert e.value.status == 422 and "spec.template.metadata.labels" in e.value.body
    assert not kube.batch.list_namespaced_job(NS).items and not kube.apps.list_namespaced_deployment(NS).items


def test_bad_mock_annotations_fail_the_pod_with_a_message(kube):
    kube.pool("p", 1)
    kube.batch.create_namespaced_job(NS, job("typo", annotations={"mock.awan.dev/duration-seconds": "soon"}))
    p = wait(lambda: [p for p in kube.pods("job-name=typo") if p.status.phase == "Failed"], "Failed")[0]
    assert p.status.reason == "MockProgramError" and "mock.awan.dev/duration-seconds" in p.status.message
