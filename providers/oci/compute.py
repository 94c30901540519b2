"""OCI instances <-> Awan nodes: freeform tags, availability domain names, lifecycle states, retry tokens."""

from __future__ import annotations

import hashlib
from typing import Any

from providers.catalog import CapacityType, Catalog
from providers.model import LABEL_OWNER, LABEL_POOL, LABEL_WORKLOAD, Node, NodeRequest, NodeState

PROVIDER = "oci"
LIVE_STATES = ("PROVISIONING", "STARTING", "RUNNING", "STOPPING", "STOPPED")
_STATES = {"PROVISIONING": NodeState.PENDING, "STARTING": NodeState.PENDING, "RUNNING": NodeState.RUNNING,
           "STOPPING": NodeState.STOPPING, "STOPPED": NodeState.STOPPING, "TERMINATING": NodeState.TERMINATED,
           "TERMINATED": NodeState.TERMINATED, "CREATING_IMAGE": NodeState.RUNNING, "MOVING": NodeState.RUNNING}
RETRY_TOKEN_MAX = 64     # opc-retry-token: at most 64 characters


def zone_of(ad: str) -> str:
    """The catalog's zone for an availability domain: its name without the tenancy prefix
    (``Uocm:US-ASHBURN-AD-1`` -> ``US-ASHBURN-AD-1``)."""
    return ad.rsplit(":", 1)[-1]


def tag_key(key: str) -> str:
    """Freeform tag keys take no ':' here (the same dashed keys as GCP labels); meanings are unchanged."""
    return key.replace(":", "-")


def freeform_tags(request: NodeRequest, owner: str) -> dict[str, str]:
    tags = {tag_key(k): str(v)[:256] for k, v in request.tags.items()}
    tags.update({LABEL_OWNER: owner, LABEL_POOL: request.pool, LABEL_WORKLOAD: request.workload})
    return tags


def retry_token(key: str) -> str:
    """The idempotency key as an opc-retry-token (hashed when longer than OCI allows)."""
    return key if len(key) <= RETRY_TOKEN_MAX else hashlib.sha256(key.encode()).hexdigest()[:RETRY_TOKEN_MAX]


def gpu_limit_name(gpu_model: str) -> str:
    """The AD-scoped compute service limit counting a GPU shape's GPUs: BM.GPU.H100.8 -> gpu-h100-count."""
    return f"gpu-{gpu_model.lower()}-count"


def to_node(inst: Any, region: str, catalog: Catalog) -> Node:
    """An `oci.core.models.Instance` as a Node (labels: its freeform tags)."""
    tags = {str(k): str(v) for k, v in (inst.freeform_tags or {}).items()}
    ct = (CapacityType.SPOT if inst.preemptible_instance_config is not None else
          CapacityType.RESERVED if inst.capacity_reservation_id else CapacityType.ON_DEMAND)
    try:
        gpus = catalog.instance_type(PROVIDER, inst.shape).gpus
    except KeyError:
        gpus = 0
    return Node(provider=PROVIDER, id=inst.id, name=inst.display_name or inst.id, region=inst.region or region,
                zone=zone_of(inst.availability_domain or ""), instance_type=inst.shape, capacity_type=ct,
                state=_STATES.get(str(inst.lifecycle_state), NodeState.PENDING), pool=tags.get(LABEL_POOL, ""),
                workload=tags.get(LABEL_WORKLOAD, ""), gpus=gpus, labels=tags)
