"""Rebuild ``providers/catalog/data`` from public offering data.

    python -m providers.catalog.build SOURCE_DIR

SOURCE_DIR holds ``normalized_all.csv`` (one row per public offer: cloud, instance_type,
accelerator, accelerator_count, gpu_mem_gib, vcpus, memory_gib, region, zone, price_hr,
spot_price_hr, note), gathered from the clouds' public list prices in 2026. Offers that data
lacks (CoreWeave, Oracle OCI, AWS P6e-GB200 UltraServers, Azure ND GB200 v6) are added from the figures
in ``EXTRA_OFFERS`` below, each with its source. Only the generated files are read at run time.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

from providers.catalog.model import CapacityType, sold_as

OUT = Path(__file__).with_name("data")

SOURCES = {
    "public-2026": "clouds' public list prices (on-demand, spot), gathered 2026; normalized_all.csv",
    "cw-pricing-2026": "coreweave.com/pricing, read 2026-09-20 (GB200 NVL72 $42.00/h per 4-GPU node, "
                      "HGX B200 $68.80 spot $34.11, HGX H100 $49.24 spot $19.71, HGX H200 $50.44)",
    "cw-estimate-2026": "estimate: CoreWeave publishes no GB300 NVL72 list price; GB200 price x 1.25",
    "aws-gb200-estimate-2026": "estimate: AWS sells P6e-GB200 only as UltraServer Capacity Blocks with "
                               "dynamic prices; CoreWeave GB200 node price x 1.3",
    "azure-gb200-estimate-2026": "estimate: no public ND GB200 v6 list price; CoreWeave GB200 price x 1.35",
    "oci-pricing-2026": "oracle.com/cloud/price-list (Compute - GPU), read 2026: BM.GPU.H100.8 and BM.GPU.H200.8 "
                        "$10.00, BM.GPU.B200.8 $14.00, BM.GPU.GB200.4 $16.00 per GPU-hour; a compute capacity "
                        "reservation is billed at the shape's on-demand rate",
    "gcp-a3-per-gpu-2026": "GCP prices A3 High per GPU: a3-highgpu-2g = 2 x a3-highgpu-1g in the same zone "
                           "(cloud.google.com/compute/gpus-pricing, 2026)",
    "a100-list-2026": "list prices read 2026 (GCP A2 gpus-pricing us-central1/europe-west4, Azure NC A100 v4 "
                      "eastus/westeurope, AWS p4de.24xlarge us-east-1/us-west-2); spot = 30% of list (estimate)",
}

# (provider, instance type) -> gpu model, gpus, gpu GiB, vcpus, RAM GiB, NVLink domain GPUs, fabric, Gbps, ultraserver
INSTANCE_TYPES: dict[tuple[str, str], tuple[str, int, float, int, float, int, str, int, str]] = {
    ("aws", "p5.48xlarge"): ("H100", 8, 80, 192, 2048, 8, "efa", 3200, ""),
    ("aws", "p5.4xlarge"): ("H100", 1, 80, 16, 256, 1, "efa", 100, ""),
    ("aws", "p5e.48xlarge"): ("H200", 8, 141, 192, 2048, 8, "efa", 3200, ""),
    ("aws", "p5en.48xlarge"): ("H200", 8, 141, 192, 2048, 8, "efa", 3200, ""),
    ("aws", "p6-b200.48xlarge"): ("B200", 8, 179, 192, 2048, 8, "efa", 3200, ""),
    ("aws", "p6-b300.48xlarge"): ("B300", 8, 268, 192, 4096, 8, "efa", 6400, ""),
    ("aws", "p6e-gb200.36xlarge"): ("GB200", 4, 185, 144, 960, 72, "efa", 1600, "u-p6e-gb200x72"),
    ("aws", "p4d.24xlarge"): ("A100", 8, 40, 96, 1152, 8, "efa", 400, ""),
    ("aws", "p4de.24xlarge"): ("A100", 8, 80, 96, 1152, 8, "efa", 400, ""),
    ("gcp", "a3-highgpu-8g"): ("H100", 8, 80, 208, 1872, 8, "gpudirect-tcpx", 800, ""),
    ("gcp", "a3-highgpu-4g"): ("H100", 4, 80, 104, 936, 4, "ethernet", 100, ""),
    ("gcp", "a3-highgpu-2g"): ("H100", 2, 80, 52, 468, 2, "ethernet", 50, ""),
    ("gcp", "a3-highgpu-1g"): ("H100", 1, 80, 26, 234, 1, "ethernet", 50, ""),
    ("gcp", "a2-highgpu-1g"): ("A100", 1, 40, 12, 85, 1, "ethernet", 24, ""),
    ("gcp", "a2-highgpu-2g"): ("A100", 2, 40, 24, 170, 2, "ethernet", 32, ""),
    ("gcp", "a2-highgpu-4g"): ("A100", 4, 40, 48, 340, 4, "ethernet", 50, ""),
    ("gcp", "a2-highgpu-8g"): ("A100", 8, 40, 96, 680, 8, "ethernet", 100, ""),
    ("gcp", "a2-ultragpu-1g"): ("A100", 1, 80, 12, 170, 1, "ethernet", 24, ""),
    ("gcp", "a2-ultragpu-2g"): ("A100", 2, 80, 24, 340, 2, "ethernet", 32, ""),
    ("gcp", "a2-ultragpu-4g"): ("A100", 4, 80, 48, 680, 4, "ethernet", 50, ""),
    ("gcp", "a2-ultragpu-8g"): ("A100", 8, 80, 96, 1360, 8, "ethernet", 100, ""),
    ("gcp", "a3-megagpu-8g"): ("H100", 8, 80, 208, 1872, 8, "gpudirect-tcpxo", 1800, ""),
    ("gcp", "a3-ultragpu-8g"): ("H200", 8, 141, 224, 2952, 8, "rdma", 3200, ""),
    ("gcp", "a4-highgpu-8g"): ("B200", 8, 180, 224, 3968, 8, "rdma", 3200, ""),
    ("gcp", "g2-standard-4"): ("L4", 1, 24, 4, 16, 1, "ethernet", 10, ""),
    ("gcp", "g2-standard-48"): ("L4", 4, 24, 48, 192, 4, "ethernet", 50, ""),
    ("azure", "Standard_ND96isr_H100_v5"): ("H100", 8, 80, 96, 1900, 8, "infiniband", 3200, ""),
    ("azure", "Standard_ND96isr_H200_v5"): ("H200", 8, 141, 96, 1850, 8, "infiniband", 3200, ""),
    ("azure", "Standard_ND96isr_MI300X_v5"): ("MI300X", 8, 192, 96, 1850, 8, "infiniband", 3200, ""),
    ("azure", "Standard_ND128isr_NDR_GB200_v6"): ("GB200", 4, 186, 128, 900, 72, "infiniband", 1600, ""),
    ("azure", "Standard_ND96amsr_A100_v4"): ("A100", 8, 80, 96, 1900, 8, "infiniband", 1600, ""),
    ("azure", "Standard_NC24ads_A100_v4"): ("A100", 1, 80, 24, 220, 1, "ethernet", 20, ""),
    ("azure", "Standard_NC48ads_A100_v4"): ("A100", 2, 80, 48, 440, 2, "ethernet", 40, ""),
    ("azure", "Standard_NC96ads_A100_v4"): ("A100", 4, 80, 96, 880, 4, "ethernet", 80, ""),
    ("azure", "Standard_NC40ads_H100_v5"): ("H100", 1, 94, 40, 320, 1, "ethernet", 40, ""),
    ("azure", "Standard_NC80adis_H100_v5"): ("H100", 2, 94, 80, 640, 2, "ethernet", 80, ""),
    ("coreweave", "gd-8xh100ib-i128"): ("H100", 8, 80, 128, 2048, 8, "infiniband", 3200, ""),
    ("coreweave", "gd-8xh200ib-i128"): ("H200", 8, 141, 128, 2048, 8, "infiniband", 3200, ""),
    ("coreweave", "b200-8x"): ("B200", 8, 180, 128, 2048, 8, "infiniband", 3200, ""),
    ("coreweave", "gb200-4x"): ("GB200", 4, 186, 144, 960, 72, "infiniband", 1600, ""),
    ("coreweave", "gb300-4x"): ("GB300", 4, 279, 144, 960, 72, "infiniband", 3200, ""),
    # OCI bare metal: vCPUs are 2 per OCPU on x86 (1 per Grace core); fabric is the RDMA cluster network.
    ("oci", "BM.GPU.H100.8"): ("H100", 8, 80, 224, 2048, 8, "rdma", 3200, ""),
    ("oci", "BM.GPU.H200.8"): ("H200", 8, 141, 224, 3072, 8, "rdma", 3200, ""),
    ("oci", "BM.GPU.B200.8"): ("B200", 8, 180, 256, 4096, 8, "rdma", 3200, ""),
    ("oci", "BM.GPU.GB200.4"): ("GB200", 4, 186, 144, 960, 72, "rdma", 1600, ""),
}

TPU_SLICES = {"tpu-v5p": (8, 16, 32, 64, 128, 256, 512), "tpu-v6e": (1, 4, 8, 16, 64, 256)}

# provider, instance type, region, zone, on-demand $/h, spot $/h (or None), reserved $/h (or None), source
EXTRA_OFFERS: list[tuple[str, str, str, str, float | None, float | None, float | None, str]] = []
_CW = {
    "gd-8xh100ib-i128": (49.24, 19.71, "cw-pricing-2026"),
    "gd-8xh200ib-i128": (50.44, None, "cw-pricing-2026"),
    "b200-8x": (68.80, 34.11, "cw-pricing-2026"),
    "gb200-4x": (42.00, None, "cw-pricing-2026"),
    "gb300-4x": (52.50, None, "cw-estimate-2026"),
}
_CW_ZONES = {
    "US-EAST-04A": ("gd-8xh100ib-i128", "gd-8xh200ib-i128", "b200-8x", "gb200-4x"),
    "US-EAST-06A": ("gd-8xh100ib-i128", "gb200-4x"),
    "US-EAST-14A": ("gb300-4x", "gb200-4x"),
    "US-CENTRAL-07A": ("gd-8xh200ib-i128", "b200-8x", "gb200-4x"),
    "US-WEST-04A": ("gd-8xh100ib-i128", "gd-8xh200ib-i128"),
    "RNO2A": ("gb200-4x", "gb300-4x", "b200-8x"),
    "EU-SOUTH-03B": ("gd-8xh100ib-i128", "gd-8xh200ib-i128", "gb200-4x"),
    "EU-SOUTH-04A": ("b200-8x", "gb200-4x"),
}
for _zone, _types in _CW_ZONES.items():
    for _t in _types:
        _od, _spot, _src = _CW[_t]
        EXTRA_OFFERS.append(("coreweave", _t, _zone[:-1], _zone, _od, _spot, None, _src))
for _zone in ("us-east-1a", "us-east-1b", "us-west-2b"):
    # UltraServers are sold only as Capacity Blocks: reserved capacity, no on-demand or spot.
    EXTRA_OFFERS.append(("aws", "p6e-gb200.36xlarge", _zone[:-1], _zone, None, None, 54.60, "aws-gb200-estimate-2026"))
for _region in ("eastus", "westus3", "swedencentral"):
    EXTRA_OFFERS.append(("azure", "Standard_ND128isr_NDR_GB200_v6", _region, f"{_region}-1", 56.70, None, None,
                         "azure-gb200-estimate-2026"))

# OCI: availability domains (zones) per GPU shape, as the catalog's zone names (the AD name without the
# tenancy prefix: ``Uocm:US-ASHBURN-AD-1`` -> ``US-ASHBURN-AD-1``); on-demand and reserved at list price.
_OCI_GPU_HOUR = {"BM.GPU.H100.8": 10.00, "BM.GPU.H200.8": 10.00, "BM.GPU.B200.8": 14.00, "BM.GPU.GB200.4": 16.00}
_OCI_ZONES: dict[str, dict[str, tuple[str, ...]]] = {
    "us-ashburn-1": {"US-ASHBURN-AD-1": ("BM.GPU.H100.8", "BM.GPU.H200.8"), "US-ASHBURN-AD-2": ("BM.GPU.H100.8",)},
    "us-chicago-1": {"US-CHICAGO-AD-1": ("BM.GPU.H100.8", "BM.GPU.H200.8", "BM.GPU.B200.8", "BM.GPU.GB200.4")},
    "us-phoenix-1": {"US-PHOENIX-AD-1": ("BM.GPU.B200.8", "BM.GPU.GB200.4")},
    "uk-london-1": {"UK-LONDON-AD-1": ("BM.GPU.H100.8",)},
    "eu-frankfurt-1": {"EU-FRANKFURT-AD-1": ("BM.GPU.H100.8", "BM.GPU.H200.8")},
    "ap-osaka-1": {"AP-OSAKA-1-AD-1": ("BM.GPU.H100.8",)},
}
for _region, _ads in _OCI_ZONES.items():
    for _ad, _types in _ads.items():
        for _t in _types:
            _node = round(_OCI_GPU_HOUR[_t] * INSTANCE_TYPES[("oci", _t)][1], 4)
            EXTRA_OFFERS.append(("oci", _t, _region, _ad, _node, None, _node, "oci-pricing-2026"))

# A100 shapes the public data lacks: (provider, type, zones, on-demand $/h per zone's region)
_A100 = {
    ("gcp", "a2-highgpu"): ({"us-central1": 3.6734, "europe-west4": 4.0433}, ("a", "b"), (1, 2, 4, 8)),
    ("gcp", "a2-ultragpu"): ({"us-central1": 5.0688, "europe-west4": 5.5757}, ("a", "b"), (1, 2, 4, 8)),
}
for (_p, _fam), (_prices, _zs, _sizes) in _A100.items():
    for _region, _one in _prices.items():
        for _z in _zs:
            for _n in _sizes:
                EXTRA_OFFERS.append((_p, f"{_fam}-{_n}g", _region, f"{_region}-{_z}", round(_one * _n, 4),
                                     round(_one * _n * 0.3, 4), None, "a100-list-2026"))
for _region, _one in (("eastus", 3.673), ("westeurope", 4.0403)):
    for _n, _t in ((1, "Standard_NC24ads_A100_v4"), (2, "Standard_NC48ads_A100_v4"), (4, "Standard_NC96ads_A100_v4")):
        EXTRA_OFFERS.append(("azure", _t, _region, f"{_region}-1", round(_one * _n, 4), round(_one * _n * 0.3, 4),
                             None, "a100-list-2026"))
for _zone, _price in (("us-east-1a", 40.9657), ("us-west-2b", 40.9657)):
    EXTRA_OFFERS.append(("aws", "p4de.24xlarge", _zone[:-1], _zone, _price, round(_price * 0.3, 4), None,
                         "a100-list-2026"))

EU = {"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT",
      "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "NO", "IS", "LI"}  # EU + EEA

REGION_COUNTRY = {
    # aws
    "us-east-1": "US", "us-east-2": "US", "us-west-1": "US", "us-west-2": "US", "ca-central-1": "CA",
    "eu-central-1": "DE", "eu-north-1": "SE", "eu-south-2": "ES", "eu-west-1": "IE", "eu-west-2": "GB",
    "ap-northeast-1": "JP", "ap-northeast-2": "KR", "ap-south-1": "IN", "ap-southeast-1": "SG",
    "ap-southeast-2": "AU", "ap-southeast-3": "ID", "me-central-1": "AE", "sa-east-1": "BR",
    # gcp
    "asia-east1": "TW", "asia-northeast1": "JP", "asia-northeast3": "KR", "asia-south1": "IN", "asia-south2": "IN",
    "asia-southeast1": "SG", "australia-southeast1": "AU", "europe-north1": "FI", "europe-west1": "BE",
    "europe-west2": "GB", "europe-west3": "DE", "europe-west4": "NL", "europe-west6": "CH", "europe-west9": "FR",
    "me-central2": "SA", "northamerica-northeast1": "CA", "northamerica-northeast2": "CA",
    "southamerica-east1": "BR", "southamerica-west1": "CL", "us-central1": "US", "us-central2": "US",
    "us-east1": "US", "us-east4": "US", "us-east5": "US", "us-south1": "US", "us-west1": "US", "us-west2": "US",
    "us-west3": "US", "us-west4": "US",
    # azure
    "australiaeast": "AU", "australiasoutheast": "AU", "brazilsouth": "BR", "canadacentral": "CA",
    "canadaeast": "CA", "centralindia": "IN", "centralus": "US", "eastus": "US", "eastus2": "US",
    "francecentral": "FR", "germanynorth": "DE", "germanywestcentral": "DE", "indonesiacentral": "ID",
    "italynorth": "IT", "japaneast": "JP", "japanwest": "JP", "jioindiacentral": "IN", "jioindiawest": "IN",
    "koreacentral": "KR", "koreasouth": "KR", "malaysiawest": "MY", "mexicocentral": "MX",
    "northcentralus": "US", "northeurope": "IE", "norwayeast": "NO", "polandcentral": "PL",
    "southafricanorth": "ZA", "southafricawest": "ZA", "southcentralus": "US", "southeastasia": "SG",
    "southindia": "IN", "spaincentral": "ES", "swedencentral": "SE", "switzerlandnorth": "CH",
    "switzerlandwest": "CH", "uaecentral": "AE", "uaenorth": "AE", "uksouth": "GB", "ukwest": "GB",
    "westcentralus": "US", "westeurope": "NL", "westus": "US", "westus2": "US", "westus3": "US",
    # coreweave
    "US-EAST-04": "US", "US-EAST-06": "US", "US-EAST-14": "US", "US-CENTRAL-07": "US", "US-WEST-04": "US",
    "RNO2": "US", "EU-SOUTH-03": "ES", "EU-SOUTH-04": "ES",
    # oci
    "us-ashburn-1": "US", "us-chicago-1": "US", "us-phoenix-1": "US", "uk-london-1": "GB", "eu-frankfurt-1": "DE",
    "ap-osaka-1": "JP",
}


def geo_of(country: str) -> str:
    if country in EU:
        return "eu"
    return {"US": "us", "CA": "ca", "GB": "uk", "CH": "ch", "BR": "sa", "CL": "sa", "MX": "mx", "AE": "me",
            "SA": "me", "ZA": "af"}.get(country, "apac")


def _aws_zone(region: str, zone_id: str) -> str | None:
    parts = zone_id.split("-")
    if len(parts) != 2:          # local zones (use1-atl2-az1) are not placed on
        return None
    n = int(parts[1].removeprefix("az"))
    return f"{region}{chr(ord('a') + n - 1)}"


def _tpu_type(name: str) -> tuple[str, int] | None:
    for family, sizes in TPU_SLICES.items():
        if name.startswith(family + "-"):
            size = int(name.rsplit("-", 1)[1])
            if size in sizes:
                return family, size // 2 if family == "tpu-v5p" else size
    return None


def build(src: Path, out: Path = OUT) -> None:
    offers: dict[tuple[str, str, str, str, str], tuple[float, str]] = {}
    types = dict(INSTANCE_TYPES)

    def add(p: str, t: str, region: str, zone: str, cap: str, price: float | None, source: str) -> None:
        if price is None or price <= 0 or math.isnan(price) or not sold_as(p, t, CapacityType(cap)):
            return
        key = (p, t, region, zone, cap)
        if key not in offers or price < offers[key][0]:
            offers[key] = (round(price, 4), source)

    with (src / "normalized_all.csv").open(newline="") as f:
        for r in csv.DictReader(f):
            p, t = r["cloud"], r["instance_type"]
            if p not in ("aws", "gcp", "azure"):
                continue
            if t == "TPU-VM":
                tpu = _tpu_type(r["accelerator"])
                if not tpu:
                    continue
                family, chips = tpu
                t = r["accelerator"]
                mem = 95 if family == "tpu-v5p" else 32
                types[(p, t)] = ("TPU-" + family.split("-")[1], chips, mem,
                                 max(1, math.ceil(chips / 4)) * (208 if family == "tpu-v5p" else 90),
                                 max(1, math.ceil(chips / 4)) * (448 if family == "tpu-v5p" else 720),
                                 chips, "ici", 0, "")
            elif (p, t) not in types:
                continue
            region, zone = r["region"], r["zone"]
            if p == "aws":
                z = _aws_zone(region, zone)
                if z is None:
                    continue
                zone = z
            elif p == "azure":
                zone = f"{region}-1"
            if region not in REGION_COUNTRY:
                continue
            add(p, t, region, zone, "on-demand", float(r["price_hr"] or "nan"), "public-2026")
            add(p, t, region, zone, "spot", float(r["spot_price_hr"] or "nan"), "public-2026")
    # A3 High is priced per GPU: the 2-GPU shape the public data lacks is twice the 1-GPU one, zone by zone
    for (p, t, region, zone, cap), (price, _) in list(offers.items()):
        if (p, t) == ("gcp", "a3-highgpu-1g"):
            add(p, "a3-highgpu-2g", region, zone, cap, 2 * price, "gcp-a3-per-gpu-2026")
    for p, t, region, zone, od, spot, reserved, source in EXTRA_OFFERS:
        add(p, t, region, zone, "on-demand", od, source)
        add(p, t, region, zone, "spot", spot, source)
        add(p, t, region, zone, "reserved", reserved, source)

    out.mkdir(parents=True, exist_ok=True)
    used_types = {(k[0], k[1]) for k in offers}
    with (out / "instance_types.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["provider", "name", "gpu_model", "gpus", "gpu_memory_gib", "vcpus", "memory_gib",
                    "nvlink_domain_gpus", "fabric", "fabric_gbps", "ultraserver"])
        for (p, t), v in sorted(types.items()):
            if (p, t) in used_types:
                w.writerow([p, t, *v])
    with (out / "regions.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["provider", "name", "geo", "country"])
        for p, region in sorted({(k[0], k[2]) for k in offers}):
            c = REGION_COUNTRY[region]
            w.writerow([p, region, geo_of(c), c])
    with (out / "sources.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "source"])
        w.writerows(sorted(SOURCES.items()))
    with (out / "offerings.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["provider", "instance_type", "region", "zone", "capacity_type", "price_per_hour", "source"])
        for (p, t, region, zone, cap), (price, source) in sorted(offers.items()):
            w.writerow([p, t, region, zone, cap, price, source])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m providers.catalog.build SOURCE_DIR")
    build(Path(sys.argv[1]))
