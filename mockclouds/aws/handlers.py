"""EC2 actions moto does not implement, served from the mock's own state: placement groups, capacity
reservations, capacity blocks (incl. UltraServers) and their offerings.

Each handler takes (state, region, params) and returns the response body dict, or raises Ec2Error.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from mockclouds.aws import render
from mockclouds.aws.models import Ec2Error
from mockclouds.aws.state import AwsState
from mockclouds.aws.wire import Params

Handler = Callable[[AwsState, str, Params], dict[str, Any]]


def _match(filters: dict[str, list[str]], attrs: dict[str, str], tags: dict[str, str]) -> bool:
    for name, values in filters.items():
        if name.startswith("tag:"):
            have = tags.get(name[4:])
        elif name == "tag-key":
            if not set(values) & set(tags):
                return False
            continue
        else:
            have = attrs.get(name)
        if have is None or have not in values:
            return False
    return True


def create_placement_group(st: AwsState, region: str, p: Params) -> dict[str, Any]:
    name = p.get("GroupName")
    if not name:
        raise Ec2Error("MissingParameter", "The request must contain the parameter GroupName")
    strategy = p.get("Strategy", "cluster")
    if strategy not in ("cluster", "spread", "partition"):
        raise Ec2Error("InvalidParameterValue", f"Value ({strategy}) for parameter Strategy is invalid")
    pg = st.create_placement_group(region, name, strategy, p.int("PartitionCount"), p.tags("placement-group"))
    return {"placementGroup": render.placement_group(pg)}


def describe_placement_groups(st: AwsState, region: str, p: Params) -> dict[str, Any]:
    names, ids, filters = p.list("GroupName"), p.list("GroupId"), p.filters()
    with st.lock:
        groups = [g for (r, _), g in st.placement_groups.items() if r == region]
    for n in names:
        if not any(g.name == n for g in groups):
            raise Ec2Error("InvalidPlacementGroup.Unknown", f"The Placement Group '{n}' is unknown.")
    out = [g for g in groups
           if (not names or g.name in names) and (not ids or g.group_id in ids)
           and _match(filters, {"group-name": g.name, "state": g.state, "strategy": g.strategy}, g.tags)]
    return {"placementGroupSet": [render.placement_group(g) for g in out]}


def delete_placement_group(st: AwsState, region: str, p: Params) -> dict[str, Any]:
    st.delete_placement_group(region, p.get("GroupName"))
    return {"return": True}


def create_capacity_reservation(st: AwsState, region: str, p: Params) -> dict[str, Any]:
    for key in ("InstanceType", "InstancePlatform", "InstanceCount", "AvailabilityZone"):
        if not p.get(key):
            raise Ec2Error("MissingParameter", f"The request must contain the parameter {key}")
    cr = st.create_reservation(region, p.get("AvailabilityZone"), p.get("InstanceType"), p.int("InstanceCount"),
                               p.get("InstancePlatform"), p.time("EndDate"), p.get("InstanceMatchCriteria", "open"),
                               p.tags("capacity-reservation"), token=p.get("ClientToken"),
                               fingerprint=urlencode(sorted((k, v) for k, v in p.raw.items() if k != "ClientToken")))
    return {"capacityReservation": render.reservation(cr)}


def describe_capacity_reservations(st: AwsState, region: str, p: Params) -> dict[str, Any]:
    ids, filters = p.list("CapacityReservationId"), p.filters()
    with st.lock:
        mine = [cr for cr in st.reservations.values() if cr.region == region]
    for i in ids:
        if not any(cr.id == i for cr in mine):
            raise Ec2Error("InvalidCapacityReservationId.NotFound",
                           f"The capacity reservation ID '{i}' does not exist")
    out = [cr for cr in mine if (not ids or cr.id in ids) and _match(
        filters, {"instance-type": cr.instance_type, "availability-zone": cr.zone, "state": cr.state,
                  "reservation-type": cr.reservation_type, "capacity-reservation-id": cr.id}, cr.tags)]
    return {"capacityReservationSet": [render.reservation(cr) for cr in out]}


def cancel_capacity_reservation(st: AwsState, region: str, p: Params) -> dict[str, Any]:
    st.cancel_reservation(region, p.get("CapacityReservationId"))
    return {"return": True}


def describe_capacity_block_offerings(st: AwsState, region: str, p: Params) -> dict[str, Any]:
    if not p.get("CapacityDurationHours"):
        raise Ec2Error("MissingParameter", "The request must contain the parameter CapacityDurationHours")
    ultraserver = p.get("UltraserverType")
    if not p.get("InstanceType") and not ultraserver:
        raise Ec2Error("MissingParameter", "The request must contain InstanceType or UltraserverType")
    offers = st.block_offerings(region, p.get("InstanceType"), p.int("InstanceCount", 1),
                                p.int("CapacityDurationHours"), ultraserver, p.int("UltraserverCount", 1),
                                p.time("StartDateRange"), p.time("EndDateRange"))
    return {"capacityBlockOfferingSet": [render.block_offering(o) for o in offers]}


def purchase_capacity_block(st: AwsState, region: str, p: Params) -> dict[str, Any]:
    tags = {**p.tags("capacity-block"), **p.tags("capacity-reservation")}
    blk, cr = st.purchase_block(region, p.get("CapacityBlockOfferingId"), p.get("InstancePlatform", "Linux/UNIX"),
                                tags)
    return {"capacityReservation": render.reservation(cr), "capacityBlockSet": [render.block(blk)],
            "capacityReservationSet": [render.reservation(cr)]}


def describe_capacity_blocks(st: AwsState, region: str, p: Params) -> dict[str, Any]:
    ids, filters = p.list("CapacityBlockId"), p.filters()
    with st.lock:
        out = [b for b in st.blocks.values() if b.region == region and (not ids or b.id in ids)
               and _match(filters, {"availability-zone": b.zone, "state": b.state,
                                    "ultraserver-type": b.ultraserver_type}, b.tags)]
    return {"capacityBlockSet": [render.block(b) for b in out]}


def describe_spot_price_history(st: AwsState, region: str, p: Params) -> dict[str, Any]:
    """Spot prices from the catalog (moto answers 0.00001 for everything, which would make spot free)."""
    types, products = set(p.list("InstanceType")), p.list("ProductDescription")
    zone = p.get("AvailabilityZone")
    stamp = p.time("StartTime") or p.time("EndTime")
    stamp = min(stamp or datetime.now(UTC), datetime.now(UTC))
    rows = [{"instanceType": t, "productDescription": products[0] if products else "Linux/UNIX",
             "spotPrice": f"{price:.6f}", "timestamp": stamp, "availabilityZone": z}
            for (z, t, cap), price in sorted(st.prices.items())
            if cap == "spot" and st.zone_region.get(z) == region and (not types or t in types)
            and (not zone or z == zone)]
    return {"spotPriceHistorySet": rows}


HANDLERS: dict[str, Handler] = {
    "DescribeSpotPriceHistory": describe_spot_price_history,
    "CreatePlacementGroup": create_placement_group,
    "DescribePlacementGroups": describe_placement_groups,
    "DeletePlacementGroup": delete_placement_group,
    "CreateCapacityReservation": create_capacity_reservation,
    "DescribeCapacityReservations": describe_capacity_reservations,
    "CancelCapacityReservation": cancel_capacity_reservation,
    "DescribeCapacityBlockOfferings": describe_capacity_block_offerings,
    "PurchaseCapacityBlock": purchase_capacity_block,
    "DescribeCapacityBlocks": describe_capacity_blocks,
}
