"""What the fake ARM knows about Azure GPU VM sizes, derived from the catalog: quota family per size,
the resource-SKU capabilities ARM reports, zone names and default quota limits.

Our catalog names Azure zones ``<region>-1``; ARM itself calls that zone ``"1"``. Both spellings meet here.
"""

from __future__ import annotations

from dataclasses import dataclass

from mockclouds.capacity import default_seed
from providers.catalog import Catalog, InstanceType

# ARM's quota family per VM size (the `family` of a resource SKU and the name of its usage row).
FAMILIES: dict[str, str] = {
    "Standard_ND96isr_H100_v5": "standardNDSH100v5Family",
    "Standard_ND96isr_H200_v5": "standardNDSH200V5Family",
    "Standard_ND128isr_NDR_GB200_v6": "standardNDGB200v6Family",
    "Standard_ND96isr_MI300X_v5": "standardNDAMSv5Family",
    "Standard_NC40ads_H100_v5": "standardNCadsH100v5Family",
    "Standard_NC80adis_H100_v5": "standardNCadsH100v5Family",
    "Standard_ND96amsr_A100_v4": "standardNDAMSv4_A100Family",
    "Standard_NC24ads_A100_v4": "standardNCADSA100v4Family",
    "Standard_NC48ads_A100_v4": "standardNCADSA100v4Family",
    "Standard_NC96ads_A100_v4": "standardNCADSA100v4Family",
}
TOTAL_CORES = "cores"                 # "Total Regional vCPUs": every on-demand VM counts here too
SPOT_CORES = "lowPriorityCores"       # "Total Regional Low-priority vCPUs": every Spot VM, whatever its family
DEFAULT_TOTAL_CORES = 100_000
DEFAULT_SPOT_CORES = 4_096


def family_of(size: str) -> str:
    """The quota family of a size; sizes we do not list get ARM's naming pattern."""
    return FAMILIES.get(size) or "standard" + size.removeprefix("Standard_").replace("_", "") + "Family"


def family_label(family: str) -> str:
    if family == TOTAL_CORES:
        return "Total Regional vCPUs"
    if family == SPOT_CORES:
        return "Total Regional Low-priority vCPUs"
    return f"Standard {family.removeprefix('standard').removesuffix('Family')} Family vCPUs"


def azure_zone(catalog_zone: str) -> str:
    """``eastus-1`` -> ``"1"``."""
    return catalog_zone.rsplit("-", 1)[-1]


def catalog_zone(region: str, zone: str | None) -> str:
    """ARM zone ``"1"`` (or none: a regional VM, which lands in the region's first zone) -> ``eastus-1``."""
    return f"{region}-{zone or '1'}"


@dataclass(frozen=True, slots=True)
class SkuFacts:
    """One VM size as ARM's resource-SKU API describes it."""

    name: str
    family: str
    vcpus: int
    memory_gb: float
    gpus: int
    rdma: bool
    arm64: bool

    @property
    def tier(self) -> str:
        return "Standard"

    @property
    def size(self) -> str:
        return self.name.removeprefix("Standard_")

    def capabilities(self, spot_capable: bool) -> list[dict[str, str]]:
        caps = {
            "vCPUs": str(self.vcpus),
            "vCPUsAvailable": str(self.vcpus),
            "MemoryGB": f"{self.memory_gb:g}",
            "GPUs": str(self.gpus),
            "RdmaEnabled": str(self.rdma),
            "InfiniBand": str(self.rdma),
            "AcceleratedNetworkingEnabled": "True",
            "LowPriorityCapable": str(spot_capable),
            "HyperVGenerations": "V2",
            "CpuArchitectureType": "Arm64" if self.arm64 else "x64",
        }
        return [{"name": k, "value": v} for k, v in caps.items()]


def facts(it: InstanceType) -> SkuFacts:
    # GB200 nodes pair Grace (Arm) CPUs with the GPUs; the rest are x86 hosts.
    return SkuFacts(it.name, family_of(it.name), it.vcpus, it.memory_gib, it.gpus,
                    rdma=it.fabric == "infiniband", arm64=it.gpu_model.startswith("GB"))


def default_quota_limits(catalog: Catalog) -> dict[str, float]:
    """vCPU limit per family in every region: room for one zone's seeded pool of its largest size, so
    either quota or physical capacity can be the thing that runs out, depending on the test."""
    limits: dict[str, float] = {TOTAL_CORES: DEFAULT_TOTAL_CORES, SPOT_CORES: DEFAULT_SPOT_CORES}
    for (prov, _), it in catalog.instance_types.items():
        if prov != "azure":
            continue
        fam = family_of(it.name)
        limits[fam] = max(limits.get(fam, 0.0), float(it.vcpus * default_seed(it)))
    return limits
