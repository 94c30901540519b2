"""NodePool manifests and how to read their status: names, labels and the stock-out signal.

A NodePool is cluster-scoped (``compute.coreweave.com/v1alpha1``); its ``spec.nodeLabels`` are what put
Awan's owner/pool/workload labels on the nodes, which is how list_nodes finds what Awan owns.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from providers import nodelabels
from providers.catalog.model import CapacityType
from providers.model import LABEL_OWNER, LABEL_POOL, LABEL_WORKLOAD

GROUP, VERSION, PLURAL = "compute.coreweave.com", "v1alpha1", "nodepools"
ZONE_LABEL = "compute.coreweave.com/zone"
POOL_NODE_LABEL = "compute.coreweave.com/node-pool"
CLASS_LABEL = "compute.coreweave.com/compute-class"
TYPE_LABEL = "node.coreweave.cloud/type"
TOPO_ZONE, TOPO_REGION = "topology.kubernetes.io/zone", "topology.kubernetes.io/region"
NVLINK_LABEL = "ds.coreweave.com/nvlink.domain"
GPU_RESOURCE = "nvidia.com/gpu"
ANN_POOL, ANN_WORKLOAD = "awan.dev/pool", "awan.dev/workload"
STOCKOUT = "InsufficientCapacity"
MAX_POOL_NAME = 56          # node names are "<pool>-<n>" and the node-pool label value is capped at 63


def pool_name(pool: str) -> str:
    """A valid NodePool name for an Awan pool name: lower-case RFC 1123, with a hash suffix whenever the
    name had to change, so that two different pools never collide."""
    clean = re.sub(r"[^a-z0-9-]+", "-", pool.lower()).strip("-")
    if clean == pool and len(clean) <= MAX_POOL_NAME:
        return clean
    digest = hashlib.sha256(pool.encode()).hexdigest()[:8]
    return f"{clean[:MAX_POOL_NAME - 9].strip('-') or 'pool'}-{digest}"


def label_value(v: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", v)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", clean)


def compute_class(ct: CapacityType) -> str:
    # CoreWeave's "default" class covers reserved and on-demand instances.
    return "spot" if ct == CapacityType.SPOT else "default"


def manifest(name: str, instance_type: str, zone: str, target_nodes: int, labels: dict[str, str],
             annotations: dict[str, str] | None = None, capacity_type: CapacityType = CapacityType.ON_DEMAND,
             contract: str = "") -> dict[str, Any]:
    """``contract``: the committed-capacity contract the pool draws on (contracts.py; modelled label)."""
    node_labels = {k: label_value(v) for k, v in labels.items()}
    pool_labels = {**node_labels, ZONE_LABEL: zone}
    spec: dict[str, Any] = {"instanceType": instance_type, "targetNodes": target_nodes,
                            "computeClass": compute_class(capacity_type), "autoscaling": False,
                            "nodeLabels": node_labels, "nodeAnnotations": dict(annotations or {})}
    if contract:
        spec["reservation"] = contract
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "NodePool",
        "metadata": {"name": name, "labels": pool_labels,
                     "annotations": dict(annotations or {})},
        "spec": spec,
    }


def awan_labels(owner: str, pool: str, workload: str) -> dict[str, str]:
    # The awan.dev/ ones are what every stack's nodes carry (providers.nodelabels): dispatch pins pods by them.
    return {LABEL_OWNER: owner, LABEL_POOL: pool, LABEL_WORKLOAD: workload, nodelabels.POOL: pool,
            nodelabels.WORKLOAD: workload}


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == type_), {})


def observed(obj: dict[str, Any]) -> bool:
    """Whether the controller has seen the latest spec (no observedGeneration: trust the status)."""
    st = obj.get("status") or {}
    gen = (obj.get("metadata") or {}).get("generation")
    return bool(st) and (st.get("observedGeneration") is None or gen is None or st["observedGeneration"] >= gen)


def current_nodes(obj: dict[str, Any]) -> int:
    return int((obj.get("status") or {}).get("currentNodes") or 0)


def target_nodes(obj: dict[str, Any]) -> int:
    return int((obj.get("spec") or {}).get("targetNodes") or 0)


def stocked_out(obj: dict[str, Any]) -> bool:
    """Short of its target because CoreWeave has no capacity (how CKS shows a stock-out)."""
    at = condition(obj, "AtTarget")
    return observed(obj) and current_nodes(obj) < target_nodes(obj) and at.get("reason") == STOCKOUT
