"""CoreWeave: the NodePool custom resource through the adapter's SupportsNodePools (Kubernetes names
make it idempotent; targetNodes changes are applied in place)."""

from __future__ import annotations

from typing import Any

from infra.engines.appliers.base import ApplyContext, CapabilityHandler, Handler, Outcome, need, pool_of
from providers.capabilities import NodePoolRequest

# pulumi_kubernetes' token for a CustomResource: kubernetes:<apiVersion>:<kind>
NODEPOOL_TYPE = "kubernetes:compute.coreweave.com/v1alpha1:NodePool"


class NodePoolHandler(CapabilityHandler):
    in_place = True

    def create(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome:
        pools = need(ctx.provider.supports_node_pools(), ctx, "SupportsNodePools")
        spec = inputs.get("spec") or {}
        meta = inputs.get("metadata") or {}
        pool = pool_of(ctx, {"labels": meta.get("labels") or {}})
        req = NodePoolRequest(name=meta["name"], instance_type=str(spec.get("instanceType")), zone=pool.zone,
                              target_nodes=int(spec.get("targetNodes", 0)),
                              labels=dict(spec.get("nodeLabels") or {}), capacity_type=pool.capacity_type,
                              reservation_id=str(spec.get("reservation") or ""))
        got = pools.ensure_node_pool(req)
        return Outcome(ids=[got.name], info={"name": got.name, "pool": pool.pool, "zone": got.zone,
                                             "target_nodes": got.target_nodes})

    def delete(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> None:
        pools = need(ctx.provider.supports_node_pools(), ctx, "SupportsNodePools")
        pools.remove_node_pool(str(info.get("name") or (ids[0] if ids else "")))

    def exists(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> bool | None:
        pools = ctx.provider.supports_node_pools()
        name = str(info.get("name") or (ids[0] if ids else ""))
        if pools is None or not name:
            return None
        return pools.node_pool(name) is not None


HANDLERS: dict[str, Handler] = {NODEPOOL_TYPE: NodePoolHandler()}
