"""What OCI sells and what is free: offerings (the catalog kept where ListShapes still offers the shape in the
availability domain) and the capacity report.

Unlike EC2, GCE and ARM, OCI answers how many hosts of a shape are free right now
(CreateComputeCapacityReport), so on-demand pools are exact (``capacity_known=True``), further bounded by the
AD-scoped GPU service limits of the Limits API. Compute capacity reservations are reserved pools.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from providers.catalog import CapacityType, Catalog, Offering
from providers.model import CapacityPool, Quota
from providers.oci.clients import OciClients
from providers.oci.compute import PROVIDER, gpu_limit_name, zone_of


@dataclass(frozen=True, slots=True)
class AdLimit:
    """One GPU service limit in one availability domain (OCI's GPU limits are AD-scoped)."""

    name: str
    zone: str
    limit: float
    used: float

    @property
    def room(self) -> float:
        return max(0.0, self.limit - self.used)


def availability_domains(clients: OciClients, region: str, *, attempts: int | None = None) -> dict[str, str]:
    """catalog zone -> the AD's full name (with its tenancy prefix), as the region answers."""
    ads = clients.call("identity", region, "list_availability_domains", clients.tenancy, attempts=attempts)
    return {zone_of(a.name): a.name for a in ads}


def offered(clients: OciClients, region: str, ads: dict[str, str]) -> set[tuple[str, str]]:
    """(zone, shape) pairs the region offers now."""
    out: set[tuple[str, str]] = set()
    for zone, ad in ads.items():
        shapes = clients.pages("compute", region, "list_shapes", clients.compartment, availability_domain=ad)
        out.update((zone, s.shape) for s in shapes)
    return out


def region_offerings(clients: OciClients, catalog: Catalog, region: str) -> list[Offering]:
    rows = [o for o in catalog.for_provider(PROVIDER) if o.region == region]
    if not rows:
        return []
    live = offered(clients, region, availability_domains(clients, region))
    return [o for o in rows if (o.zone, o.instance_type) in live]


def limits(clients: OciClients, catalog: Catalog, region: str, ads: dict[str, str]) -> list[AdLimit]:
    """The GPU limits of the shapes the catalog knows, per AD, with their usage (GetResourceAvailability)."""
    wanted = {gpu_limit_name(it.gpu_model) for (p, _n), it in catalog.instance_types.items() if p == PROVIDER}
    values = clients.pages("limits", region, "list_limit_values", clients.tenancy, service_name="compute")
    out = []
    for v in values:
        if v.name not in wanted or (v.scope_type or "").upper() != "AD" or not v.availability_domain:
            continue
        zone = zone_of(v.availability_domain)
        if zone not in ads:
            continue
        avail = clients.call("limits", region, "get_resource_availability", "compute", v.name, clients.tenancy,
                             availability_domain=ads[zone])
        out.append(AdLimit(v.name, zone, float(v.value or 0), float(avail.used or 0)))
    return out


def quotas(catalog: Catalog, region: str, ad_limits: list[AdLimit]) -> list[Quota]:
    """One Quota per GPU limit and region (summed over its ADs): placement bounds a region; the AD bound
    goes into each pool's free count."""
    by_name: dict[str, list[AdLimit]] = {}
    for a in ad_limits:
        by_name.setdefault(a.name, []).append(a)
    out = []
    for name, rows in sorted(by_name.items()):
        types = tuple(sorted(n for (p, n), it in catalog.instance_types.items()
                             if p == PROVIDER and gpu_limit_name(it.gpu_model) == name))
        out.append(Quota(PROVIDER, region, name, "gpus", sum(r.limit for r in rows), sum(r.used for r in rows), types))
    return out


def free_pools(clients: OciClients, catalog: Catalog, region: str, ads: dict[str, str],
               ad_limits: list[AdLimit]) -> list[CapacityPool]:
    """On-demand pools per offered (AD, shape): free hosts from CreateComputeCapacityReport, bounded by the
    AD's GPU limit."""
    import oci

    room = {(a.zone, a.name): a.room for a in ad_limits}
    by_zone: dict[str, list[str]] = {}
    for o in catalog.for_provider(PROVIDER):
        if o.region == region and o.capacity_type == CapacityType.ON_DEMAND and o.zone in ads:
            by_zone.setdefault(o.zone, []).append(o.instance_type)
    out = []
    for zone, shapes in sorted(by_zone.items()):
        details = oci.core.models.CreateComputeCapacityReportDetails(
            compartment_id=clients.tenancy, availability_domain=ads[zone],
            shape_availabilities=[oci.core.models.CreateCapacityReportShapeAvailabilityDetails(instance_shape=s)
                                  for s in sorted(set(shapes))])
        report = clients.call("compute", region, "create_compute_capacity_report", details)
        for sa in report.shape_availabilities or []:
            if sa.availability_status == "HARDWARE_NOT_SUPPORTED":
                continue
            it = catalog.instance_type(PROVIDER, sa.instance_shape)
            free = int(sa.available_count or 0)
            limit_room = room.get((zone, gpu_limit_name(it.gpu_model)))
            if limit_room is not None:
                free = min(free, int(limit_room // max(1, it.gpus)))
            out.append(CapacityPool(PROVIDER, region, zone, sa.instance_shape, CapacityType.ON_DEMAND, free,
                                    capacity_known=True))
    return out


def reservation_pools(clients: OciClients, region: str) -> list[CapacityPool]:
    """Active compute capacity reservations: exact free counts per reserved shape."""
    out = []
    for r in clients.pages("compute", region, "list_compute_capacity_reservations", clients.compartment):
        if r.lifecycle_state != "ACTIVE":
            continue
        full = clients.call("compute", region, "get_compute_capacity_reservation", r.id)
        for c in full.instance_reservation_configs or []:
            out.append(CapacityPool(PROVIDER, region, zone_of(full.availability_domain), c.instance_shape,
                                    CapacityType.RESERVED, max(0, int(c.reserved_count) - int(c.used_count or 0)),
                                    reservation_id=full.id, capacity_known=True))
    return out


def taken_at() -> datetime:
    return datetime.now(UTC)
