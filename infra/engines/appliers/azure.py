"""Azure: AKS agent pools (and bare Flexible VM scale sets) through the adapter's SupportsScaleSets (ARM PUT
by name: applying again is idempotent, and a capacity change is applied in place).

An AKS agent pool is a VM scale set that AKS makes and joins to the cluster; the mock cloud has no AKS, so
the engine makes that scale set itself, named after the pool (``awan:scale-set`` tag), with the pool's
size, count, Spot priority and zone.
"""

from __future__ import annotations

from typing import Any

from infra.engines.appliers.base import ApplyContext, CapabilityHandler, Handler, Outcome, need, pool_of
from providers.capabilities import ScaleSetRequest
from providers.errors import NotFoundError


class ScaleSetHandler(CapabilityHandler):
    in_place = True

    def request(self, ctx: ApplyContext, inputs: dict[str, Any]) -> ScaleSetRequest:
        pool = pool_of(ctx, inputs)
        sku = inputs.get("sku") or {}
        profile = inputs.get("virtualMachineProfile") or {}
        return ScaleSetRequest(region=inputs.get("location", ctx.region), name=inputs["vmScaleSetName"],
                               sku=str(sku.get("name")), capacity=int(sku.get("capacity", 0)),
                               spot=profile.get("priority") == "Spot", zone=pool.zone,
                               tags=dict(inputs.get("tags") or {}))

    def create(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome:
        sets = need(ctx.provider.supports_scale_sets(), ctx, "SupportsScaleSets")
        pool = pool_of(ctx, inputs)
        req = self.request(ctx, inputs)
        got = sets.ensure_scale_set(req)
        return Outcome(ids=[got.id or req.name], info={"name": req.name, "region": req.region, "pool": pool.pool,
                                                      "capacity": req.capacity, "sku": req.sku})

    def delete(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> None:
        sets = need(ctx.provider.supports_scale_sets(), ctx, "SupportsScaleSets")
        sets.delete_scale_set(str(info["name"]))

    def exists(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> bool | None:
        sets = ctx.provider.supports_scale_sets()
        if sets is None or not info.get("name"):
            return None
        try:
            sets.get_scale_set(str(info["name"]))
        except NotFoundError:
            return False
        return True


class AgentPoolHandler(ScaleSetHandler):
    """An AKS agent pool, as the scale set AKS would make for it."""

    def request(self, ctx: ApplyContext, inputs: dict[str, Any]) -> ScaleSetRequest:
        pool = pool_of(ctx, inputs)
        tags = dict(inputs.get("tags") or {})
        return ScaleSetRequest(region=ctx.region, name=tags.get("awan:scale-set") or f"awan-{pool.pool}",
                               sku=str(inputs["vmSize"]), capacity=int(inputs.get("count") or 0),
                               spot=inputs.get("scaleSetPriority") == "Spot", zone=pool.zone, tags=tags)


HANDLERS: dict[str, Handler] = {"azure-native:compute:VirtualMachineScaleSet": ScaleSetHandler(),
                                "azure-native:containerservice:AgentPool": AgentPoolHandler()}
