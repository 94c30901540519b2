"""GCP: GKE node pools and TPU VMs through create_nodes (GCE requestId = the idempotency key, a UUID);
compact placement policies and queued resources through the adapter's typed capabilities.

A GKE node pool is its nodes: GKE makes them as GCE VMs of a managed instance group, and the mock cloud
has no GKE, so the engine creates the VMs itself, with the pool's labels, zone, Spot, reservation and
compact policy (``GkeNodePoolHandler``).
"""

from __future__ import annotations

from typing import Any

from infra.components.tags import label_value
from infra.engines.appliers.base import (
    KEY_LABEL,
    KEY_TAG,
    ApplyContext,
    CapabilityHandler,
    Handler,
    NodeHandler,
    Outcome,
    PlacementGroupHandler,
    ResizableHandler,
    delete_nodes,
    need,
    node_request,
    pool_of,
)
from providers.capabilities import PlacementGroupRequest, QueuedSlicesRequest
from providers.model import Node, NodeRequest


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


class GkeNodePoolHandler(ResizableHandler):
    """A GKE node pool of ``nodeCount`` nodes, applied as that many VMs in one ``create_nodes`` (the adapter
    derives each VM's name and requestId from the key and its index, so asking again makes nothing twice).

    ``create`` ensures the count (in place, as GKE resizes a pool): it keeps the pool's live VMs made under
    an earlier key (a node lost and the pool made again keeps its survivors), creates what is missing
    under this key, and deletes any surplus. Any other change makes the pool anew, as GKE does."""

    resize_keys = frozenset({"nodeCount"})

    def create(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome:
        cfg = inputs.get("nodeConfig") or {}
        pool = pool_of(ctx, {"labels": cfg.get("resourceLabels") or {}})
        want = int(inputs.get("nodeCount") or 0)
        mine = self._live(ctx, pool.pool)
        others = [n for n in mine if not _keyed(n, key)]
        keyed = [n for n in mine if _keyed(n, key)]
        surplus = max(0, len(mine) - want)
        if surplus:                               # shrink: the newest first, earlier keys' VMs before ours
            drop = (sorted(keyed, key=lambda n: n.name, reverse=True) + others)[:surplus]
            delete_nodes(ctx, [[n.id for n in drop]])
            others = [n for n in others if n not in drop]
            keyed = [n for n in keyed if n not in drop]
        need_new = want - len(others)
        made: list[Node] = keyed
        if need_new > len(keyed):
            req = self._request(ctx, inputs, key, pool.pool, need_new)
            made = ctx.provider.create_nodes(req)
            ctx.note_created(made, key)
        ids = [n.id for n in others] + [n.id for n in made]
        return Outcome(ids=ids, info={"pool": pool.pool, "zone": pool.zone, "count": want})

    @staticmethod
    def _live(ctx: ApplyContext, pool: str) -> list[Node]:
        stack = {ctx.stack, label_value(ctx.stack)}
        return [n for n in ctx.in_pool(pool) if ctx.live(n.id) is not None
                and (n.labels.get("awan-stack") or n.labels.get("awan:stack")) in stack]

    @staticmethod
    def _request(ctx: ApplyContext, inputs: dict[str, Any], key: str, pool_name: str, count: int) -> NodeRequest:
        cfg = inputs.get("nodeConfig") or {}
        pool = ctx.pools[pool_name]
        aff = (cfg.get("reservationAffinity") or {}).get("values") or [""]
        policy = (inputs.get("placementPolicy") or {}).get("policyName") or ""
        req = node_request(ctx, pool, key, dict(cfg.get("resourceLabels") or {}),
                           zone=(inputs.get("nodeLocations") or [pool.zone])[0], instance_type=cfg["machineType"],
                           reservation_id=aff[0], placement_group=policy, key_tag=KEY_LABEL)
        return NodeRequest(pool=req.pool, workload=req.workload, region=req.region, zone=req.zone,
                           instance_type=req.instance_type, capacity_type=req.capacity_type, count=count,
                           idempotency_key=key, reservation_id=req.reservation_id,
                           placement_group=req.placement_group, tags=req.tags)

    def find(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome | None:
        found = ctx.live_by_key(key)
        if not found:
            return None
        return Outcome(ids=[n.id for n in found], info={"pool": found[0].pool, "zone": found[0].zone,
                                                         "count": int(inputs.get("nodeCount") or 0)})

    def delete(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> None:
        delete_nodes(ctx, [ids])

    def exists(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> bool | None:
        return all(ctx.live(i) is not None for i in ids)


def _keyed(n: Node, key: str) -> bool:
    return key in (n.labels.get(KEY_LABEL), n.labels.get(KEY_TAG))


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
    "gcp:container/nodePool:NodePool": GkeNodePoolHandler(),
    "gcp:tpu/v2Vm:V2Vm": NodeHandler(_tpu_vm),
    "gcp:compute/resourcePolicy:ResourcePolicy": PlacementGroupHandler(_policy),
    "gcp:tpu/v2QueuedResource:V2QueuedResource": QueuedResourceHandler(),
}
