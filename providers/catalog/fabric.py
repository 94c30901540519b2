"""Which pools are training gangs, and which instance types can carry one: one rule read by placement
(so it never chooses what provisioning will refuse) and by the provisioning components (which refuse it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from providers.catalog.model import InstanceType

Placement = Literal["cluster", "nvlink", "none"]
# Providers whose gang pools need a given scale-out fabric: Azure places a training gang in a scale set
# of InfiniBand (ND 'r') sizes only; NC sizes talk over Ethernet and cannot form one.
_GANG_FABRIC = {"azure": "infiniband"}


# EFA devices (network cards) per AWS instance type: one EFA interface per card (the EC2 instance type
# docs, "network cards"). Not a column of instance_types.csv: only AWS has them, and only its launch
# template reads them.
EFA_DEVICES: dict[str, int] = {
    "p4d.24xlarge": 4, "p4de.24xlarge": 4, "p5.48xlarge": 32, "p5e.48xlarge": 32, "p5en.48xlarge": 16,
    "p6-b200.48xlarge": 8, "p6-b300.48xlarge": 16, "p6e-gb200.36xlarge": 17, "p5.4xlarge": 1,
}


def efa_devices(instance_type: str) -> int:
    """EFA interfaces an AWS node of ``instance_type`` gets (0: none, a plain ENA interface)."""
    return EFA_DEVICES.get(instance_type, 0)


@dataclass(frozen=True, slots=True)
class GpuDirect:
    """GCP's GPU-to-GPU networking of a machine type: extra NICs, each on its own VPC (GKE: additional node
    networks). ``tcpx`` (A3 High: GPUDirect-TCPX), ``tcpxo`` (A3 Mega: TCPXO), ``rdma`` (A3 Ultra, A4, A4X:
    GPUDirect RDMA over RoCE, on VPCs of the zone's RoCE network profile)."""

    kind: Literal["tcpx", "tcpxo", "rdma"]
    nics: int            # NICs beyond the primary one that carry GPU traffic

    @property
    def gke_strategy(self) -> str:
        """GKE node_config.gpudirect_strategy ("" where GKE sets none: TCPX/TCPXO are set up by their plugin)."""
        return "RDMA" if self.kind == "rdma" else ""


# Google Cloud "GPU machine types" / "Maximize GPU network bandwidth" pages: NICs per machine type.
GPUDIRECT: dict[str, GpuDirect] = {
    "a3-highgpu-8g": GpuDirect("tcpx", 4), "a3-megagpu-8g": GpuDirect("tcpxo", 8),
    "a3-ultragpu-8g": GpuDirect("rdma", 8), "a4-highgpu-8g": GpuDirect("rdma", 8),
    "a4x-highgpu-4g": GpuDirect("rdma", 4),
}


def gpudirect(machine_type: str) -> GpuDirect | None:
    """The GPUDirect fabric of a GCP machine type, or None (no GPU-to-GPU NICs: a single gVNIC)."""
    return GPUDIRECT.get(machine_type)


def is_nvlink_rack(it: InstanceType) -> bool:
    """Whether ``it``'s NVLink domain spans nodes (NVL72 racks: GB200, GB300), read from the catalog row."""
    return it.nodes_per_domain > 1


def ultraserver_type(it: InstanceType) -> str:
    """The unit in which ``it``'s NVLink domain is sold (AWS UltraServers, e.g. u-p6e-gb200x72), or ""."""
    return it.ultraserver if is_nvlink_rack(it) else ""


def pool_placement(kind: str, topology: str, nvlink_rack: bool, nodes: int) -> Placement:
    """How a pool of ``nodes`` nodes is placed: NVL72 racks (``nvlink_rack``, see is_nvlink_rack) and
    domain nvlink as nvlink; training gangs of more than one node (and domain cluster) in one placement
    group / compact policy; else none."""
    if topology == "nvlink" or (nvlink_rack and kind == "training"):
        return "nvlink"
    if (kind == "training" and nodes > 1) or topology == "cluster":
        return "cluster"
    return "none"


def gang_fabric_refusal(it: InstanceType) -> str | None:
    """Why nodes of ``it`` cannot form a gang pool (placement cluster or nvlink), or None."""
    need = _GANG_FABRIC.get(it.provider)
    if need is not None and it.fabric != need:
        return (f"{it.name} has no {'InfiniBand' if need == 'infiniband' else need} ({it.fabric}); gang pools "
                f"on {it.provider} need it")
    return None
