"""Rendering: a gang is one Indexed Job with a headless Service, ranks and the master address in env,
pinned to its pools, requesting the node's GPUs; inference a Deployment + Service per replica group;
batch a Job per cluster. Names are deterministic and carry the incarnation."""

from __future__ import annotations

from controlplane.dispatch.render import GANG_GATE, GPU, L_INCARNATION, L_WORKLOAD, Slot, base_name, render
from controlplane.model import parse_manifests
from providers.nodelabels import POOL as LABEL_POOL
from providers.nodelabels import WORKLOAD as LABEL_WORKLOAD

GANG = """metadata: {name: gang, team: research}
spec:
  kind: training
  gpus: {model: H100, count: 32, perNode: 8}
  template: {image: 'ghcr.io/x/t:1', command: [torchrun], env: [{name: A, value: b}], shmSize: 16Gi}
  run: {checkpoint: {uri: 's3://b/ck', env: CKPT}, activeDeadlineSeconds: 600}
"""
SERVE = """metadata: {name: serve, team: product}
spec:
  kind: inference
  replicas: 2
  gpus: {model: H100, count: 8, perNode: 8}
  template: {image: vllm, ports: [{containerPort: 8000}]}
  run: {servicePort: 80, readinessProbe: {httpGet: {path: /health, port: 8000}}}
"""
NS = {("aws", "us-east-1"): "jobs", ("gcp", "us-central1"): "default"}


def env(obj: dict) -> dict:
    c = obj["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def test_a_gang_is_an_indexed_job_with_a_headless_service():
    [w] = parse_manifests(GANG)
    slots = [Slot("aws", "us-east-1", "gang-abc-0", 4, 8)]
    plan = render(w, "research_gang", 2, slots, NS)
    [unit] = plan.units
    svc, job = unit.objects
    assert (svc["kind"], job["kind"]) == ("Service", "Job") and svc["spec"]["clusterIP"] == "None"
    name = base_name("gang", "research_gang", 2)
    assert job["metadata"]["name"] == name and name.endswith("-r2") and job["metadata"]["namespace"] == "jobs"
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimit"]) == ("Indexed", 4, 4, 0)
    assert spec["activeDeadlineSeconds"] == 600
    pod = spec["template"]["spec"]
    assert pod["nodeSelector"] == {LABEL_POOL: "gang-abc-0"} and pod["subdomain"] == name
    assert pod["containers"][0]["resources"]["limits"] == {GPU: "8"}
    assert any(t["key"] == GPU for t in pod["tolerations"])
    assert pod["volumes"][0]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    e = env(job)
    assert (e["WORLD_SIZE"], e["NPROC_PER_NODE"], e["CKPT"], e["A"]) == ("4", "8", "s3://b/ck", "b")
    assert e["MASTER_ADDR"] == f"{name}-0.{name}.jobs.svc" and "fieldRef" in e["RANK"]
    labels = job["metadata"]["labels"]
    assert (labels[L_WORKLOAD], labels[L_INCARNATION]) == ("research_gang", "2")
    assert job["spec"]["template"]["metadata"]["labels"] == labels


def test_a_gang_over_two_pools_is_pinned_by_its_workload_label_and_one_over_two_clusters_cannot_run():
    [w] = parse_manifests(GANG)
    two = [Slot("aws", "us-east-1", "p-0", 2, 8), Slot("aws", "us-east-1", "p-1", 2, 8)]
    job = render(w, "research_gang", 0, two, NS).units[0].objects[1]
    assert job["spec"]["template"]["spec"]["nodeSelector"] == {LABEL_WORKLOAD: "research_gang"}
    # and to its pools only: an old pool's nodes (before a failover) carry the same workload label
    terms = job["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": LABEL_POOL, "operator": "In", "values": ["p-0", "p-1"]}]}]
    assert job["spec"]["completions"] == 4
    apart = [Slot("aws", "us-east-1", "p-0", 2, 8), Slot("gcp", "us-central1", "p-1", 2, 8)]
    plan = render(w, "research_gang", 0, apart, NS)
    assert not plan.units and "one cluster" in plan.error


def test_a_gang_is_created_suspended_and_over_nvlink_its_pods_gated():
    [w] = parse_manifests(GANG)
    job = render(w, "research_gang", 0, [Slot("aws", "us-east-1", "p-0", 4, 8)], NS).units[0].objects[1]
    assert job["spec"]["suspend"] is True and "schedulingGates" not in job["spec"]["template"]["spec"]
    [nv] = parse_manifests(GANG.replace("perNode: 8}", "perNode: 4}\n  topology: {domain: nvlink, domainSize: 16}"))
    job = render(nv, "research_gang", 0, [Slot("aws", "us-east-1", "p-0", 8, 4)], NS).units[0].objects[1]
    assert job["spec"]["template"]["spec"]["schedulingGates"] == [{"name": GANG_GATE}]
    [batch] = parse_manifests(GANG.replace("kind: training", "kind: batch"))
    job = render(batch, "research_gang", 0, [Slot("aws", "us-east-1", "p-0", 4, 8)], NS).units[0].objects[0]
    assert job["spec"]["suspend"] is False        # a sweep's jobs are independent: nothing to hold


def test_inference_is_a_deployment_and_service_per_replica_group():
    [w] = parse_manifests(SERVE)
    slots = [Slot("aws", "us-east-1", "s-0", 1, 8, 0), Slot("gcp", "us-central1", "s-1", 1, 8, 1)]
    plan = render(w, "product_serve", 0, slots, NS)
    assert [u.cluster for u in plan.units] == [("aws", "us-east-1"), ("gcp", "us-central1")]
    for u in plan.units:
        svc, dep = u.objects
        assert svc["spec"]["ports"] == [{"name": "serve", "port": 80, "targetPort": 8000}]
        assert dep["spec"]["replicas"] == 1 and dep["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
        probe = dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
        assert probe["httpGet"] == {"path": "/health", "port": 8000}
    assert len({u.objects[1]["metadata"]["name"] for u in plan.units}) == 2


def test_names_are_deterministic_and_a_reservation_renders_nothing():
    [w] = parse_manifests(GANG)
    slots = [Slot("aws", "us-east-1", "p", 4, 8)]
    assert render(w, "k", 0, slots, NS) == render(w, "k", 0, slots, NS)
    assert render(w, "k", 0, slots, NS).names != render(w, "k", 1, slots, NS).names
    [hold] = parse_manifests("metadata: {name: h}\nspec: {gpus: {model: H100, count: 8}}\n")
    assert "capacity reservation" in render(hold, "k", 0, slots, NS).error
    long = base_name("x" * 63, "t_" + "x" * 61, 1234)
    assert len(long) + len("-9999") <= 63
