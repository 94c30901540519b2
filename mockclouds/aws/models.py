"""What the AWS mock holds beyond moto: placement groups, capacity reservations, capacity blocks and
their offerings, the instances it launched (to give capacity back), and EC2 quotas.

Plain dataclasses; rendering to EC2 XML lives in ``render.py``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

# EC2 quota codes (Service Quotas, ServiceCode "ec2") the mock enforces, counted in vCPUs per region.
QUOTA_ON_DEMAND_P = "L-417A185B"
QUOTA_SPOT_P = "L-7212CCBC"
QUOTA_NAMES = {QUOTA_ON_DEMAND_P: "Running On-Demand P instances",
               QUOTA_SPOT_P: "All P Spot Instance Requests"}
DEFAULT_QUOTA_VCPUS = 6144.0

# Types AWS sells as Capacity Blocks for ML besides those the catalog lists as reserved.
CAPACITY_BLOCK_TYPES = frozenset({"p5.48xlarge", "p5e.48xlarge", "p5en.48xlarge", "p6-b200.48xlarge"})


def new_id(prefix: str) -> str:
    """An EC2-style id: prefix and 17 hex digits."""
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def quota_code(instance_type: str, market: str) -> str | None:
    """The vCPU quota an instance counts against, or None when the mock does not meter its family."""
    if not instance_type.startswith("p"):
        return None
    return QUOTA_SPOT_P if market == "spot" else QUOTA_ON_DEMAND_P


class Ec2Error(Exception):
    """An EC2 error answer: rendered as the ``<Response><Errors>`` document with this HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


@dataclass
class PlacementGroup:
    name: str
    group_id: str
    region: str
    strategy: str
    partition_count: int = 0
    state: str = "available"
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class CapacityReservation:
    id: str
    region: str
    zone: str
    zone_id: str
    instance_type: str
    platform: str
    total: int
    available: int
    start: datetime
    end: datetime | None
    created: datetime
    state: str = "active"                    # active | scheduled | cancelled | expired
    match_criteria: str = "open"
    tenancy: str = "default"
    reservation_type: str = "default"        # default | capacity-block
    capacity_block_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class CapacityBlock:
    id: str
    region: str
    zone: str
    zone_id: str
    ultraserver_type: str
    reservation_ids: list[str]
    start: datetime
    end: datetime
    created: datetime
    state: str = "active"
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BlockOffering:
    id: str
    region: str
    zone: str
    instance_type: str
    instance_count: int
    start: datetime
    end: datetime
    hours: int
    upfront_fee: float
    ultraserver_type: str = ""
    ultraserver_count: int = 0


@dataclass(frozen=True)
class Launched:
    """One instance the mock let through RunInstances: where its capacity came from."""

    instance_id: str
    region: str
    zone: str
    instance_type: str
    market: str                  # on-demand | spot
    reservation_id: str          # "" when drawn from the free pool
    vcpus: int


@dataclass(frozen=True)
class LaunchPlan:
    """What RunInstances may launch, decided (and capacity taken) before moto runs it."""

    region: str
    zone: str
    instance_type: str
    count: int
    market: str
    reservation_id: str
    metered: bool                # False for types outside the catalog: moto alone decides
