"""What AWS sells and what is free: offerings (catalog refreshed from the live API) and the capacity
report (reservations, capacity blocks, quota-bounded on-demand/spot pools, quotas).

EC2 has no API for free on-demand/spot capacity: those pools are bounded by quota headroom and marked
``capacity_known=False``; reservations and capacity blocks report exact free instance counts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from providers import fanout
from providers.aws.clients import AwsClients
from providers.aws.compute import LIVE_STATES, instance_vcpus
from providers.catalog import CapacityType, Catalog, Offering
from providers.model import CapacityPool, Quota

QUOTA_ON_DEMAND_P = "L-417A185B"     # Running On-Demand P instances (vCPUs)
QUOTA_SPOT_P = "L-7212CCBC"          # All P Spot Instance Requests (vCPUs)


def offered_zones(clients: AwsClients, region: str, types: list[str]) -> set[tuple[str, str]]:
    """(zone, instance type) pairs EC2 offers now in ``region`` among ``types``."""
    if not types:
        return set()
    rows = clients.pages("ec2", region, "describe_instance_type_offerings", "InstanceTypeOfferings",
                         LocationType="availability-zone",
                         Filters=[{"Name": "instance-type", "Values": types}])
    return {(r["Location"], r["InstanceType"]) for r in rows}


def spot_prices(clients: AwsClients, region: str, types: list[str]) -> dict[tuple[str, str], float]:
    """Latest Linux spot price per (zone, instance type)."""
    rows = clients.pages("ec2", region, "describe_spot_price_history", "SpotPriceHistory",
                         InstanceTypes=types, ProductDescriptions=["Linux/UNIX"],
                         StartTime=datetime.now(UTC))
    latest: dict[tuple[str, str], tuple[Any, float]] = {}
    for r in rows:
        key = (r["AvailabilityZone"], r["InstanceType"])
        ts = r.get("Timestamp") or datetime.min.replace(tzinfo=UTC)
        if key not in latest or ts > latest[key][0]:
            latest[key] = (ts, float(r["SpotPrice"]))
    return {k: v for k, (_, v) in latest.items()}


def region_offerings(clients: AwsClients, catalog: Catalog, region: str) -> list[Offering]:
    """The catalog's rows for ``region`` kept where EC2 still offers the type in the zone, with live spot
    prices; zones EC2 offers that the catalog lacks get on-demand rows at the region's catalog price."""
    rows = [o for o in catalog.for_provider("aws") if o.region == region]
    types = sorted({o.instance_type for o in rows})
    live = offered_zones(clients, region, types)
    spot = spot_prices(clients, region, types) if live else {}
    today = datetime.now(UTC).date().isoformat()
    out: list[Offering] = []
    for o in rows:
        if (o.zone, o.instance_type) not in live:
            continue
        price = spot.get((o.zone, o.instance_type)) if o.capacity_type == CapacityType.SPOT else None
        out.append(Offering("aws", o.instance_type, region, o.zone, o.capacity_type, price or o.price_per_hour,
                            f"aws DescribeSpotPriceHistory {today}" if price else o.source))
    known = {(o.zone, o.instance_type) for o in rows}
    for zone, itype in sorted(live - known):
        od = [o for o in rows if o.instance_type == itype and o.capacity_type == CapacityType.ON_DEMAND]
        if od:
            out.append(Offering("aws", itype, region, zone, CapacityType.ON_DEMAND, od[0].price_per_hour,
                                f"aws DescribeInstanceTypeOfferings {today}; price: {od[0].source}"))
    return out


def quotas(clients: AwsClients, catalog: Catalog, region: str) -> list[Quota]:
    """The P-family vCPU quotas with usage counted from the account's live instances (all owners)."""
    def limit(code: str) -> dict[str, Any]:
        quota: dict[str, Any] = clients.call("service-quotas", region, "get_service_quota", ServiceCode="ec2",
                                             QuotaCode=code)["Quota"]
        return quota

    # The instances and both quotas at once (three round trips that need no other's answer).
    reservations, on_demand, spot = fanout.all_of(
        lambda: clients.pages("ec2", region, "describe_instances", "Reservations",
                              Filters=[{"Name": "instance-state-name", "Values": list(LIVE_STATES)}]),
        lambda: limit(QUOTA_ON_DEMAND_P), lambda: limit(QUOTA_SPOT_P))
    # Filtered client-side by family: wildcard instance-type filters are not honoured everywhere (moto).
    insts = [i for r in reservations for i in r["Instances"] if i["InstanceType"].startswith("p")]
    used = {QUOTA_ON_DEMAND_P: 0.0, QUOTA_SPOT_P: 0.0}
    for i in insts:
        code = QUOTA_SPOT_P if i.get("InstanceLifecycle") == "spot" else QUOTA_ON_DEMAND_P
        used[code] += instance_vcpus(i, catalog)
    p_types = tuple(sorted(n for (p, n) in catalog.instance_types if p == "aws" and n.startswith("p")))
    out = []
    for code, q in ((QUOTA_ON_DEMAND_P, on_demand), (QUOTA_SPOT_P, spot)):
        ct = CapacityType.SPOT if code == QUOTA_SPOT_P else CapacityType.ON_DEMAND
        out.append(Quota("aws", region, code, "vcpus", float(q["Value"]), used[code], p_types, (ct.value,)))
    return out


def reservation_pools(clients: AwsClients, region: str) -> list[CapacityPool]:
    """Active and scheduled capacity reservations, capacity blocks among them (with UltraServer type)."""
    crs = clients.pages("ec2", region, "describe_capacity_reservations", "CapacityReservations",
                        Filters=[{"Name": "state", "Values": ["active", "scheduled"]}])
    ultra: dict[str, str] = {}
    if any(cr.get("CapacityBlockId") for cr in crs):
        for b in clients.pages("ec2", region, "describe_capacity_blocks", "CapacityBlocks"):
            for rid in b.get("CapacityReservationIds", []):
                ultra[rid] = b.get("UltraserverType", "")
    return [CapacityPool("aws", region, cr["AvailabilityZone"], cr["InstanceType"], CapacityType.RESERVED,
                         int(cr["AvailableInstanceCount"]), reservation_id=cr["CapacityReservationId"],
                         starts_at=cr.get("StartDate"), ends_at=cr.get("EndDate"),
                         ultraserver_type=ultra.get(cr["CapacityReservationId"], ""), capacity_known=True,
                         reservation_kind=reservation_kind(cr))
            for cr in crs]


def reservation_kind(cr: dict[str, Any]) -> str:
    """"capacity-block" for a Capacity Block's reservation (EC2's ReservationType), else ""."""
    return "capacity-block" if cr.get("ReservationType") == "capacity-block" or cr.get("CapacityBlockId") else ""


def free_pools(catalog: Catalog, region: str, live: set[tuple[str, str]], qs: list[Quota]) -> list[CapacityPool]:
    """On-demand and spot pools per offered (zone, type), bounded by the vCPU quota headroom."""
    headroom = {q.name: q.headroom for q in qs}
    out = []
    for o in catalog.for_provider("aws"):
        if o.region != region or o.capacity_type == CapacityType.RESERVED or (o.zone, o.instance_type) not in live:
            continue
        it = catalog.instance_type("aws", o.instance_type)
        code = QUOTA_SPOT_P if o.capacity_type == CapacityType.SPOT else QUOTA_ON_DEMAND_P
        room = headroom.get(code) if o.instance_type.startswith("p") else None
        nodes = int(room // it.vcpus) if room is not None else 0
        out.append(CapacityPool("aws", region, o.zone, o.instance_type, o.capacity_type, nodes,
                                capacity_known=False))
    return out
