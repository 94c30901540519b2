"""OCI: instances through create_nodes (opc-retry-token = the idempotency key); compute capacity reservations
and cluster networks through the adapter's SupportsReservations and SupportsClusterNetworks. VCNs, subnets and instance configurations are virtual here
(kept in state only): the adapter makes the instance configuration a cluster network needs itself."""

from __future__ import annotations

from typing import Any

from infra.engines.appliers.base import (
    KEY_LABEL,
    ApplyContext,
    CapabilityHandler,
    Handler,
    NodeHandler,
    Outcome,
    need,
    node_request,
    pool_of,
    unresolved,
)
from providers.capabilities import ClusterNetworkRequest, ReservationRequest
from providers.model import NodeRequest


def _zone(ad: str) -> str:
    """Catalog zone of an AD name (``Uocm:US-ASHBURN-AD-1`` or already ``US-ASHBURN-AD-1``)."""
    return ad.rsplit(":", 1)[-1]


def _tags(inputs: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (inputs.get("freeformTags") or {}).items()}


def _instance(ctx: ApplyContext, inputs: dict[str, Any], key: str) -> NodeRequest:
    tags = _tags(inputs)
    pool = pool_of(ctx, {"tags": tags})
    return node_request(ctx, pool, key, tags, zone=_zone(str(inputs["availabilityDomain"])),
                        instance_type=inputs["shape"], reservation_id=inputs.get("capacityReservationId", ""),
                        key_tag=KEY_LABEL)


class ReservationHandler(CapabilityHandler):
    """A compute capacity reservation: the idempotency key is its retry token and a tag (``find`` adopts
    what a killed run made)."""

    def create(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome:
        caps = need(ctx.provider.supports_reservations(), ctx, "SupportsReservations")
        config = (inputs.get("instanceReservationConfigs") or [{}])[0]
        tags = _tags(inputs)
        pool = pool_of(ctx, {"tags": tags})
        got = caps.reserve(ReservationRequest(
            region=ctx.region, zone=_zone(str(inputs["availabilityDomain"])),
            instance_type=str(config.get("instanceShape")), count=int(config.get("reservedCount") or 0),
            idempotency_token=key, tags={**tags, KEY_LABEL: key}))
        return Outcome(ids=[got.id], info={"region": ctx.region, "pool": pool.pool})

    def find(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome | None:
        caps = ctx.provider.supports_reservations()
        found = caps.find_reservation(ctx.region, KEY_LABEL, key) if caps else None
        if found is None:
            return None
        return Outcome(ids=[found.id], info={"region": ctx.region, "pool": pool_of(ctx, {"tags": _tags(inputs)}).pool})

    def delete(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> None:
        caps = need(ctx.provider.supports_reservations(), ctx, "SupportsReservations")
        if ids:
            caps.release_reservation(str(info.get("region") or ctx.region), ids[0])


class ClusterNetworkHandler(CapabilityHandler):
    """A cluster network, applied again by name: a size change is made in place."""

    in_place = True

    def create(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome:
        nets = need(ctx.provider.supports_cluster_networks(), ctx, "SupportsClusterNetworks")
        tags = _tags(inputs)
        pool = pool_of(ctx, {"tags": tags})
        instance_pool = (inputs.get("instancePools") or [{}])[0]
        placement = inputs.get("placementConfiguration") or {}
        reservation = pool.reservation_id if pool.reserved and not unresolved(pool.reservation_id) else ""
        got = nets.ensure_cluster_network(ClusterNetworkRequest(
            region=ctx.region, zone=_zone(str(placement.get("availabilityDomain") or pool.zone)),
            name=str(inputs["displayName"]), instance_type=pool.instance_type,
            size=int(instance_pool.get("size") or 0), idempotency_token=key, tags=tags,
            reservation_id=reservation))
        return Outcome(ids=[got.id], info={"name": got.name, "region": ctx.region, "pool": pool.pool,
                                          "workload": pool.workload, "size": got.size})

    def delete(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> None:
        nets = need(ctx.provider.supports_cluster_networks(), ctx, "SupportsClusterNetworks")
        nets.delete_cluster_network(str(info.get("region") or ctx.region), str(info["name"]))

    def exists(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> bool | None:
        nets = ctx.provider.supports_cluster_networks()
        if nets is None or not info.get("name"):
            return None
        return nets.find_cluster_network(str(info.get("region") or ctx.region), str(info["name"])) is not None


HANDLERS: dict[str, Handler] = {
    "oci:Core/instance:Instance": NodeHandler(_instance),
    "oci:Core/computeCapacityReservation:ComputeCapacityReservation": ReservationHandler(),
    "oci:Core/clusterNetwork:ClusterNetwork": ClusterNetworkHandler(),
}
