"""Pure translations between ARM resources and Awan's model: resource SKUs -> offerings, usages -> quotas
and pools, VMs -> nodes, node requests -> VM bodies. No I/O here; ``adapter.py`` does the calls.

Zones: our catalog names Azure zones ``<region>-<n>`` (``eastus-1``); ARM calls the same zone ``"n"``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from providers.catalog import CapacityType, Catalog, Offering
from providers.errors import InvalidRequestError
from providers.model import (
    TAG_OWNER,
    TAG_POOL,
    TAG_WORKLOAD,
    CapacityPool,
    Node,
    NodeRequest,
    NodeState,
    Quota,
)

PROVIDER = "azure"
OWNER = "awan"                         # value of the awan:owner tag on what Awan creates
TAG_IDEMPOTENCY = "awan:idempotency-key"
TOTAL_CORES, SPOT_CORES = "cores", "lowPriorityCores"
# The OS image of GPU nodes: Microsoft's Ubuntu HPC image ships the NVIDIA/AMD drivers and InfiniBand stack.
IMAGE = {"publisher": "microsoft-dsvm", "offer": "ubuntu-hpc", "sku": "2204", "version": "latest"}


def text(value: Any) -> str:
    """An SDK enum or string as its wire value (``str()`` of the SDK's enums is ``Class.MEMBER``)."""
    return str(getattr(value, "value", value) or "")


def catalog_zone(region: str, arm_zone: str | None) -> str:
    return f"{region}-{arm_zone or '1'}"


def arm_zone(region: str, zone: str) -> str | None:
    """``eastus-1`` -> ``"1"``; empty -> None (a regional VM). A zone of another region is refused."""
    if not zone:
        return None
    prefix, _, n = zone.rpartition("-")
    if prefix != region or not n.isdigit():
        raise InvalidRequestError(f"zone {zone!r} is not an Azure zone of region {region!r} "
                                  f"(expected {region}-<n>)", provider=PROVIDER, region=region)
    return n


@dataclass(frozen=True, slots=True)
class SkuInfo:
    """What offerings/capacity need from one resource SKU in one region."""

    name: str
    region: str
    family: str
    vcpus: int
    spot_capable: bool
    zones: tuple[str, ...]       # ARM zones where the SKU can be deployed now (restrictions removed)

    @property
    def offered(self) -> bool:
        return bool(self.zones)


def sku_info(sku: Any, region: str) -> SkuInfo | None:
    """A ResourceSku (virtualMachines) seen from one region; None when it is not sold there at all."""
    if text(sku.resource_type).lower() != "virtualmachines":
        return None
    infos = [li for li in (sku.location_info or []) if (li.location or "").lower() == region.lower()]
    if not infos:
        return None
    zones = set(infos[0].zones or []) or {"1"}   # a region without zones: our catalog still says <region>-1
    for r in sku.restrictions or []:
        kind = text(r.type).lower()
        info = r.restriction_info
        # `values` is a field ARM sends, but on the SDK model `.values` is the mapping method.
        where = [v.lower() for v in ((info.locations if info is not None else None) or r.get("values") or [])]
        if region.lower() not in where:
            continue
        if kind == "location":
            zones.clear()
        elif kind == "zone" and info is not None:
            zones -= set(info.zones or [])
    caps = {c.name: c.value for c in sku.capabilities or []}
    return SkuInfo(sku.name, region, sku.family or "", int(float(caps.get("vCPUs", "0") or 0)),
                   str(caps.get("LowPriorityCapable", "False")).lower() == "true", tuple(sorted(zones)))


def offerings(infos: Iterable[SkuInfo], catalog: Catalog) -> list[Offering]:
    """Live availability joined with catalog prices. SKUs the catalog does not price are left out."""
    priced: dict[tuple[str, str, str], Offering] = {
        (o.instance_type, o.zone, o.capacity_type.value): o for o in catalog.for_provider(PROVIDER)}
    out = []
    for info in infos:
        for z in info.zones:
            for ct in (CapacityType.ON_DEMAND, CapacityType.SPOT):
                if ct is CapacityType.SPOT and not info.spot_capable:
                    continue
                o = priced.get((info.name, catalog_zone(info.region, z), ct.value))
                if o is not None:
                    out.append(o)
    return out


def quotas(region: str, usages: Iterable[Any], infos: list[SkuInfo]) -> list[Quota]:
    """Usages of GPU families we know (plus the regional totals) as vCPU quotas."""
    by_family: dict[str, list[str]] = {}
    for info in infos:
        by_family.setdefault(info.family.lower(), []).append(info.name)
    out = []
    for u in usages:
        name = u.name.value if u.name is not None else ""
        if name in (TOTAL_CORES, SPOT_CORES):
            types: tuple[str, ...] = ()
        elif name.lower() in by_family:
            types = tuple(sorted(by_family[name.lower()]))
        else:
            continue
        # low-priority (spot) cores are metered apart from the family and regional on-demand cores
        ct = CapacityType.SPOT if name == SPOT_CORES else CapacityType.ON_DEMAND
        out.append(Quota(PROVIDER, region, name, "vcpus", float(u.limit), float(u.current_value), types, (ct.value,)))
    return out


def pools(infos: list[SkuInfo], region_quotas: list[Quota]) -> list[CapacityPool]:
    """On-demand and Spot pools per offered (zone, size). ARM has no free-capacity API, so the count is
    quota headroom over vCPUs per node: an upper bound (capacity_known=False)."""
    head = {q.name.lower(): q.headroom for q in region_quotas}
    out = []
    for info in infos:
        if info.vcpus <= 0:
            continue
        on_demand = min(head.get(info.family.lower(), 0.0), head.get(TOTAL_CORES.lower(), float("inf")))
        spot = head.get(SPOT_CORES.lower(), 0.0)
        for z in info.zones:
            zone = catalog_zone(info.region, z)
            out.append(CapacityPool(PROVIDER, info.region, zone, info.name, CapacityType.ON_DEMAND,
                                    int(on_demand // info.vcpus), capacity_known=False))
            if info.spot_capable:
                out.append(CapacityPool(PROVIDER, info.region, zone, info.name, CapacityType.SPOT,
                                        int(spot // info.vcpus), capacity_known=False))
    return out


def _state(vm: Any) -> NodeState:
    p = vm.properties
    codes = [text(s.code) for s in ((p.instance_view.statuses or []) if p.instance_view else [])]
    spot = text(p.priority) == "Spot"
    if "PowerState/deallocated" in codes or "PowerState/stopped" in codes:
        return NodeState.PREEMPTED if spot else NodeState.TERMINATED
    return {"Succeeded": NodeState.RUNNING, "Deleting": NodeState.STOPPING,
            "Failed": NodeState.TERMINATED}.get(text(p.provisioning_state), NodeState.PENDING)


def node(vm: Any, catalog: Catalog) -> Node:
    p = vm.properties
    size = p.hardware_profile.vm_size if p.hardware_profile else ""
    it = catalog.instance_types.get((PROVIDER, size))
    if text(p.priority) == "Spot":
        ct = CapacityType.SPOT
    elif p.capacity_reservation is not None:
        ct = CapacityType.RESERVED
    else:
        ct = CapacityType.ON_DEMAND
    tags = dict(vm.tags or {})
    return Node(PROVIDER, vm.id, vm.name, vm.location, catalog_zone(vm.location, (vm.zones or [None])[0]),
                size, ct, _state(vm), pool=tags.get(TAG_POOL, ""), workload=tags.get(TAG_WORKLOAD, ""),
                gpus=it.gpus if it else 0, labels=tags)


def node_tags(req: NodeRequest) -> dict[str, str]:
    return {**req.tags, TAG_OWNER: req.tags.get(TAG_OWNER, OWNER), TAG_POOL: req.pool,
            TAG_WORKLOAD: req.workload, TAG_IDEMPOTENCY: req.idempotency_key}


def subnet_id(subscription: str, resource_group: str, region: str) -> str:
    """The GPU subnet the region's infra stack creates (virtual network ``awan-<region>``, subnet ``gpu``)."""
    return (f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Network/"
            f"virtualNetworks/awan-{region}/subnets/gpu")


def vm_profile(req_size: str, spot: bool, name: str, subnet: str, ssh_key: str = "",
               reservation_group: str = "") -> dict[str, Any]:
    """The ``properties`` of a VM (or a scale set's virtualMachineProfile) for one GPU node."""
    linux: dict[str, Any] = {"disablePasswordAuthentication": True}
    if ssh_key:
        linux["ssh"] = {"publicKeys": [{"path": "/home/awan/.ssh/authorized_keys", "keyData": ssh_key}]}
    props: dict[str, Any] = {
        "hardwareProfile": {"vmSize": req_size},
        "storageProfile": {"imageReference": dict(IMAGE),
                           "osDisk": {"createOption": "FromImage", "deleteOption": "Delete",
                                      "managedDisk": {"storageAccountType": "Premium_LRS"}}},
        "osProfile": {"computerName": name[:64], "adminUsername": "awan", "linuxConfiguration": linux},
        # VM-managed NICs (networkApiVersion) so a node needs no separate NIC resource.
        "networkProfile": {"networkApiVersion": "2022-11-01", "networkInterfaceConfigurations": [
            {"name": f"{name[:70]}-nic", "properties": {
                "primary": True, "deleteOption": "Delete", "enableAcceleratedNetworking": True,
                "ipConfigurations": [{"name": "ipconfig1", "properties": {"subnet": {"id": subnet}}}]}}]},
    }
    if spot:
        # Delete on eviction: a preempted node must not keep holding quota as a deallocated VM.
        props.update(priority="Spot", evictionPolicy="Delete", billingProfile={"maxPrice": -1})
    if reservation_group:
        props["capacityReservation"] = {"capacityReservationGroup": {"id": reservation_group}}
    return props
