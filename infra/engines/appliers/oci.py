"""OCI: instances through create_nodes (opc-retry-token = the idempotency key); compute capacity reservations
and cluster networks through the adapter's extras. VCNs, subnets and instance configurations are virtual here
(kept in state only): the adapter makes the instance configuration a cluster network needs itself."""

from __future__ import annotations

from typing import Any

from infra.engines.appliers.base import (
    KEY_LABEL,
    ApplyContext,
    ExtraHandler,
    Handler,
    NodeHandler,
    node_request,
    pool_of,
    unresolved,
)
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


def _capacity_reservation(ctx: ApplyContext, inputs: dict[str, Any], key: str) -> dict[str, Any]:
    config = (inputs.get("instanceReservationConfigs") or [{}])[0]
    tags = _tags(inputs)
    return {"region": ctx.region, "zone": _zone(str(inputs["availabilityDomain"])),
            "instance_type": config.get("instanceShape"), "count": int(config.get("reservedCount") or 0),
            "idempotency_key": key, "tags": tags, "pool": pool_of(ctx, {"tags": tags}).pool}


def _cluster_network(ctx: ApplyContext, inputs: dict[str, Any], key: str) -> dict[str, Any]:
    tags = _tags(inputs)
    pool = pool_of(ctx, {"tags": tags})
    instance_pool = (inputs.get("instancePools") or [{}])[0]
    placement = inputs.get("placementConfiguration") or {}
    reservation = pool.reservation_id if pool.reserved and not unresolved(pool.reservation_id) else ""
    return {"name": inputs["displayName"], "region": ctx.region,
            "zone": _zone(str(placement.get("availabilityDomain") or pool.zone)), "instance_type": pool.instance_type,
            "size": int(instance_pool.get("size") or 0), "idempotency_key": key, "tags": tags,
            "reservation_id": reservation, "pool": pool.pool, "workload": pool.workload}


HANDLERS: dict[str, Handler] = {
    "oci:Core/instance:Instance": NodeHandler(_instance),
    "oci:Core/computeCapacityReservation:ComputeCapacityReservation": ExtraHandler(
        "create_capacity_reservation", "delete_capacity_reservation", _capacity_reservation),
    "oci:Core/clusterNetwork:ClusterNetwork": ExtraHandler(
        "apply_cluster_network", "delete_cluster_network", _cluster_network, get_method="get_cluster_network",
        in_place=True),
}
