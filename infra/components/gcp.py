"""GCP: the network, the stack's GKE cluster, A3/A4 GPU node pools (GKE node pools with a compact
placement policy and GPUDirect NICs), and TPU slices.

GPU nodes are GKE node pools, not GCE instances joined by hand: GKE has no self-managed nodes. The node
pool is what the local engine applies (as its nodes, through the adapter). TPU slices stay TPU VMs /
queued resources outside the cluster (docs/clusters.md says what is left).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_gcp as gcp

from infra.components.kube import gpu_taints, node_labels
from infra.components.tags import labels
from infra.spec import NodePoolSpec
from providers.catalog.fabric import GpuDirect, gpudirect

# catalog GPU model -> GCE accelerator type, for machine types that need guest accelerators.
ACCELERATOR_TYPES = {"H100": "nvidia-h100-80gb", "H200": "nvidia-h200-141gb", "B200": "nvidia-b200",
                     "A100": "nvidia-tesla-a100", "L4": "nvidia-l4"}


def tpu_accelerator_type(instance_type: str) -> str:
    """Catalog ``tpu-v5p-8`` -> TPU API ``v5p-8``."""
    return instance_type.removeprefix("tpu-")


@dataclass
class GcpNetworkArgs:
    project: str
    region: str
    stack: str
    cidr: str = "10.10.0.0/16"
    pod_cidr: str = "10.64.0.0/14"
    service_cidr: str = "10.68.0.0/20"
    # GPUDirect NICs the stack's pools need beyond the primary (max over pools), and whether they are RDMA:
    gpu_nics: int = 0
    rdma_zone: str = ""       # the zone whose RoCE network profile the RDMA VPCs use ("" for TCPX/TCPXO)


class GcpNetwork(pulumi.ComponentResource):
    """The primary VPC (pods and services as secondary ranges, for a VPC-native GKE cluster) and one VPC
    + subnet per GPUDirect NIC: GCE wants every NIC of an instance on a different VPC."""

    def __init__(self, name: str, args: GcpNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awan:gcp:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.network = gcp.compute.Network(f"{name}-net", project=args.project, auto_create_subnetworks=False,
                                           mtu=8896, opts=child)   # jumbo frames for GPUDirect
        self.subnetwork = gcp.compute.Subnetwork(
            f"{name}-{args.region}", project=args.project, region=args.region, network=self.network.id,
            ip_cidr_range=args.cidr, private_ip_google_access=True,
            secondary_ip_ranges=[{"range_name": POD_RANGE, "ip_cidr_range": args.pod_cidr},
                                 {"range_name": SERVICE_RANGE, "ip_cidr_range": args.service_cidr}], opts=child)
        self.gpu_networks: list[tuple[gcp.compute.Network, gcp.compute.Subnetwork]] = []
        for i in range(args.gpu_nics):
            kw: dict[str, Any] = {}
            if args.rdma_zone:      # RDMA NICs live on a VPC of the zone's RoCE network profile
                kw["network_profile"] = (f"projects/{args.project}/global/networkProfiles/"
                                         f"{args.rdma_zone}-vpc-roce")
            net = gcp.compute.Network(f"{name}-gpu{i}", project=args.project, auto_create_subnetworks=False,
                                      mtu=8896, opts=child, **kw)
            sub = gcp.compute.Subnetwork(f"{name}-gpu{i}-{args.region}", project=args.project, region=args.region,
                                         network=net.id, ip_cidr_range=f"192.168.{i}.0/24", opts=child)
            self.gpu_networks.append((net, sub))
        self.register_outputs({"network": self.network.id, "subnetwork": self.subnetwork.id})


POD_RANGE, SERVICE_RANGE = "pods", "services"


@dataclass
class GkeClusterArgs:
    project: str
    region: str
    stack: str
    cluster_name: str
    network: pulumi.Input[str]
    subnetwork: pulumi.Input[str]
    master_cidr: str = "172.16.0.0/28"
    release_channel: str = "REGULAR"


class GkeCluster(pulumi.ComponentResource):
    """A regional, VPC-native GKE Standard cluster with private nodes and multi-networking (the extra
    GPUDirect NICs are additional node networks). Its default node pool is removed: every node comes
    from an Awan pool (GkeGpuNodePool)."""

    def __init__(self, name: str, args: GkeClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awan:gcp:GkeCluster", name, None, opts)
        self.cluster = gcp.container.Cluster(
            f"{name}-gke", name=args.cluster_name, project=args.project, location=args.region,
            network=args.network, subnetwork=args.subnetwork, remove_default_node_pool=True,
            initial_node_count=1, deletion_protection=False, networking_mode="VPC_NATIVE",
            ip_allocation_policy={"cluster_secondary_range_name": POD_RANGE,
                                  "services_secondary_range_name": SERVICE_RANGE},
            private_cluster_config={"enable_private_nodes": True, "enable_private_endpoint": False,
                                    "master_ipv4_cidr_block": args.master_cidr},
            # Multi-networking (GPUDirect NICs) needs Dataplane V2.
            datapath_provider="ADVANCED_DATAPATH", enable_multi_networking=True,
            release_channel={"channel": args.release_channel},
            workload_identity_config={"workload_pool": f"{args.project}.svc.id.goog"},
            resource_labels=labels(args.stack), opts=pulumi.ResourceOptions(parent=self))
        ca = self.cluster.master_auth.apply(lambda m: (m.cluster_ca_certificate if m is not None else None) or "")
        self.endpoint: pulumi.Output[str] = self.cluster.endpoint.apply(lambda e: f"https://{e}" if e else "")
        self.kubeconfig: pulumi.Output[str] = pulumi.Output.all(self.cluster.name, self.endpoint, ca).apply(
            lambda a: gke_kubeconfig(a[0], a[1], a[2]))
        self.register_outputs({"cluster_id": self.cluster.id, "endpoint": self.endpoint})


def gke_kubeconfig(cluster: str, endpoint: str, ca: str) -> str:
    """A kubeconfig (JSON is YAML) authenticating through gke-gcloud-auth-plugin, as gcloud writes it."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": cluster,
        "clusters": [{"name": cluster, "cluster": {"server": endpoint or "https://pending.invalid",
                                                   "certificate-authority-data": ca}}],
        "users": [{"name": cluster, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "gke-gcloud-auth-plugin",
            "provideClusterInfo": True}}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}]})


@dataclass
class GcpGpuNodePoolArgs:
    pool: NodePoolSpec
    stack: str
    project: str
    cluster: pulumi.Input[str]                     # the GKE cluster's id
    gpu_networks: list[tuple[pulumi.Input[str], pulumi.Input[str]]] = field(default_factory=list)  # (vpc, subnet)


class GcpGpuNodePool(pulumi.ComponentResource):
    """A GKE node pool of ``nodes`` A3/A4 nodes in one zone: the accelerators with GKE's driver install,
    the pool's labels and the GPU taint, Spot or a specific reservation, and for training a COMPACT
    placement policy (a shared compact resource policy, one per gang size) plus the GPUDirect NICs."""

    def __init__(self, name: str, args: GcpGpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awan:gcp:GpuNodePool", name, None, opts)
        p, child = args.pool, pulumi.ResourceOptions(parent=self)
        self.placement_policy: gcp.compute.ResourcePolicy | None = None
        if p.training and p.nodes > 1:
            # One policy per shape (its vmCount): when the gang's size changes, a new policy is created
            # first, the nodes move to it (replaced), and the old one is deleted after them. Changing
            # the policy in place would delete it while the old nodes still use it, which GCE refuses
            # (resourceInUseByAnotherResource), failing the whole stack.
            self.placement_policy = gcp.compute.ResourcePolicy(
                f"{name}-compact-{p.nodes}", name=f"awan-{p.pool}-n{p.nodes}", project=args.project, region=p.region,
                group_placement_policy={"collocation": "COLLOCATED", "vm_count": p.nodes}, opts=child)
        kw: dict[str, Any] = {}
        if self.placement_policy is not None:
            kw["placement_policy"] = {"type": "COMPACT", "policy_name": self.placement_policy.name}
        fabric = gpudirect(p.instance_type)
        if fabric is not None and p.training and args.gpu_networks:
            nets = args.gpu_networks[:fabric.nics]
            kw["network_config"] = {
                "enable_private_nodes": True,
                "additional_node_network_configs": [{"network": n, "subnetwork": s} for n, s in nets]}
        self.node_pool = gcp.container.NodePool(
            f"{name}-np", name=p.pool, project=args.project, cluster=args.cluster, location=p.region,
            node_locations=[p.zone], node_count=p.nodes, node_config=_node_config(p, args.stack, fabric),
            management={"auto_repair": True, "auto_upgrade": False},   # a gang is not upgraded under a job
            opts=child, **kw)
        self.register_outputs({"node_pool": self.node_pool.id,
                               "placement_policy": self.placement_policy.self_link if self.placement_policy else None})


def _node_config(p: NodePoolSpec, stack: str, fabric: GpuDirect | None) -> dict[str, Any]:
    accel: dict[str, Any] = {"type": ACCELERATOR_TYPES.get(p.gpu_model, p.gpu_model.lower()),
                             "count": p.gpus_per_node,
                             "gpu_driver_installation_config": {"gpu_driver_version": "LATEST"}}
    cfg: dict[str, Any] = {
        "machine_type": p.instance_type, "image_type": "COS_CONTAINERD", "disk_size_gb": 200,
        "guest_accelerators": [accel], "gvnic": {"enabled": True},
        "labels": node_labels(p, well_known=False),            # GKE sets region/zone/instance type itself
        "resource_labels": labels(stack, p),                  # on the GCE VMs: the adapter finds them by these
        "taints": [{"key": t.key, "value": t.value, "effect": "NO_SCHEDULE"} for t in gpu_taints(p)],
        "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
        "workload_metadata_config": {"mode": "GKE_METADATA"}}
    if fabric is not None and fabric.gke_strategy and p.training:
        cfg["gpudirect_strategy"] = fabric.gke_strategy
    if p.spot:
        cfg["spot"] = True
    if p.reserved and p.reservation_id:
        cfg["reservation_affinity"] = {"consume_reservation_type": "SPECIFIC_RESERVATION",
                                       "key": "compute.googleapis.com/reservation-name",
                                       "values": [p.reservation_id]}
    return cfg


@dataclass
class GcpTpuSliceArgs:
    pool: NodePoolSpec
    stack: str
    project: str
    subnetwork: pulumi.Input[str]
    runtime_version: str = "v2-alpha-tpuv5"


class GcpTpuSlice(pulumi.ComponentResource):
    """``nodes`` TPU slices. Reserved slices go through a queued resource (how TPU reservations and
    capacity are obtained); others are TPU VMs. No external IPs."""

    def __init__(self, name: str, args: GcpTpuSliceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awan:gcp:TpuSlice", name, None, opts)
        p, child = args.pool, pulumi.ResourceOptions(parent=self)
        lbls = labels(args.stack, p)
        net: gcp.tpu.V2VmNetworkConfigArgsDict = {"subnetwork": args.subnetwork, "enable_external_ips": False}
        self.slices: list[pulumi.CustomResource] = []
        for i in range(p.nodes):
            node_id = f"{p.pool}-{i}"
            if p.reserved:
                self.slices.append(gcp.tpu.V2QueuedResource(
                    f"{name}-{i}", name=node_id, project=args.project, zone=p.zone,
                    tpu={"node_specs": [{"parent": f"projects/{args.project}/locations/{p.zone}",
                                         "node_id": node_id,
                                         "node": {"accelerator_type": tpu_accelerator_type(p.instance_type),
                                                  "runtime_version": args.runtime_version,
                                                  "network_config": net}}]},
                    opts=child))
            else:
                self.slices.append(gcp.tpu.V2Vm(
                    f"{name}-{i}", name=node_id, project=args.project, zone=p.zone,
                    accelerator_type=tpu_accelerator_type(p.instance_type),
                    runtime_version=args.runtime_version, network_config=net,
                    scheduling_config={"spot": True} if p.spot else None, labels=lbls, opts=child))
        self.register_outputs({"slice_ids": [s.id for s in self.slices]})
