"""AWS: instances through create_nodes (EC2 ClientToken = the idempotency key); placement groups,
capacity reservations and Capacity Blocks through the adapter's typed capabilities."""

from __future__ import annotations

from typing import Any

from infra.engines.appliers.base import (
    KEY_TAG,
    ApplyContext,
    CapabilityHandler,
    Handler,
    NodeHandler,
    NotApplied,
    Outcome,
    PlacementGroupHandler,
    need,
    node_request,
    pool_of,
)
from providers.capabilities import (
    CapacityBlockOffer,
    CapacityBlockPurchase,
    CapacityBlockQuery,
    PlacementGroupRequest,
    Reservation,
    ReservationRequest,
)
from providers.errors import CapacityError
from providers.model import NodeRequest


def _instance(ctx: ApplyContext, inputs: dict[str, Any], key: str) -> NodeRequest:
    pool = pool_of(ctx, inputs)
    crs = (inputs.get("capacityReservationSpecification") or {}).get("capacityReservationTarget") or {}
    return node_request(ctx, pool, key, dict(inputs.get("tags") or {}), zone=inputs["availabilityZone"],
                        instance_type=inputs["instanceType"],
                        reservation_id=crs.get("capacityReservationId", ""),
                        placement_group=inputs.get("placementGroup", ""))


def _placement_group(ctx: ApplyContext, inputs: dict[str, Any], key: str) -> PlacementGroupRequest:
    return PlacementGroupRequest(region=inputs.get("region", ctx.region), name=inputs["name"],
                                 strategy=inputs.get("strategy", "cluster"), tags=dict(inputs.get("tags") or {}),
                                 idempotency_token=key)


def _outcome(r: Reservation, **info: Any) -> Outcome:
    return Outcome(ids=[r.id], info={"region": r.region, "zone": r.zone, "instance_type": r.instance_type,
                                     "count": r.count, **info})


class ReservationHandler(CapabilityHandler):
    """An On-Demand Capacity Reservation: the idempotency key is its ClientToken (a rerun after a crash
    gets the first reservation back, not a second one) and a tag (so ``find`` adopts it)."""

    def create(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome:
        caps = need(ctx.provider.supports_reservations(), ctx, "SupportsReservations")
        pool = pool_of(ctx, inputs)
        req = ReservationRequest(region=inputs.get("region", ctx.region), zone=inputs["availabilityZone"],
                                 instance_type=inputs["instanceType"], count=int(inputs["instanceCount"]),
                                 idempotency_token=key, tags={**(inputs.get("tags") or {}), KEY_TAG: key})
        return _outcome(caps.reserve(req), pool=pool.pool)

    def find(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome | None:
        caps = ctx.provider.supports_reservations()
        found = caps.find_reservation(inputs.get("region", ctx.region), KEY_TAG, key) if caps else None
        return _outcome(found, pool=pool_of(ctx, inputs).pool) if found else None

    def delete(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> None:
        caps = need(ctx.provider.supports_reservations(), ctx, "SupportsReservations")
        if ids:
            caps.release_reservation(str(info.get("region") or ctx.region), ids[0])


class CapacityBlockHandler(CapabilityHandler):
    """Buys a Capacity Block offering for the pool. Offering ids do not outlive their quote, so the
    engine asks for the pool's offerings now and buys the one named, or else an equal one in the pool's
    zone (the cheapest); none left is a stock-out (CapacityError), which moves the pool elsewhere.
    PurchaseCapacityBlock takes no client token: the block is tagged with the key and ``find`` adopts
    it, so a rerun after a crash buys nothing twice."""

    def create(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome:
        blocks = need(ctx.provider.supports_capacity_blocks(), ctx, "SupportsCapacityBlocks")
        pool = pool_of(ctx, inputs)
        region = inputs.get("region", ctx.region)
        offers = blocks.find_capacity_blocks(CapacityBlockQuery(region, pool.instance_type, count=pool.nodes))
        offer = self._choose(offers, inputs["capacityBlockOfferingId"], pool.zone)
        if offer is None:
            raise CapacityError(f"no Capacity Block offering for {pool.nodes} x {pool.instance_type} in "
                                f"{pool.zone} (asked for {inputs['capacityBlockOfferingId']})",
                                provider=ctx.provider.name, region=region, code="NoCapacityBlockOffering")
        r = blocks.purchase_capacity_block_offer(
            CapacityBlockPurchase(offer, tags={**(inputs.get("tags") or {}), KEY_TAG: key}))
        return _outcome(r, pool=pool.pool, offering=offer.id)

    @staticmethod
    def _choose(offers: list[CapacityBlockOffer], wanted: str, zone: str) -> CapacityBlockOffer | None:
        named = [o for o in offers if o.id == wanted]
        same_zone = sorted((o for o in offers if o.zone == zone), key=lambda o: (o.upfront_fee, o.starts_at))
        return (named or same_zone)[0] if named or same_zone else None

    def find(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome | None:
        caps = ctx.provider.supports_reservations()
        found = caps.find_reservation(inputs.get("region", ctx.region), KEY_TAG, key) if caps else None
        return _outcome(found, pool=pool_of(ctx, inputs).pool) if found else None

    def delete(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> None:
        raise NotApplied("a purchased Capacity Block cannot be cancelled; it ends at its end date")


HANDLERS: dict[str, Handler] = {
    "aws:ec2/instance:Instance": NodeHandler(_instance),
    "aws:ec2/placementGroup:PlacementGroup": PlacementGroupHandler(_placement_group),
    "aws:ec2/capacityReservation:CapacityReservation": ReservationHandler(),
    "aws:ec2/capacityBlockReservation:CapacityBlockReservation": CapacityBlockHandler(),
}
