"""Issue 9 item 2 and issue 15 ("nodes you could train on"): every (provider, region) program, rendered with
the real provider packages under the mock runtime, makes a Kubernetes cluster whose GPU nodes join it with the
pool's labels and the GPU taint, exports the cluster, and gives training pools the catalog's fabric (EFA
interfaces, GPUDirect NICs, InfiniBand sizes, RDMA cluster networks)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from infra.components.kube import ULTRASERVER_TYPE
from infra.engines.mockruntime import SECRET, DesiredResource, Recording, run_program
from infra.programs import program_for
from infra.spec import StackSpec, cluster_setting, desired_stacks
from providers import nodelabels as L
from providers.catalog.fabric import efa_devices, gpudirect
from providers.catalog.model import CapacityType
from tests.infra.fakes import pool

GPU_TAINT = "nvidia.com/gpu=present:NoSchedule"


def run(stack: StackSpec) -> Recording:
    return run_program(program_for(stack), stack.name)


def of(rec: Recording, type_: str) -> list[DesiredResource]:
    return [r for r in rec.resources.values() if r.type == type_]


def one(rec: Recording, type_: str) -> DesiredResource:
    (r,) = of(rec, type_)
    return r


def kubelet_flags(text: str) -> dict[str, str]:
    """``--node-labels=a=b,c=d --register-with-taints=...`` (nodeadm flags or oke bootstrap's extra args)."""
    out = {}
    for part in text.replace('"', " ").split():
        if part.startswith("--") and "=" in part:
            k, v = part[2:].split("=", 1)
            out[k] = v
    return out


def labels_of(flag: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in flag.split(","))


# -- AWS: EKS + self-managed nodes -----------------------------------------------------------------

def _nodeadm(lt: DesiredResource) -> dict[str, Any]:
    doc = base64.b64decode(lt.inputs["userData"]).decode()
    assert "Content-Type: application/node.eks.aws" in doc
    body = doc.split("application/node.eks.aws", 1)[1].split("--//--")[0]
    cfg: dict[str, Any] = json.loads(body)
    return cfg


def test_aws_stack_is_an_eks_cluster_that_its_instances_join_with_labels_and_taint() -> None:
    p = pool("train-a", nodes=2, capacity_type=CapacityType.SPOT)
    rec = run(StackSpec("aws", "us-east-1", (p,), config={"cluster": "eks-research"}))
    cluster = one(rec, "aws:eks/cluster:Cluster")
    roles = {r.name: r for r in of(rec, "aws:iam/role:Role")}
    cluster_role = next(r for n, r in roles.items() if n.endswith("cluster-role"))
    node_role = next(r for n, r in roles.items() if n.endswith("node-role"))
    assert cluster.inputs["roleArn"] == cluster_role.logical_id
    assert "eks.amazonaws.com" in cluster_role.inputs["assumeRolePolicy"]
    assert "ec2.amazonaws.com" in node_role.inputs["assumeRolePolicy"]
    subnets = of(rec, "aws:ec2/subnet:Subnet")
    assert sorted(cluster.inputs["vpcConfig"]["subnetIds"]) == sorted(s.logical_id for s in subnets)
    assert len({s.inputs["availabilityZone"] for s in subnets}) >= 2            # EKS wants two zones
    assert cluster.inputs["vpcConfig"]["endpointPublicAccess"] is False
    assert cluster.inputs["accessConfig"]["authenticationMode"] == "API"
    assert cluster.inputs["name"] == "eks-research"
    attached = {a.inputs["policyArn"] for a in of(rec, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                if a.inputs["role"] == node_role.name}
    assert {"arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy", "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
            "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"} <= attached
    entry = one(rec, "aws:eks/accessEntry:AccessEntry")
    assert entry.inputs["type"] == "EC2_LINUX" and entry.inputs["principalArn"] == node_role.logical_id
    assert entry.inputs["clusterName"] == "eks-research"
    profile = one(rec, "aws:iam/instanceProfile:InstanceProfile")
    lt = one(rec, "aws:ec2/launchTemplate:LaunchTemplate")
    assert lt.inputs["iamInstanceProfile"] == {"arn": profile.logical_id}
    assert lt.inputs["imageId"].endswith("/amazon-linux-2023/x86_64/nvidia/recommended/image_id")
    assert lt.inputs["metadataOptions"]["httpTokens"] == "required"
    cfg = _nodeadm(lt)
    assert cfg["kind"] == "NodeConfig" and cfg["spec"]["cluster"]["name"] == "eks-research"
    assert cfg["spec"]["cluster"]["cidr"] == cluster.inputs["kubernetesNetworkConfig"]["serviceIpv4Cidr"]
    flags = kubelet_flags(" ".join(cfg["spec"]["kubelet"]["flags"]))
    labels = labels_of(flags["node-labels"])
    assert labels == {L.PROVIDER: "aws", L.REGION: "us-east-1", L.ZONE: "us-east-1a",
                      L.INSTANCE_TYPE: "p5.48xlarge", L.CAPACITY_TYPE: "spot", L.POOL: "train-a",
                      L.WORKLOAD: "wl-train-a"}
    assert flags["register-with-taints"] == GPU_TAINT
    for i in of(rec, "aws:ec2/instance:Instance"):
        assert i.inputs["tags"]["kubernetes.io/cluster/eks-research"] == "owned"
        assert i.inputs["launchTemplate"]["id"] == lt.logical_id
    assert rec.outputs["cluster"]["name"] == "eks-research"
    assert rec.outputs["kubeconfig"] == SECRET                   # exported as a secret
    from infra.components.aws import eks_kubeconfig

    kube = json.loads(eks_kubeconfig("eks-research", "https://x.eks.amazonaws.com", "Q0E=", "us-east-1"))
    assert kube["users"][0]["user"]["exec"]["args"][:4] == ["eks", "get-token", "--cluster-name", "eks-research"]
    assert kube["clusters"][0]["cluster"] == {"server": "https://x.eks.amazonaws.com",
                                              "certificate-authority-data": "Q0E="}


@pytest.mark.parametrize("instance_type", ["p5.48xlarge", "p6-b200.48xlarge", "p4d.24xlarge"])
def test_aws_training_pool_gets_the_catalogs_efa_interfaces_and_a_cluster_placement_group(instance_type: str) -> None:
    rec = run(StackSpec("aws", "us-east-1", (pool("train-a", nodes=2, instance_type=instance_type),)))
    nics = one(rec, "aws:ec2/launchTemplate:LaunchTemplate").inputs["networkInterfaces"]
    assert len(nics) == efa_devices(instance_type) > 0
    assert [n["networkCardIndex"] for n in nics] == list(range(len(nics)))
    assert all(n["interfaceType"] == "efa" for n in nics)
    assert [n["deviceIndex"] for n in nics if n["networkCardIndex"] == 0] == [0]
    assert one(rec, "aws:ec2/placementGroup:PlacementGroup").inputs["strategy"] == "cluster"
    sg = one(rec, "aws:ec2/securityGroup:SecurityGroup")
    assert all(n["securityGroups"] == [sg.logical_id] for n in nics)


def test_aws_ultraserver_pool_is_arm64_and_labelled_with_its_nvlink_domain() -> None:
    p = pool("rack-a", nodes=18, instance_type="p6e-gb200.36xlarge", gpu_model="GB200", gpus=4, placement="nvlink",
             capacity_type=CapacityType.RESERVED, reservation_id="cr-0ultra", reservation_kind="capacity-block",
             ultraserver_type="u-p6e-gb200x72")
    rec = run(StackSpec("aws", "us-east-1", (p,)))
    lt = one(rec, "aws:ec2/launchTemplate:LaunchTemplate")
    assert "/amazon-linux-2023/arm64/nvidia/" in lt.inputs["imageId"]          # Grace hosts
    assert len(lt.inputs["networkInterfaces"]) == efa_devices("p6e-gb200.36xlarge")
    labels = labels_of(kubelet_flags(" ".join(_nodeadm(lt)["spec"]["kubelet"]["flags"]))["node-labels"])
    assert labels[L.NVLINK_DOMAIN] == labels[L.ULTRASERVER] == "cr-0ultra"      # one Capacity Block, one rack
    assert labels[ULTRASERVER_TYPE] == "u-p6e-gb200x72" and labels[L.CAPACITY_TYPE] == "reserved"


def test_a_pool_spanning_nvlink_domains_leaves_the_domain_to_the_node() -> None:
    p = pool("rack-b", nodes=36, instance_type="p6e-gb200.36xlarge", gpu_model="GB200", gpus=4, placement="nvlink",
             ultraserver_type="u-p6e-gb200x72")
    lt = one(run(StackSpec("aws", "us-east-1", (p,))), "aws:ec2/launchTemplate:LaunchTemplate")
    labels = labels_of(kubelet_flags(" ".join(_nodeadm(lt)["spec"]["kubelet"]["flags"]))["node-labels"])
    assert L.NVLINK_DOMAIN not in labels and L.ULTRASERVER not in labels


# -- GCP: GKE + node pools --------------------------------------------------------------------------

GCP = dict(provider="gcp", region="us-central1", zone="us-central1-a")


def test_gcp_stack_is_a_gke_cluster_with_gpu_node_pools() -> None:
    p = pool("serve-a", instance_type="a3-highgpu-8g", nodes=2, placement="none",
             capacity_type=CapacityType.RESERVED, reservation_id="res-h100", **GCP)
    rec = run(StackSpec("gcp", "us-central1", (p,), config={"project": "awan-lab", "cluster": "gke-a"}))
    cluster = one(rec, "gcp:container/cluster:Cluster")
    net, sub = one(rec, "gcp:compute/network:Network"), one(rec, "gcp:compute/subnetwork:Subnetwork")
    assert cluster.inputs["network"] == net.logical_id and cluster.inputs["subnetwork"] == sub.logical_id
    assert cluster.inputs["removeDefaultNodePool"] is True and cluster.inputs["name"] == "gke-a"
    assert cluster.inputs["privateClusterConfig"]["enablePrivateNodes"] is True
    ranges = {r["rangeName"] for r in sub.inputs["secondaryIpRanges"]}
    assert {cluster.inputs["ipAllocationPolicy"]["clusterSecondaryRangeName"],
            cluster.inputs["ipAllocationPolicy"]["servicesSecondaryRangeName"]} == ranges
    np = one(rec, "gcp:container/nodePool:NodePool")
    assert np.inputs["cluster"] == cluster.logical_id and np.inputs["nodeCount"] == 2
    cfg = np.inputs["nodeConfig"]
    assert cfg["guestAccelerators"] == [{"type": "nvidia-h100-80gb", "count": 8,
                                         "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}]
    assert cfg["labels"] == {L.PROVIDER: "gcp", L.CAPACITY_TYPE: "reserved", L.POOL: "serve-a",
                             L.WORKLOAD: "wl-serve-a"}       # GKE sets region, zone and machine type itself
    assert cfg["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert cfg["reservationAffinity"] == {"consumeReservationType": "SPECIFIC_RESERVATION",
                                          "key": "compute.googleapis.com/reservation-name", "values": ["res-h100"]}
    assert "networkConfig" not in np.inputs or "additionalNodeNetworkConfigs" not in np.inputs["networkConfig"]
    assert rec.outputs["cluster"]["name"] == "gke-a"
    assert rec.outputs["kubeconfig"] == SECRET
    from infra.components.gcp import gke_kubeconfig

    assert json.loads(gke_kubeconfig("gke-a", "https://1.2.3.4", "Q0E="))["users"][0]["user"]["exec"]["command"] == \
        "gke-gcloud-auth-plugin"


@pytest.mark.parametrize("machine", ["a3-highgpu-8g", "a3-megagpu-8g", "a3-ultragpu-8g", "a4-highgpu-8g"])
def test_gcp_training_pool_gets_its_gpudirect_nics_each_on_its_own_vpc(machine: str) -> None:
    fabric = gpudirect(machine)
    assert fabric is not None
    rec = run(StackSpec("gcp", "us-central1", (pool("train-a", instance_type=machine, nodes=2, **GCP),),
                        config={"project": "awan-lab"}))
    np = one(rec, "gcp:container/nodePool:NodePool")
    extra = np.inputs["networkConfig"]["additionalNodeNetworkConfigs"]
    assert len(extra) == fabric.nics and len({e["network"] for e in extra}) == fabric.nics
    gpu_nets = [n for n in of(rec, "gcp:compute/network:Network") if "-gpu" in n.name]
    assert sorted(e["network"] for e in extra) == sorted(n.inputs.get("name", n.name) for n in gpu_nets)
    assert of(rec, "gcp:container/cluster:Cluster")[0].inputs["enableMultiNetworking"] is True
    if fabric.kind == "rdma":
        assert np.inputs["nodeConfig"]["gpudirectStrategy"] == "RDMA"
        assert all(n.inputs["networkProfile"].endswith("/us-central1-a-vpc-roce") for n in gpu_nets)
    else:
        assert "gpudirectStrategy" not in np.inputs["nodeConfig"]
        assert all("networkProfile" not in n.inputs for n in gpu_nets)


# -- Azure: AKS + agent pools -----------------------------------------------------------------------

def test_azure_stack_is_a_private_aks_cluster_with_gpu_agent_pools() -> None:
    p = pool("train-a", provider="azure", region="eastus", zone="eastus-1", instance_type="Standard_ND96isr_H100_v5",
             nodes=2)
    rec = run(StackSpec("azure", "eastus", (p,), config={"cluster": "aks-eu"}))
    aks = one(rec, "azure-native:containerservice:ManagedCluster")
    subnet = one(rec, "azure-native:network:Subnet")
    assert aks.inputs["resourceName"] == "aks-eu" and aks.inputs["apiServerAccessProfile"]["enablePrivateCluster"]
    assert aks.inputs["identity"] == {"type": "SystemAssigned"}
    (system,) = aks.inputs["agentPoolProfiles"]
    assert system["mode"] == "System" and system["vnetSubnetID"] == subnet.logical_id
    ap = one(rec, "azure-native:containerservice:AgentPool")
    assert ap.inputs["resourceName"] == "aks-eu" and ap.inputs["vnetSubnetID"] == subnet.logical_id
    assert ap.inputs["mode"] == "User" and ap.inputs["gpuProfile"] == {"driver": "Install"}
    assert ap.inputs["vmSize"] == "Standard_ND96isr_H100_v5"         # an InfiniBand ('r') size for a gang
    assert ap.inputs["nodeTaints"] == [GPU_TAINT]
    assert ap.inputs["nodeLabels"] == {L.PROVIDER: "azure", L.CAPACITY_TYPE: "on-demand", L.POOL: "train-a",
                                       L.WORKLOAD: "wl-train-a"}
    assert rec.outputs["cluster"]["name"] == "aks-eu"


# -- OCI: OKE + self-managed nodes ------------------------------------------------------------------

OCI = dict(provider="oci", region="us-chicago-1", zone="US-CHICAGO-AD-1", instance_type="BM.GPU.H100.8")
COMPARTMENT = "ocid1.compartment.oc1..awan"


def _oke_bootstrap(metadata: dict[str, Any]) -> dict[str, str]:
    script = base64.b64decode(metadata["user_data"]).decode()
    (line,) = [ln for ln in script.splitlines() if ln.startswith("oke bootstrap")]
    extra = json.loads(line.split("--kubelet-extra-args ", 1)[1])
    return kubelet_flags(extra)


def test_oci_stack_is_an_oke_cluster_its_hosts_and_cluster_networks_join() -> None:
    rec = run(StackSpec("oci", "us-chicago-1", (pool("train-a", nodes=2, **OCI),
                                                pool("serve-b", nodes=1, placement="none", **OCI)),
                        config={"compartment": COMPARTMENT}))
    oke = one(rec, "oci:ContainerEngine/cluster:Cluster")
    vcn, subnet = one(rec, "oci:Core/vcn:Vcn"), one(rec, "oci:Core/subnet:Subnet")
    assert oke.inputs["vcnId"] == vcn.logical_id and oke.inputs["endpointConfig"]["subnetId"] == subnet.logical_id
    assert oke.inputs["endpointConfig"]["isPublicIpEnabled"] is False
    assert oke.inputs["clusterPodNetworkOptions"] == [{"cniType": "FLANNEL_OVERLAY"}]   # self-managed nodes need it
    group = one(rec, "oci:Identity/dynamicGroup:DynamicGroup")
    assert "tag.awan-stack.value = 'awan-oci-us-chicago-1'" in group.inputs["matchingRule"]
    (stmt,) = one(rec, "oci:Identity/policy:Policy").inputs["statements"]
    assert stmt.startswith(f"Allow dynamic-group {group.inputs['name']} to {{CLUSTER_JOIN}}")
    (inst,) = of(rec, "oci:Core/instance:Instance")
    flags = _oke_bootstrap(inst.inputs["metadata"])
    assert labels_of(flags["node-labels"])[L.POOL] == "serve-b" and flags["register-with-taints"] == GPU_TAINT
    launch = one(rec, "oci:Core/instanceConfiguration:InstanceConfiguration").inputs["instanceDetails"]["launchDetails"]
    train = labels_of(_oke_bootstrap(launch["metadata"])["node-labels"])
    assert train[L.PROVIDER] == "oci" and train[L.INSTANCE_TYPE] == "BM.GPU.H100.8" and train[L.POOL] == "train-a"
    assert one(rec, "oci:Core/clusterNetwork:ClusterNetwork").inputs["instancePools"][0]["size"] == 2   # RDMA


# -- CoreWeave: CKS ---------------------------------------------------------------------------------

def test_coreweave_node_pool_carries_the_common_labels_and_the_gpu_taint() -> None:
    p = pool("train-a", provider="coreweave", region="US-EAST-04", zone="US-EAST-04A", instance_type="gd-8xh100ib-i128")
    rec = run(StackSpec("coreweave", "US-EAST-04", (p,)))
    spec = one(rec, "kubernetes:compute.coreweave.com/v1alpha1:NodePool").inputs["spec"]
    assert spec["nodeTaints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert spec["nodeLabels"][L.PROVIDER] == "coreweave" and spec["nodeLabels"][L.CAPACITY_TYPE] == "on-demand"
    assert rec.outputs["cluster"]["name"] == "awan-us-east-04"


# -- several clusters per provider kind ---------------------------------------------------------------

def test_each_region_stack_makes_the_cluster_the_configuration_names_for_it() -> None:
    settings = {"aws": {cluster_setting("us-east-*"): "eks-east", cluster_setting("*"): "eks-{region}"}}
    pools = [pool("a", region="us-east-1", zone="us-east-1a"), pool("b", region="us-west-2", zone="us-west-2a")]
    stacks = {s.region: s for s in desired_stacks(pools, config=settings)}
    assert stacks["us-east-1"].config == {"cluster": "eks-east"}
    assert stacks["us-west-2"].config == {"cluster": "eks-us-west-2"}
    names = {r: one(run(s), "aws:eks/cluster:Cluster").inputs["name"] for r, s in stacks.items()}
    assert names == {"us-east-1": "eks-east", "us-west-2": "eks-us-west-2"}


def test_the_services_stack_settings_carry_the_configured_clusters() -> None:
    from controlplane.reconcile.runtime import stack_config
    from providers.config import AwanConfig

    cfg = AwanConfig.model_validate({"clusters": [
        {"name": "eks-a", "provider": "aws", "regions": ["us-east-1"]},
        {"name": "eks-b", "provider": "aws", "regions": ["us-west-*"], "endpoint": "https://k8s/{region}"}]})
    settings = stack_config(cfg)
    stacks = {s.region: s.config["cluster"] for s in desired_stacks(
        [pool("a", region="us-east-1", zone="us-east-1a"), pool("b", region="us-west-2", zone="us-west-2a")],
        config=settings)}
    # The name dispatch uses for the region's cluster (ClusterConfig.for_region) is the one the stack makes.
    assert stacks == {"us-east-1": "eks-a", "us-west-2": "eks-b-us-west-2"}
    assert cfg.cluster_for("aws", "us-west-2") is not None
    assert cfg.cluster_for("aws", "us-west-2").name == stacks["us-west-2"]  # type: ignore[union-attr]


def test_a_secret_output_is_not_kept_in_plain_text() -> None:
    """The CKS kubeconfig carries the CoreWeave token: the recording (the local engine's state) keeps a marker."""
    import pulumi

    def program() -> None:
        pulumi.export("kubeconfig", pulumi.Output.secret("token: s3cr3t"))
        pulumi.export("plain", "visible")

    rec = run_program(program, "awan-coreweave-x")
    assert rec.outputs == {"kubeconfig": SECRET, "plain": "visible"}
    p = pool("train-a", provider="coreweave", region="US-EAST-04", zone="US-EAST-04A", instance_type="gd-8xh100ib-i128")
    assert run(StackSpec("coreweave", "US-EAST-04", (p,))).outputs["kubeconfig"] == SECRET
