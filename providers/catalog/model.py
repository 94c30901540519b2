"""What a cloud sells, as plain data: instance types, regions and priced offerings.

Offerings are keyed by (zone, capacity type), as in Karpenter, so that spot, on-demand and
reserved are rows of data rather than code paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CapacityType(StrEnum):
    RESERVED = "reserved"
    ON_DEMAND = "on-demand"
    SPOT = "spot"


PROVIDERS: tuple[str, ...] = ("aws", "gcp", "azure", "coreweave", "oci")

# How a family is sold, where a cloud does not sell it every way: (provider, instance type) -> the capacity
# types that may be offered. GCP sells A3 Ultra (H200) and A4 (B200) through reservations, flex-start (DWS)
# and spot only, not on-demand (cloud.google.com/compute/docs/accelerator-optimized-machines, "consumption
# options"); AWS sells P6e-GB200 UltraServers only as Capacity Blocks. Reservations and flex-start have no
# list price, so no reserved row is invented for the GCP families: plan them on spot or a reservation the
# fleet reports. load.py drops any offering these rule out (a rebuilt or hand-edited catalog included).
PURCHASE_OPTIONS: dict[tuple[str, str], frozenset[CapacityType]] = {
    ("gcp", "a3-ultragpu-8g"): frozenset({CapacityType.SPOT, CapacityType.RESERVED}),
    ("gcp", "a4-highgpu-8g"): frozenset({CapacityType.SPOT, CapacityType.RESERVED}),
    ("aws", "p6e-gb200.36xlarge"): frozenset({CapacityType.RESERVED}),
}


def sold_as(provider: str, instance_type: str, capacity_type: CapacityType) -> bool:
    allowed = PURCHASE_OPTIONS.get((provider, instance_type))
    return allowed is None or capacity_type in allowed


@dataclass(frozen=True, slots=True)
class InstanceType:
    provider: str
    name: str
    gpu_model: str            # normalised: H100, H200, B200, B300, GB200, GB300, MI300X, A100, L4, L40S, TPU-v5p, TPU-v6e
    gpus: int                 # accelerators per node (TPU: chips per slice)
    gpu_memory_gib: float     # per accelerator
    vcpus: int
    memory_gib: float
    nvlink_domain_gpus: int   # GPUs sharing one NVLink/ICI domain: 8 for HGX nodes, 72 for NVL72 racks
    fabric: str               # efa | infiniband | gpudirect-tcpxo | rdma | ici | ethernet
    fabric_gbps: int          # scale-out bandwidth per node
    ultraserver: str = ""     # e.g. u-p6e-gb200x72: the unit in which the NVLink domain is sold

    @property
    def nodes_per_domain(self) -> int:
        return max(1, self.nvlink_domain_gpus // self.gpus)


@dataclass(frozen=True, slots=True)
class Region:
    provider: str
    name: str
    geo: str          # us | ca | eu | uk | ch | apac | sa | me | af | mx
    country: str      # ISO 3166-1 alpha-2


@dataclass(frozen=True, slots=True)
class Offering:
    provider: str
    instance_type: str
    region: str
    zone: str
    capacity_type: CapacityType
    price_per_hour: float     # USD per node-hour
    source: str               # where the figure came from, with its date

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.provider, self.zone, self.instance_type, self.capacity_type.value)
