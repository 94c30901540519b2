"""GCP: instances and TPU VMs through create_nodes (GCE requestId = the idempotency key, a UUID);
compact placement policies and queued resources through the adapter's extras."""

from __future__ import annotations

from typing import Any

from infra.components.tags import label_value
from infra.engines.appliers.base import (
    KEY_LABEL,
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
    policies = inputs.get("resourcePolicies") or []
    policies = [policies] if isinstance(policies, str) else policies
    aff = ((inputs.get("reservationAffinity") or {}).get("specificReservation") or {}).get("values") or [""]
    return node_request(ctx, pool, key, dict(inputs.get("labels") or {}), zone=inputs["zone"],
                        instance_type=inputs["machineType"], reservation_id=aff[0],
                        placement_group=policies[0] if policies else "", key_tag=KEY_LABEL)


def _tpu_vm(ctx: ApplyContext, inputs: dict[str, Any], key: str) -> NodeRequest:
    pool = pool_of(ctx, inputs)
    return node_request(ctx, pool, key, dict(inputs.get("labels") or {}), zone=inputs["zone"],
                        instance_type=pool.instance_type, key_tag=KEY_LABEL)


def _policy(ctx: ApplyContext, inputs: dict[str, Any], key: str) -> dict[str, Any]:
    gp = inputs.get("groupPlacementPolicy") or {}
    return {"name": inputs["name"], "region": inputs.get("region", ctx.region),
            "vm_count": gp.get("vmCount"), "collocation": gp.get("collocation", "COLLOCATED"),
            "idempotency_key": key}


def _queued(ctx: ApplyContext, inputs: dict[str, Any], key: str) -> dict[str, Any]:
    spec = ((inputs.get("tpu") or {}).get("nodeSpecs") or [{}])[0]
    node = spec.get("node") or {}
    pool = ctx.pools.get(inputs["name"].rsplit("-", 1)[0])
    labels = {"awan-stack": label_value(ctx.stack), "awan-owner": "awan"}
    if pool is not None:
        labels.update({"awan-pool": pool.pool, "awan-workload": label_value(pool.workload)})
    return {"name": inputs["name"], "zone": inputs["zone"], "accelerator_type": node.get("acceleratorType"),
            "instance_type": pool.instance_type if pool else "tpu-" + str(node.get("acceleratorType")),
            "slices": 1, "pool": pool.pool if pool else "", "workload": pool.workload if pool else "",
            "tags": labels,
            "runtime_version": node.get("runtimeVersion"), "node_id": spec.get("nodeId", inputs["name"]),
            "labels": labels, "spot": False, "idempotency_key": key}


HANDLERS: dict[str, Handler] = {
    "gcp:compute/instance:Instance": NodeHandler(_instance),
    "gcp:tpu/v2Vm:V2Vm": NodeHandler(_tpu_vm),
    "gcp:compute/resourcePolicy:ResourcePolicy": ExtraHandler(
        "ensure_compact_placement_policy", "delete_placement_policy", _policy),
    "gcp:tpu/v2QueuedResource:V2QueuedResource": ExtraHandler(
        "create_queued_resource", "delete_queued_resource", _queued),
}
