"""The purchasing policy in force, as plain data (the documents are pydantic, at the edge)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

AUTO, APPROVE, OFF = "auto", "approve", "off"
CAPACITY_BLOCK, FUTURE_RESERVATION = "capacity-block", "future-reservation"
# What Awan buys at each provider (through which typed capability, providers/capabilities.py)
KIND_AT = {"aws": CAPACITY_BLOCK, "gcp": FUTURE_RESERVATION}


def kind_of(provider: str) -> str:
    return KIND_AT.get(provider, CAPACITY_BLOCK)


@dataclass(frozen=True, slots=True)
class Budget:
    total: float | None = None               # dollars over the policy's life
    per_period: float | None = None          # dollars per rolling ``period``
    period: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """What may be bought: an instance type of a provider (an UltraServer type resolves to its instance
    type, with ``ultraserver`` set: it is sold in whole UltraServers)."""

    provider: str
    instance_type: str
    gpu_model: str
    gpus_per_node: int
    ultraserver: str = ""
    nodes_per_ultraserver: int = 1


@dataclass(frozen=True, slots=True)
class FutureTarget:
    """A GCP machine type a future reservation may hold, where (zones empty: any zone of the regions
    whose catalog sells the type on demand)."""

    instance_type: str
    gpu_model: str
    gpus_per_node: int
    regions: tuple[str, ...]
    zones: tuple[str, ...] = ()
    provider: str = "gcp"


@dataclass(frozen=True, slots=True)
class PurchasingConfig:
    name: str
    mode: str                                # auto | approve | off (nothing is bought)
    providers: tuple[str, ...]
    regions: tuple[tuple[str, str], ...]     # (provider, region)
    targets: tuple[Target, ...]
    max_price_per_gpu_hour: float
    budget: Budget
    lead_min: timedelta
    lead_max: timedelta
    hours: int
    move_before_end: timedelta | None = None
    source: str = ""
    future: tuple[FutureTarget, ...] = ()    # GCP future reservations (futureReservations)
