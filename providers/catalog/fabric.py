"""Which pools are training gangs, and which instance types can carry one: one rule read by placement
(so it never chooses what provisioning will refuse) and by the provisioning components (which refuse it).
"""

from __future__ import annotations

from typing import Literal

from providers.catalog.model import InstanceType

Placement = Literal["cluster", "nvlink", "none"]
_NVLINK_RACKS = ("GB200", "GB300")
# Providers whose gang pools need a given scale-out fabric: Azure places a training gang in a scale set
# of InfiniBand (ND 'r') sizes only; NC sizes talk over Ethernet and cannot form one.
_GANG_FABRIC = {"azure": "infiniband"}


def pool_placement(kind: str, topology: str, gpu_model: str, nodes: int) -> Placement:
    """How a pool of ``nodes`` nodes is placed: NVL72 racks (and domain nvlink) as nvlink; training gangs
    of more than one node (and domain cluster) in one placement group / compact policy; else none."""
    if topology == "nvlink" or (gpu_model in _NVLINK_RACKS and kind == "training"):
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
