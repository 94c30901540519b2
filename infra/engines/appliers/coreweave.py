"""CoreWeave: the NodePool custom resource through the adapter's apply_node_pool (Kubernetes names
make it idempotent; targetNodes changes are applied in place)."""

from __future__ import annotations

from typing import Any

from infra.engines.appliers.base import ApplyContext, ExtraHandler, Handler, pool_of

# pulumi_kubernetes' token for a CustomResource: kubernetes:<apiVersion>:<kind>
NODEPOOL_TYPE = "kubernetes:compute.coreweave.com/v1alpha1:NodePool"


def _node_pool(ctx: ApplyContext, inputs: dict[str, Any], key: str) -> dict[str, Any]:
    spec = inputs.get("spec") or {}
    meta = inputs.get("metadata") or {}
    pool = pool_of(ctx, {"labels": meta.get("labels") or {}})
    return {"name": meta["name"], "instance_type": spec.get("instanceType"),
            "target_nodes": spec.get("targetNodes", 0), "count": spec.get("targetNodes", 0),
            "labels": spec.get("nodeLabels") or {}, "node_labels": spec.get("nodeLabels") or {},
            "spec": spec, "zone": pool.zone, "region": ctx.region, "pool": pool.pool,
            "workload": pool.workload, "capacity_type": pool.capacity_type.value, "idempotency_key": key}


HANDLERS: dict[str, Handler] = {
    NODEPOOL_TYPE: ExtraHandler("apply_node_pool", "delete_node_pool", _node_pool,
                                get_method="get_node_pool", in_place=True),
}
