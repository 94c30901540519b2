"""The Kubernetes clusters of the AWS, GCP and Azure mocks: machines created through each cloud's API
register as Nodes of their region's cluster (labels, GPU allocatable, NVLink domains), leave when the
machine is terminated or preempted, and pods run on them. Cloud side through boto3,
google-cloud-compute and ARM over HTTP; cluster side through the official kubernetes client."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1
from kubernetes import client

from mockclouds.launcher import AZURE_SUBSCRIPTION, GCP_PROJECT, MOCK_SECRETS
from providers import nodelabels as L
from tests.mockclouds.test_kubernetes_workloads import wait

AMI = "ami-12c6146b"


def control(url: str, path: str, body: dict | None = None) -> Any:
    req = urllib.request.Request(url + path, method="GET" if body is None else "POST",
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


class Cluster:
    def __init__(self, entry: dict[str, str]) -> None:
        cfg = client.Configuration()
        cfg.host = entry["server"]
        cfg.api_key = {"authorization": entry["token"]}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        self.api = client.ApiClient(cfg)
        self.core, self.batch = client.CoreV1Api(self.api), client.BatchV1Api(self.api)

    def nodes(self, selector: str = "") -> list[client.V1Node]:
        return sorted(self.core.list_node(label_selector=selector).items, key=lambda n: n.metadata.name)


def cluster_of(url: str, provider: str, region: str) -> Cluster:
    entries = control(url, "/_mock/clusters")["clusters"]
    (entry,) = [e for e in entries if e["provider"] == provider and e["region"] == region]
    assert entry["server"] == f"{url}/_k8s/{region}" and entry["name"] == f"{provider}-{region}"
    return Cluster(entry)


def gang_job(name: str, pool: str, n: int, gpus: int, seconds: str = "inf") -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": {
        "completions": n, "parallelism": n, "completionMode": "Indexed", "backoffLimit": 0,
        "template": {"metadata": {"annotations": {"mock.awan.dev/duration-seconds": seconds}}, "spec": {
            "restartPolicy": "Never", "nodeSelector": {L.POOL: pool},
            "containers": [{"name": "main", "image": "trainer:1", "command": ["sh", "-c", "echo rank=$RANK"],
                            "env": [{"name": "RANK", "valueFrom": {"fieldRef": {
                                "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}],
                            "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]}}}}


# -- AWS -----------------------------------------------------------------------------------------------
@pytest.fixture
def ec2(mock_aws):
    return boto3.client("ec2", endpoint_url=mock_aws.urls["aws"], region_name="us-east-1",
                        aws_access_key_id=MOCK_SECRETS["aws"]["access_key_id"],
                        aws_secret_access_key=MOCK_SECRETS["aws"]["secret_access_key"],
                        config=Config(retries={"mode": "standard", "total_max_attempts": 1}))


def _run(ec2: Any, pool: str, count: int, spot: bool = False) -> list[str]:
    kw: dict[str, Any] = {"InstanceMarketOptions": {"MarketType": "spot"}} if spot else {}
    out = ec2.run_instances(ImageId=AMI, InstanceType="p5.48xlarge", MinCount=count, MaxCount=count,
                            Placement={"AvailabilityZone": "us-east-1a"},
                            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                {"Key": "awan:pool", "Value": pool}, {"Key": "awan:workload", "Value": "w1"}]}],
                            **kw)
    return [i["InstanceId"] for i in out["Instances"]]


@pytest.mark.slow      # moto's first run_instances/terminate in a region take seconds on a busy machine
def test_aws_instances_join_the_region_cluster_and_run_a_gang(mock_aws, ec2):
    url = mock_aws.urls["aws"]
    k = cluster_of(url, "aws", "us-east-1")
    assert k.nodes() == []
    ids = _run(ec2, "pool-a", 2)
    nodes = wait(lambda: len(n := k.nodes()) == 2 and n, "two nodes")
    assert {n.metadata.name for n in nodes} == set(ids)
    lab = nodes[0].metadata.labels
    assert (lab[L.PROVIDER], lab[L.REGION], lab[L.ZONE], lab[L.INSTANCE_TYPE], lab[L.CAPACITY_TYPE], lab[L.POOL]) == \
        ("aws", "us-east-1", "us-east-1a", "p5.48xlarge", "on-demand", "pool-a")
    assert lab["eks.amazonaws.com/capacityType"] == "ON_DEMAND" and lab[L.WORKLOAD] == "w1"
    assert nodes[0].status.allocatable["nvidia.com/gpu"] == "8" and nodes[0].spec.provider_id.endswith(nodes[0].metadata.name)
    # Another region's cluster does not see them.
    assert cluster_of(url, "aws", "us-west-2").nodes() == []

    k.batch.create_namespaced_job("default", gang_job("gang", "pool-a", 2, 8))
    pods = wait(lambda: len(p := [x for x in k.core.list_namespaced_pod("default", label_selector="job-name=gang").items
                                  if x.status.phase == "Running"]) == 2 and p, "two Running pods")
    assert {p.spec.node_name for p in pods} == set(ids)
    logs = {k.core.read_namespaced_pod_log(p.metadata.name, "default") for p in pods}
    assert {line for text in logs for line in text.splitlines() if line.startswith("rank=")} == {"rank=0", "rank=1"}

    # Terminating one instance through EC2 takes its node away and fails its pod: the gang Job fails.
    victim = pods[0]
    ec2.terminate_instances(InstanceIds=[victim.spec.node_name])
    wait(lambda: len(k.nodes()) == 1, "the node to leave")
    lost = wait(lambda: (p := k.core.read_namespaced_pod(victim.metadata.name, "default")).status.phase == "Failed"
                and p, "NodeLost")
    assert lost.status.reason == "NodeLost"
    job = wait(lambda: (j := k.batch.read_namespaced_job("gang", "default")).status.conditions and j, "Failed")
    assert job.status.conditions[-1].type == "Failed" and job.status.conditions[-1].reason == "BackoffLimitExceeded"


def test_aws_spot_preemption_removes_the_node(mock_aws, ec2):
    url = mock_aws.urls["aws"]
    k = cluster_of(url, "aws", "us-east-1")
    (spot,) = _run(ec2, "spot-pool", 1, spot=True)
    (od,) = _run(ec2, "od-pool", 1)
    wait(lambda: len(k.nodes()) == 2, "two nodes")
    assert k.nodes(f"{L.CAPACITY_TYPE}=spot")[0].metadata.name == spot
    assert control(url, "/_mock/preempt", {"region": "us-east-1"})["nodes"] == [spot]
    assert [n.metadata.name for n in k.nodes()] == [od]       # synced as part of the preempt call


def test_reset_clears_the_clusters(mock_aws, ec2):
    url = mock_aws.urls["aws"]
    k = cluster_of(url, "aws", "us-east-1")
    k.core.create_namespaced_config_map("default", {"metadata": {"name": "x"}, "data": {"a": "b"}})
    control(url, "/_mock/reset", {})
    assert k.core.list_namespaced_config_map("default").items == []


def test_an_unknown_region_is_404(mock_aws):
    with pytest.raises(urllib.error.HTTPError) as e:
        control(mock_aws.urls["aws"], "/_k8s/mars-1/api/v1/nodes")
    assert e.value.code == 404


# -- GCP -----------------------------------------------------------------------------------------------
def test_gcp_instances_join_with_gke_style_labels(mock_gcp):
    url = mock_gcp.urls["gcp"]
    kw = {"credentials": AnonymousCredentials(), "client_options": {"api_endpoint": url}}
    instances, ops = compute_v1.InstancesClient(**kw), compute_v1.ZoneOperationsClient(**kw)
    zone = "us-central1-a"

    def insert(name: str, spot: bool) -> None:
        sched = compute_v1.Scheduling(provisioning_model="SPOT" if spot else "STANDARD",
                                      **({"instance_termination_action": "DELETE"} if spot else {}))
        inst = compute_v1.Instance(name=name, machine_type=f"zones/{zone}/machineTypes/a3-highgpu-8g",
                                   labels={"awan-pool": "g-pool"}, scheduling=sched)
        op = instances.insert(project=GCP_PROJECT, zone=zone, instance_resource=inst, retry=None)
        ops.wait(project=GCP_PROJECT, zone=zone, operation=op.name, retry=None)

    k = cluster_of(url, "gcp", "us-central1")
    insert("g-0", spot=False)
    insert("g-1", spot=True)
    nodes = wait(lambda: len(n := k.nodes()) == 2 and n, "two nodes")
    assert [n.metadata.name for n in nodes] == ["g-0", "g-1"]
    spot = nodes[1].metadata.labels
    assert (spot[L.PROVIDER], spot[L.CAPACITY_TYPE], spot[L.POOL], spot["cloud.google.com/gke-spot"],
            spot["cloud.google.com/gke-nodepool"]) == ("gcp", "spot", "g-pool", "true", "g-pool")
    assert nodes[0].status.allocatable["nvidia.com/gpu"] == "8"
    op = instances.delete(project=GCP_PROJECT, zone=zone, instance="g-0", retry=None)
    ops.wait(project=GCP_PROJECT, zone=zone, operation=op.name, retry=None)
    wait(lambda: [n.metadata.name for n in k.nodes()] == ["g-1"], "g-0 to leave")
    control(url, "/_mock/preempt", {"region": "us-central1"})
    assert k.nodes() == []


# -- Azure ---------------------------------------------------------------------------------------------
RG = f"/subscriptions/{AZURE_SUBSCRIPTION}/resourceGroups/awan/providers/Microsoft.Compute"
API = {"api-version": "2026-04-01"}


def _vm(size: str, pool: str, spot: bool = False) -> dict:
    props: dict = {"hardwareProfile": {"vmSize": size}, "osProfile": {"adminPassword": "hunter2"}}
    if spot:
        props.update(priority="Spot", evictionPolicy="Delete")
    return {"location": "eastus", "zones": ["1"], "tags": {"awan:owner": "awan", "awan:pool": pool},
            "properties": props}


def test_azure_gb200_vms_fill_nvlink_domains_and_run_a_pinned_gang(mock_azure):
    url = mock_azure.urls["azure"]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {MOCK_SECRETS['azure']['token']}"}) as arm:
        for i in range(20):
            r = arm.put(f"{RG}/virtualMachines/gb-{i:02d}", params=API,
                        json=_vm("Standard_ND128isr_NDR_GB200_v6", "nvl"))
            assert r.status_code in (200, 201), r.text
        k = cluster_of(url, "azure", "eastus")
        nodes = wait(lambda: len(n := k.nodes()) == 20 and n, "20 nodes")
        domains: dict[str, int] = {}
        for n in nodes:
            domains[n.metadata.labels[L.NVLINK_DOMAIN]] = domains.get(n.metadata.labels[L.NVLINK_DOMAIN], 0) + 1
            assert n.metadata.labels["kubernetes.azure.com/agentpool"] == "nvl"
            assert n.status.allocatable["nvidia.com/gpu"] == "4" and n.metadata.labels["kubernetes.io/arch"] == "arm64"
        assert sorted(domains.values()) == [2, 18]                 # 18 nodes (72 GPUs) per NVL72 domain
        full = next(d for d, c in domains.items() if c == 18)
        job = gang_job("nvl72", "nvl", 18, 4, seconds="0.2")
        job["spec"]["template"]["spec"]["nodeSelector"][L.NVLINK_DOMAIN] = full
        k.batch.create_namespaced_job("default", job)
        wait(lambda: (k.batch.read_namespaced_job("nvl72", "default").status.succeeded or 0) == 18, "18 succeeded")
        pods = k.core.list_namespaced_pod("default", label_selector="job-name=nvl72").items
        by_node = {p.spec.node_name for p in pods}
        assert len(by_node) == 18 and all(
            n.metadata.labels[L.NVLINK_DOMAIN] == full for n in nodes if n.metadata.name in by_node)
        arm.put(f"{RG}/virtualMachines/spot-0", params=API, json=_vm("Standard_ND96isr_H100_v5", "s", spot=True))
        wait(lambda: len(k.nodes(f"{L.CAPACITY_TYPE}=spot")) == 1, "the spot node")
        control(url, "/_mock/preempt", {"region": "eastus"})
        assert k.nodes(f"{L.CAPACITY_TYPE}=spot") == [] and len(k.nodes()) == 20


def test_the_finish_control_ends_pods_of_a_regional_cluster(mock_gcp):
    url = mock_gcp.urls["gcp"]
    k = cluster_of(url, "gcp", "us-central1")
    k.core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "manual-0"},
                        "status": {"allocatable": {"cpu": "8", "pods": "10"},
                                   "conditions": [{"type": "Ready", "status": "True"}]}})
    k.core.create_namespaced_pod("default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "held",
                                                                                         "labels": {"a": "b"}},
                                             "spec": {"restartPolicy": "Never", "nodeName": "manual-0",
                                                      "containers": [{"name": "c", "image": "x",
                                                                      "command": ["sleep", "infinity"]}]}})
    wait(lambda: k.core.read_namespaced_pod("held", "default").status.phase == "Running", "Running")
    with pytest.raises(urllib.error.HTTPError) as e:
        control(url, "/_mock/pods/finish", {"labelSelector": "a=b"})
    assert e.value.code == 400                       # which region's cluster is required
    assert control(url, "/_mock/pods/finish", {"region": "us-central1", "labelSelector": "a=b", "exitCode": 2}) == \
        {"pods": ["held"]}
    p = k.core.read_namespaced_pod("held", "default")
    assert p.status.phase == "Failed" and p.status.container_statuses[0].state.terminated.exit_code == 2
