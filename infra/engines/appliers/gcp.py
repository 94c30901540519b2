"""GCP: instances and TPU VMs through create_nodes (GCE requestId = the idempotency key, a UUID);
compact placement policies and queued resources through the adapter's typed capabilities."""

from __future__ import annotations

from typing import Any

from infra.components.tags import label_value
from infra.engines.appliers.base import (
    KEY_LABEL,
    ApplyContext,
    CapabilityHandler,
    Handler,
    NodeHandler,
    Outcome,
    PlacementGroupHandler,
    need,
    node_request,
    pool_of,
)
from providers.capabilities import PlacementGroupRequest, QueuedSlicesRequest
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


def _policy(ctx: ApplyContext, inputs: dict[str, Any], key: str) -> PlacementGroupRequest:
    gp = inputs.get("groupPlacementPolicy") or {}
    count = gp.get("vmCount")
    return PlacementGroupRequest(region=inputs.get("region", ctx.region), name=inputs["name"],
                                 strategy=str(gp.get("collocation", "COLLOCATED")).lower(),
                                 vm_count=int(count) if count else None, idempotency_token=key)


class QueuedResourceHandler(CapabilityHandler):
    """TPU slices queued until capacity frees up (GCP provisions them together); idempotent by name."""

    def create(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome:
        queue = need(ctx.provider.supports_queued_resources(), ctx, "SupportsQueuedResources")
        spec = ((inputs.get("tpu") or {}).get("nodeSpecs") or [{}])[0]
        node = spec.get("node") or {}
        pool = ctx.pools.get(inputs["name"].rsplit("-", 1)[0])
        labels = {"awan-stack": label_value(ctx.stack), "awan-owner": "awan"}
        if pool is not None:
            labels.update({"awan-pool": pool.pool, "awan-workload": label_value(pool.workload)})
        req = QueuedSlicesRequest(
            zone=inputs["zone"], name=inputs["name"],
            instance_type=pool.instance_type if pool else "tpu-" + str(node.get("acceleratorType")),
            pool=pool.pool if pool else "", workload=pool.workload if pool else "", tags=labels)
        got = queue.queue_slices(req)
        return Outcome(ids=[got.name], info={"zone": got.zone, "name": got.name, "state": got.state,
                                             "pool": req.pool})

    def delete(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> None:
        queue = need(ctx.provider.supports_queued_resources(), ctx, "SupportsQueuedResources")
        queue.delete_queued_resource(str(info["zone"]), str(info.get("name") or (ids[0] if ids else "")))


HANDLERS: dict[str, Handler] = {
    "gcp:compute/instance:Instance": NodeHandler(_instance),
    "gcp:tpu/v2Vm:V2Vm": NodeHandler(_tpu_vm),
    "gcp:compute/resourcePolicy:ResourcePolicy": PlacementGroupHandler(_policy),
    "gcp:tpu/v2QueuedResource:V2QueuedResource": QueuedResourceHandler(),
}
