"""AWS: instances through create_nodes (EC2 ClientToken = the idempotency key); placement groups,
capacity reservations and Capacity Blocks through the adapter's extras."""

from __future__ import annotations

from typing import Any

from infra.engines.appliers.base import (
    ApplyContext,
    ExtraHandler,
    Handler,
    NodeHandler,
    node_request,
    pool_of,
)
from providers.model import NodeRequest


def _instance(ctx: ApplyContext, inputs: dict[str, Any], key: str) -> NodeRequest:
    pool = pool_of(ctx, inputs)
    crs = (inputs.get("capacityReservationSpecification") or {}).get("capacityReservationTarget") or {}
    return node_request(ctx, pool, key, dict(inputs.get("tags") or {}), zone=inputs["availabilityZone"],
                        instance_type=inputs["instanceType"],
                        reservation_id=crs.get("capacityReservationId", ""),
                        placement_group=inputs.get("placementGroup", ""))


def _placement_group(ctx: ApplyContext, inputs: dict[str, Any], key: str) -> dict[str, Any]:
    return {"name": inputs["name"], "region": inputs.get("region", ctx.region),
            "strategy": inputs.get("strategy", "cluster"), "tags": inputs.get("tags") or {}}


def _capacity_reservation(ctx: ApplyContext, inputs: dict[str, Any], key: str) -> dict[str, Any]:
    return {"instance_type": inputs["instanceType"], "zone": inputs["availabilityZone"],
            "availability_zone": inputs["availabilityZone"], "count": inputs["instanceCount"],
            "instance_count": inputs["instanceCount"], "region": inputs.get("region", ctx.region),
            "tags": inputs.get("tags") or {}, "idempotency_key": key, "client_token": key}


def _capacity_block(ctx: ApplyContext, inputs: dict[str, Any], key: str) -> dict[str, Any]:
    tags = inputs.get("tags") or {}
    return {"offering_id": inputs["capacityBlockOfferingId"],
            "capacity_block_offering_id": inputs["capacityBlockOfferingId"],
            "region": inputs.get("region", ctx.region), "tags": tags,
            "ultraserver_type": tags.get("awan:ultraserver", ""), "idempotency_key": key}


HANDLERS: dict[str, Handler] = {
    "aws:ec2/instance:Instance": NodeHandler(_instance),
    "aws:ec2/placementGroup:PlacementGroup": ExtraHandler(
        "ensure_placement_group", "delete_placement_group", _placement_group),
    "aws:ec2/capacityReservation:CapacityReservation": ExtraHandler(
        "create_capacity_reservation", "cancel_capacity_reservation", _capacity_reservation),
    "aws:ec2/capacityBlockReservation:CapacityBlockReservation": ExtraHandler(
        "purchase_capacity_block", None, _capacity_block,
        delete_note="a purchased Capacity Block cannot be cancelled; it ends at its end date"),
}
