"""What adapters report and accept: capacity, quotas, nodes, health, node requests.

Plain frozen dataclasses: they cross from the I/O edge into the pure placement core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from providers.catalog.model import CapacityType

# Tags/labels every resource Awan creates carries; adapters find what we own by them.
TAG_OWNER = "awan:owner"
TAG_POOL = "awan:pool"
TAG_WORKLOAD = "awan:workload"
TAG_STACK = "awan:stack"
# GCP labels and Kubernetes label keys cannot hold ':'; adapters translate with this.
LABEL_OWNER, LABEL_POOL, LABEL_WORKLOAD, LABEL_STACK = "awan-owner", "awan-pool", "awan-workload", "awan-stack"


@dataclass(frozen=True, slots=True)
class CapacityPool:
    """Nodes of one instance type that can be launched now in one zone, for one capacity type.

    For ``reserved``, ``reservation_id`` names the capacity reservation or capacity block it draws on.
    ``available_nodes`` is what the provider says is free right now (live), not the catalog's guess.
    """

    provider: str
    region: str
    zone: str
    instance_type: str
    capacity_type: CapacityType
    available_nodes: int
    reservation_id: str = ""
    price_per_hour: float | None = None     # overrides the catalog (capacity block price, contract price)
    starts_at: datetime | None = None       # capacity blocks that start later
    ends_at: datetime | None = None
    ultraserver_type: str = ""              # u-p6e-gb200x72 when the pool is sold as whole UltraServers
    # What a reserved pool's reservation is, as the cloud says ("capacity-block": a purchased Capacity Block,
    # launched into with market type capacity-block; "": a capacity reservation). Placement copies it into
    # the assignment, and provisioning decides from it (never from an id's prefix).
    reservation_kind: str = ""
    # False when the cloud has no API for free capacity (EC2/GCE/ARM on-demand and spot) and the figure is
    # derived from quota headroom: placement treats it as an upper bound and provisioning may still meet a
    # stock-out (then failover blocks the pool for a while).
    capacity_known: bool = True


@dataclass(frozen=True, slots=True)
class Quota:
    """One quota of one provider in one region. ``unit`` is what limit/used count."""

    provider: str
    region: str
    name: str                   # provider's own id: L-417A185B, NVIDIA_H100_GPUS, standardNDSH100v5Family
    unit: str                   # vcpus | gpus | nodes
    limit: float
    used: float
    instance_types: tuple[str, ...] = ()   # what it applies to; empty = everything in the region
    # Capacity types it meters; empty = on-demand and spot alike. The clouds meter them apart: EC2
    # L-417A185B (on-demand P) vs L-7212CCBC (spot P), GCE NVIDIA_H100_GPUS vs PREEMPTIBLE_NVIDIA_H100_GPUS,
    # Azure family cores vs lowPriorityCores. Reserved capacity is never held against these (snapshot.py).
    capacity_types: tuple[str, ...] = ()

    @property
    def headroom(self) -> float:
        return max(0.0, self.limit - self.used)


@dataclass(frozen=True, slots=True)
class CapacityReport:
    provider: str
    pools: tuple[CapacityPool, ...]
    quotas: tuple[Quota, ...]
    taken_at: datetime


class NodeState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    TERMINATED = "terminated"
    PREEMPTED = "preempted"


@dataclass(frozen=True, slots=True)
class Node:
    provider: str
    id: str                     # the cloud's id (instance id, VM name, k8s node name)
    name: str
    region: str
    zone: str
    instance_type: str
    capacity_type: CapacityType
    state: NodeState
    pool: str = ""
    workload: str = ""
    gpus: int = 0
    labels: dict[str, str] = field(default_factory=dict)


class HealthStatus(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    provider: str
    endpoint: str
    status: HealthStatus
    latency_ms: float
    regions: dict[str, HealthStatus] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True, slots=True)
class NodeRequest:
    """Create ``count`` nodes of one pool. Idempotent by ``idempotency_key``: asking twice makes them once
    (EC2 ClientToken, GCE requestId, ARM's idempotent PUT by name, Kubernetes object names)."""

    pool: str
    workload: str
    region: str
    zone: str
    instance_type: str
    capacity_type: CapacityType
    count: int
    idempotency_key: str
    reservation_id: str = ""
    placement_group: str = ""
    tags: dict[str, str] = field(default_factory=dict)
