"""What every GPU node of a stack tells its Kubernetes cluster, whatever the provider: the labels dispatch
pins pods by (providers/nodelabels.py) and the taint that keeps non-GPU pods off GPU nodes.

Managed pools (GKE node pools, AKS agent pools, CKS NodePools) get the well-known topology and
instance-type labels from the cloud itself and refuse them in a pool's label set, so ``node_labels``
leaves them out there (``well_known=False``); self-managed nodes (EKS, OKE) register them through the
kubelet, which the NodeRestriction admission plugin allows for exactly these keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.components.tags import label_value
from infra.spec import NodePoolSpec
from providers import nodelabels
from providers.catalog import default_catalog

GPU_TAINT_VALUE = "present"
TPU_TAINT = "google.com/tpu"
ULTRASERVER_TYPE = "awan.dev/ultraserver-type"   # the unit the NVLink domain is sold in (u-p6e-gb200x72)


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str = "NoSchedule"

    def flag(self) -> str:
        """The kubelet's ``--register-with-taints`` / AKS ``nodeTaints`` form: key=value:Effect."""
        return f"{self.key}={self.value}:{self.effect}"


def is_tpu(p: NodePoolSpec) -> bool:
    return p.instance_type.startswith("tpu-")


def nvlink_domain(p: NodePoolSpec) -> str:
    """The NVLink domain every node of ``p`` shares, when it is known before the nodes boot: an nvlink pool
    that fits in one domain (placement put it in one rack / UltraServer), named after the reservation it
    draws on (a Capacity Block of one UltraServer) or else the pool. "" when the pool spans domains or is not
    nvlink: then the node's own fabric (NVIDIA GPU Feature Discovery's ``nvidia.com/gpu.clique``) says."""
    if p.placement != "nvlink":
        return ""
    it = default_catalog().find_instance_type(p.provider, p.instance_type)
    per_domain = it.nodes_per_domain if it is not None else 1
    if per_domain > 1 and p.nodes > per_domain:
        return ""
    return label_value(p.reservation_id or p.pool)


def node_labels(p: NodePoolSpec, *, well_known: bool = True) -> dict[str, str]:
    """Kubernetes labels for ``p``'s nodes (values made label-safe)."""
    out = {nodelabels.PROVIDER: p.provider, nodelabels.CAPACITY_TYPE: p.capacity_type.value,
           nodelabels.POOL: label_value(p.pool), nodelabels.WORKLOAD: label_value(p.workload)}
    if well_known:
        out.update({nodelabels.REGION: p.region, nodelabels.ZONE: p.zone, nodelabels.INSTANCE_TYPE: p.instance_type})
    if p.ultraserver_type:
        out[ULTRASERVER_TYPE] = label_value(p.ultraserver_type)
    domain = nvlink_domain(p)
    if domain:
        out[nodelabels.NVLINK_DOMAIN] = domain
        if p.ultraserver_type:
            out[nodelabels.ULTRASERVER] = domain
    return out


def gpu_taints(p: NodePoolSpec) -> list[Taint]:
    """GPU nodes are tainted so only pods that ask for accelerators (dispatch tolerates the key) land there."""
    if is_tpu(p):
        return [Taint(TPU_TAINT, GPU_TAINT_VALUE)]
    if p.gpus_per_node > 0:
        return [Taint(nodelabels.GPU_RESOURCE, GPU_TAINT_VALUE)]
    return []


def label_flag(labels: dict[str, str]) -> str:
    """The kubelet's ``--node-labels`` value."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
