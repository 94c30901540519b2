"""GCP: the network, A3/A4 GPU node pools with a compact placement policy, and TPU slices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp

from infra.components.tags import labels
from infra.spec import NodePoolSpec

DEFAULT_IMAGE = "projects/deeplearning-platform-release/global/images/family/common-cu124-debian-11"
# Machine families whose GPUs come with the machine type; others (N1) need guest accelerators.
_BUILT_IN_GPU_FAMILIES = ("a2-", "a3-", "a4-", "g2-")
# catalog GPU model -> GCE accelerator type, for machine types that need guest accelerators.
ACCELERATOR_TYPES = {"H100": "nvidia-h100-80gb", "H200": "nvidia-h200-141gb", "B200": "nvidia-b200",
                     "A100": "nvidia-tesla-a100", "L4": "nvidia-l4"}


def needs_guest_accelerators(machine_type: str) -> bool:
    return not machine_type.startswith(_BUILT_IN_GPU_FAMILIES)


def tpu_accelerator_type(instance_type: str) -> str:
    """Catalog ``tpu-v5p-8`` -> TPU API ``v5p-8``."""
    return instance_type.removeprefix("tpu-")


@dataclass
class GcpNetworkArgs:
    project: str
    region: str
    stack: str
    cidr: str = "10.10.0.0/16"


class GcpNetwork(pulumi.ComponentResource):
    def __init__(self, name: str, args: GcpNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awan:gcp:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.network = gcp.compute.Network(f"{name}-net", project=args.project, auto_create_subnetworks=False,
                                           mtu=8896, opts=child)   # jumbo frames for GPUDirect
        self.subnetwork = gcp.compute.Subnetwork(
            f"{name}-{args.region}", project=args.project, region=args.region, network=self.network.id,
            ip_cidr_range=args.cidr, private_ip_google_access=True, opts=child)
        self.register_outputs({"network": self.network.id, "subnetwork": self.subnetwork.id})


@dataclass
class GcpGpuNodePoolArgs:
    pool: NodePoolSpec
    stack: str
    project: str
    subnetwork: pulumi.Input[str]
    image: str = DEFAULT_IMAGE


def _scheduling(p: NodePoolSpec) -> gcp.compute.InstanceSchedulingArgsDict:
    # GPU VMs cannot live-migrate: TERMINATE on host maintenance, always.
    if p.spot:
        return {"provisioning_model": "SPOT", "preemptible": True, "automatic_restart": False,
                "on_host_maintenance": "TERMINATE", "instance_termination_action": "DELETE"}
    return {"provisioning_model": "STANDARD", "on_host_maintenance": "TERMINATE", "automatic_restart": True}


class GcpGpuNodePool(pulumi.ComponentResource):
    """``nodes`` A3/A4 instances in one zone; training pools share a compact (COLLOCATED) placement
    policy. No external IP (no access config on the interface)."""

    def __init__(self, name: str, args: GcpGpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awan:gcp:GpuNodePool", name, None, opts)
        p, child = args.pool, pulumi.ResourceOptions(parent=self)
        lbls = labels(args.stack, p)
        self.placement_policy: gcp.compute.ResourcePolicy | None = None
        if p.training and p.nodes > 1:
            # One policy per shape (its vmCount): when the gang's size changes, a new policy is created
            # first, the instances move to it (replaced), and the old one is deleted after them. Changing
            # the policy in place would delete it while the old instances still use it, which GCE refuses
            # (resourceInUseByAnotherResource), failing the whole stack.
            self.placement_policy = gcp.compute.ResourcePolicy(
                f"{name}-compact-{p.nodes}", name=f"awan-{p.pool}-n{p.nodes}", project=args.project, region=p.region,
                group_placement_policy={"collocation": "COLLOCATED", "vm_count": p.nodes}, opts=child)
        self.instances = [self._instance(f"{name}-{i}", f"{p.pool}-{i}", p, args, lbls, child)
                          for i in range(p.nodes)]
        self.register_outputs({"instance_ids": [i.id for i in self.instances],
                               "placement_policy": self.placement_policy.self_link if self.placement_policy else None})

    def _instance(self, rname: str, vm_name: str, p: NodePoolSpec, args: GcpGpuNodePoolArgs,
                  lbls: dict[str, str], child: pulumi.ResourceOptions) -> gcp.compute.Instance:
        kw: dict[str, Any] = {}    # optional Instance arguments, only set when they apply
        if needs_guest_accelerators(p.instance_type):
            kw["guest_accelerators"] = [{"type": ACCELERATOR_TYPES.get(p.gpu_model, p.gpu_model.lower()),
                                         "count": p.gpus_per_node}]
        if self.placement_policy is not None:
            kw["resource_policies"] = self.placement_policy.self_link   # one policy: a string here
        if p.reserved and p.reservation_id:
            kw["reservation_affinity"] = {"type": "SPECIFIC_RESERVATION", "specific_reservation": {
                "key": "compute.googleapis.com/reservation-name", "values": [p.reservation_id]}}
        return gcp.compute.Instance(
            rname, name=vm_name, project=args.project, zone=p.zone, machine_type=p.instance_type,
            boot_disk={"initialize_params": {"image": args.image, "size": 200}},
            network_interfaces=[{"subnetwork": args.subnetwork}],     # no access_configs: no external IP
            scheduling=_scheduling(p), labels=lbls, opts=child, **kw)


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
