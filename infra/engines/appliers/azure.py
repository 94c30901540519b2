"""Azure: the Flexible VM scale set through the adapter's apply_scale_set (ARM PUT by name: applying
again is idempotent, and a capacity change is applied in place)."""

from __future__ import annotations

from typing import Any

from infra.engines.appliers.base import ApplyContext, ExtraHandler, Handler, pool_of


def _scale_set(ctx: ApplyContext, inputs: dict[str, Any], key: str) -> dict[str, Any]:
    pool = pool_of(ctx, inputs)
    sku = inputs.get("sku") or {}
    profile = inputs.get("virtualMachineProfile") or {}
    return {"name": inputs["vmScaleSetName"], "region": inputs.get("location", ctx.region),
            "location": inputs.get("location", ctx.region), "zone": pool.zone,
            "resource_group": ctx.config.get("resource_group", ""), "sku": sku.get("name"),
            "instance_type": sku.get("name"), "capacity": sku.get("capacity", 0), "count": sku.get("capacity", 0),
            "spot": profile.get("priority") == "Spot", "capacity_type": pool.capacity_type.value,
            "pool": pool.pool, "workload": pool.workload, "tags": inputs.get("tags") or {},
            "idempotency_key": key}


HANDLERS: dict[str, Handler] = {
    "azure-native:compute:VirtualMachineScaleSet": ExtraHandler(
        "apply_scale_set", "delete_scale_set", _scale_set, get_method="get_scale_set", in_place=True),
}
