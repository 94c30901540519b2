"""Export OUR catalog (providers/catalog/data) as a SkyPilot v8 catalog, so both optimizers price the same
offers in the same run.

Layout: ``<runtime>/.sky/catalogs/v8/{aws,gcp,azure}/vms.csv`` and ``common/accelerators.csv``. No
``.meta/*.md5`` files are written: SkyPilot then treats the files as user-edited and never re-downloads
them, which is what keeps it offline. What is left out, and why:
- CoreWeave: SkyPilot has no CoreWeave catalog (it reaches CoreWeave only through Kubernetes).
- reserved offerings (AWS P6e-GB200 capacity blocks): SkyPilot's catalog has no reserved capacity.
- GCP TPUs: SkyPilot models TPU slices apart from GPU accelerators; the comparison asks for GPUs only.
Prices are exported exactly: GCP's GPU row carries the whole node price and the host VM row 0, since
SkyPilot prices a GCP GPU VM as host VM + accelerators.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from providers.catalog import CapacityType, Catalog, InstanceType

SKY_PROVIDERS = ("aws", "gcp", "azure")
# SkyPilot calls a3-megagpu-8g's GPUs "H100-MEGA" (its own accelerator name): keep that, or SkyPilot would
# not find the type at all. A request for "H100" therefore sees fewer GCP types on SkyPilot's side.
_GCP_ACCELERATOR_NAME = {"a3-megagpu-8g": "H100-MEGA"}


def _gpu_info(it: InstanceType, name: str) -> str:
    mib = int(it.gpu_memory_gib * 1024)
    return (f"{{'Gpus': [{{'Name': '{name}', 'Manufacturer': 'NVIDIA', 'Count': {it.gpus}, "
            f"'MemoryInfo': {{'SizeInMiB': {mib}}}}}], 'TotalGpuMemoryInMiB': {mib * it.gpus}}}")


def _prices(catalog: Catalog, provider: str, by_region: bool) -> dict[tuple[str, str, str], dict[str, float]]:
    """(instance type, region, zone or '') -> {capacity type: price per node-hour}, reserved left out."""
    out: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
    for o in catalog.for_provider(provider):
        if o.capacity_type == CapacityType.RESERVED:
            continue
        it = catalog.instance_type(provider, o.instance_type)
        if it.gpu_model.startswith("TPU"):
            continue
        key = (o.instance_type, o.region, "" if by_region else o.zone)
        prev = out[key].get(o.capacity_type.value)
        # Azure's catalog is per region: keep the cheapest zone's figure (what a zone-blind optimizer pays).
        out[key][o.capacity_type.value] = o.price_per_hour if prev is None else min(prev, o.price_per_hour)
    return out


def _fmt(price: float | None) -> str:
    return "" if price is None else f"{price:.6f}"


def _write(path: Path, header: list[str], rows: list[list[object]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return len(rows)


def export_sky_catalog(catalog: Catalog, runtime_dir: Path) -> dict[str, int]:
    """Write the v8 catalog under ``runtime_dir`` (used as SKY_RUNTIME_DIR). Returns rows per file."""
    root = runtime_dir / ".sky" / "catalogs" / "v8"
    counts: dict[str, int] = {}
    accelerators: dict[str, set[str]] = defaultdict(set)

    rows: list[list[object]] = []
    for (itype, region, zone), p in sorted(_prices(catalog, "aws", by_region=False).items()):
        it = catalog.instance_type("aws", itype)
        if "on-demand" not in p:        # SkyPilot needs an on-demand price on every row
            continue
        rows.append([itype, it.gpu_model, float(it.gpus), float(it.vcpus), it.memory_gib,
                     _gpu_info(it, it.gpu_model), _fmt(p["on-demand"]), _fmt(p.get("spot")), region, zone,
                     "arm64" if it.gpu_model.startswith("GB") else "x86_64"])
        accelerators[it.gpu_model].add("AWS")
    counts["aws/vms.csv"] = _write(root / "aws" / "vms.csv", [
        "InstanceType", "AcceleratorName", "AcceleratorCount", "vCPUs", "MemoryGiB", "GpuInfo", "Price",
        "SpotPrice", "Region", "AvailabilityZone", "Arch"], rows)

    rows = []
    for (itype, region, zone), p in sorted(_prices(catalog, "gcp", by_region=False).items()):
        it = catalog.instance_type("gcp", itype)
        if "on-demand" not in p:
            continue
        name = _GCP_ACCELERATOR_NAME.get(itype, it.gpu_model)
        spot = p.get("spot")
        # Host VM row (price 0) + accelerator row (the whole node price): SkyPilot adds the two.
        rows.append([itype, float(it.vcpus), it.memory_gib, "", "", "", region, zone, _fmt(0.0),
                     _fmt(0.0 if spot is not None else None)])
        rows.append(["", "", "", name, it.gpus, f"{{'Gpus': [{{'MemoryInfo': {{'SizeInMiB': "
                     f"{int(it.gpu_memory_gib * 1024)}}}}}]}}", region, zone, _fmt(p["on-demand"]), _fmt(spot)])
        accelerators[name].add("GCP")
    counts["gcp/vms.csv"] = _write(root / "gcp" / "vms.csv", [
        "InstanceType", "vCPUs", "MemoryGiB", "AcceleratorName", "AcceleratorCount", "GpuInfo", "Region",
        "AvailabilityZone", "Price", "SpotPrice"], rows)

    rows = []
    for (itype, region, _), p in sorted(_prices(catalog, "azure", by_region=True).items()):
        it = catalog.instance_type("azure", itype)
        if "on-demand" not in p:
            continue
        rows.append([itype, it.gpu_model, it.gpus, float(it.vcpus), it.memory_gib, it.gpu_model,
                     _fmt(p["on-demand"]), _fmt(p.get("spot")), region, "V2"])
        accelerators[it.gpu_model].add("Azure")
    counts["azure/vms.csv"] = _write(root / "azure" / "vms.csv", [
        "InstanceType", "AcceleratorName", "AcceleratorCount", "vCPUs", "MemoryGiB", "GpuInfo", "Price",
        "SpotPrice", "Region", "Generation"], rows)

    counts["common/accelerators.csv"] = _write(
        root / "common" / "accelerators.csv", ["AcceleratorName", "Clouds"],
        [[name, str(sorted(clouds))] for name, clouds in sorted(accelerators.items())])
    return counts
