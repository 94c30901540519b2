"""Which pools are training gangs, and which instance types can carry one: one rule read by placement
(so it never chooses what provisioning will refuse) and by the provisioning components (which refuse it).
"""

from __future__ import annotations

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
