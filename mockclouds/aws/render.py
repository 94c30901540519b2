"""The mock's own EC2 objects as the API's XML structures (keys are the API's locationNames)."""

from __future__ import annotations

from typing import Any

from mockclouds.aws.models import BlockOffering, CapacityBlock, CapacityReservation, PlacementGroup
from mockclouds.aws.wire import tag_set

ACCOUNT_ID = "123456789012"


def placement_group(pg: PlacementGroup) -> dict[str, Any]:
    out: dict[str, Any] = {
        "groupName": pg.name, "state": pg.state, "strategy": pg.strategy, "groupId": pg.group_id,
        "tagSet": tag_set(pg.tags),
        "groupArn": f"arn:aws:ec2:{pg.region}:{ACCOUNT_ID}:placement-group/{pg.name}",
    }
    if pg.partition_count:
        out["partitionCount"] = pg.partition_count
    return out


def reservation(cr: CapacityReservation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "capacityReservationId": cr.id, "ownerId": ACCOUNT_ID,
        "capacityReservationArn": f"arn:aws:ec2:{cr.region}:{ACCOUNT_ID}:capacity-reservation/{cr.id}",
        "availabilityZoneId": cr.zone_id, "instanceType": cr.instance_type, "instancePlatform": cr.platform,
        "availabilityZone": cr.zone, "tenancy": cr.tenancy, "totalInstanceCount": cr.total,
        "availableInstanceCount": cr.available, "ebsOptimized": True, "ephemeralStorage": False,
        "state": cr.state, "startDate": cr.start, "endDate": cr.end,
        "endDateType": "limited" if cr.end else "unlimited", "instanceMatchCriteria": cr.match_criteria,
        "createDate": cr.created, "tagSet": tag_set(cr.tags), "reservationType": cr.reservation_type,
    }
    if cr.capacity_block_id:
        out["capacityBlockId"] = cr.capacity_block_id
    return out


def block(b: CapacityBlock) -> dict[str, Any]:
    out: dict[str, Any] = {
        "capacityBlockId": b.id, "availabilityZone": b.zone, "availabilityZoneId": b.zone_id,
        "capacityReservationIdSet": list(b.reservation_ids), "startDate": b.start, "endDate": b.end,
        "createDate": b.created, "state": b.state, "tagSet": tag_set(b.tags),
    }
    if b.ultraserver_type:
        out["ultraserverType"] = b.ultraserver_type
    return out


def block_offering(o: BlockOffering) -> dict[str, Any]:
    out: dict[str, Any] = {
        "capacityBlockOfferingId": o.id, "instanceType": o.instance_type, "availabilityZone": o.zone,
        "instanceCount": o.instance_count, "startDate": o.start, "endDate": o.end,
        "capacityBlockDurationHours": o.hours, "upfrontFee": f"{o.upfront_fee:.2f}", "currencyCode": "USD",
        "tenancy": "default", "capacityBlockDurationMinutes": 0, "zoneType": "availability-zone",
    }
    if o.ultraserver_type:
        out["ultraserverType"] = o.ultraserver_type
        out["ultraserverCount"] = o.ultraserver_count
    return out
