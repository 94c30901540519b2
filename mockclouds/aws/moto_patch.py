"""Make moto's static EC2 data agree with Awan's catalog: the GPU types it lacks, the zones it lacks, and
instance-type offerings per zone taken from the catalog (moto's own per-AZ data is wrong for our zones).
Also one speed fix (``_direct_tag_lookup``): same answers, without a scan of every tag per resource.

moto keeps this data in module-level tables that survive ``BackendDict.reset()``, so patching once per
process is enough; ``apply_catalog`` is idempotent.
"""

from __future__ import annotations

import copy
import threading

from providers.catalog import Catalog, InstanceType

_lock = threading.Lock()
_applied: set[int] = set()

# The moto type a missing type is cloned from (same generation, EFA, NVMe): only GPU facts change.
_CLONE_FROM = {"GB200": "p6-b200.48xlarge", "GB300": "p6-b300.48xlarge"}


def _gpu_info(it: InstanceType) -> dict:
    mib = int(it.gpu_memory_gib * 1024)
    return {"Gpus": [{"Count": it.gpus, "LogicalGpuCount": it.gpus, "GpuPartitionSize": 1.0,
                      "Manufacturer": "NVIDIA", "MemoryInfo": {"SizeInMiB": mib}, "Name": it.gpu_model,
                      "Workloads": ["ml-ai"]}],
            "TotalGpuMemoryInMiB": mib * it.gpus}


def _add_instance_type(it: InstanceType) -> None:
    from moto.ec2.models import instance_types as mit

    if it.name in mit.INSTANCE_TYPES:
        return
    base = copy.deepcopy(mit.INSTANCE_TYPES[_CLONE_FROM.get(it.gpu_model, "p5.48xlarge")])
    base.update(InstanceType=it.name, GpuInfo=_gpu_info(it), MemoryInfo={"SizeInMiB": int(it.memory_gib * 1024)})
    cores = it.vcpus // 2
    base["VCpuInfo"] = {"DefaultVCpus": it.vcpus, "DefaultCores": cores, "DefaultThreadsPerCore": 2,
                        "ValidCores": [cores], "ValidThreadsPerCore": [1, 2]}
    mit.INSTANCE_TYPES[it.name] = base
    # The backend's list is built at class creation, from the dict as it was at import.
    mit.InstanceTypeBackend.instance_types.append(mit.InstanceType(it.name))


def _add_zones(catalog: Catalog) -> None:
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend, Zone

    for zone, region in catalog.zones("aws").items():
        known = RegionsAndZonesBackend.zones.setdefault(region, [])
        if any(z.name == zone for z in known):
            continue
        prefix = known[0].zone_id.split("-az")[0] if known else region.replace("-", "")[:4]
        used = {z.zone_id for z in known}
        n = next(i for i in range(1, 99) if f"{prefix}-az{i}" not in used)
        known.append(Zone(name=zone, region_name=region, zone_id=f"{prefix}-az{n}"))


def zone_ids() -> dict[str, str]:
    """zone name -> zone id, as moto (and so DescribeAvailabilityZones) reports them."""
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

    return {z.name: z.zone_id for zs in RegionsAndZonesBackend.zones.values() for z in zs}


def _set_offerings(catalog: Catalog) -> None:
    from moto.ec2.models import instance_types as mit

    ours = {(o.region, o.zone, o.instance_type) for o in catalog.for_provider("aws")}
    types = {t for (_, _, t) in ours}
    ids = zone_ids()
    tables = mit.INSTANCE_TYPE_OFFERINGS
    for region in {r for (r, _, _) in ours}:
        for kind in ("availability-zone", "availability-zone-id", "region"):
            rows = tables[kind].setdefault(region, [])
            rows[:] = [r for r in rows if r["InstanceType"] not in types]
        for (_r, zone, t) in sorted(x for x in ours if x[0] == region):
            tables["availability-zone"][region].append(
                {"InstanceType": t, "Location": zone, "LocationType": "availability-zone"})
            tables["availability-zone-id"][region].append(
                {"InstanceType": t, "Location": ids[zone], "LocationType": "availability-zone-id"})
        for t in sorted({t for (r, _, t) in ours if r == region}):
            tables["region"][region].append({"InstanceType": t, "Location": region, "LocationType": "region"})
    # Types the catalog sells nowhere in a region must not appear there either.
    for kind in ("availability-zone", "availability-zone-id", "region"):
        for region, rows in tables[kind].items():
            mine = {t for (r, _, t) in ours if r == region}
            rows[:] = [r for r in rows if r["InstanceType"] not in types or r["InstanceType"] in mine]


def _direct_tag_lookup() -> None:
    """moto answers a resource's tags with ``describe_tags(filters={"resource-id": [id]})``, a scan of
    every tag of every resource in the region with a regex per entry: DescribeInstances of N instances
    is then O(N^2). For an id without glob characters that filter (``fnmatch.translate``, anchored)
    matches that id alone, so read its entry directly: same list, same order, same fields."""
    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    scan = TaggedEC2Resource.get_tags
    if getattr(scan, "_awan_direct", False):
        return

    def get_tags(self: TaggedEC2Resource) -> list[dict[str, str]]:
        rid = getattr(self, "id", None)
        if not rid or not isinstance(rid, str) or any(c in rid for c in "*?[]\\"):
            return scan(self)
        tags = self.ec2_backend.tags.get(rid) or {}  # type: ignore[attr-defined]
        rtype = EC2_PREFIX_TO_RESOURCE.get(get_prefix(rid), "")
        return [{"resource_id": rid, "key": k, "value": v, "resource_type": rtype} for k, v in list(tags.items())]

    get_tags._awan_direct = True  # type: ignore[attr-defined]
    TaggedEC2Resource.get_tags = get_tags  # type: ignore[method-assign]


def apply_catalog(catalog: Catalog) -> None:
    with _lock:
        _direct_tag_lookup()
        if id(catalog) in _applied:
            return
        for it in catalog.instance_types.values():
            if it.provider == "aws":
                _add_instance_type(it)
        _add_zones(catalog)
        _set_offerings(catalog)
        _applied.add(id(catalog))


def moto_vcpus(instance_type: str) -> int:
    from moto.ec2.models import instance_types as mit

    info = mit.INSTANCE_TYPES.get(instance_type) or {}
    return int((info.get("VCpuInfo") or {}).get("DefaultVCpus", 0))
