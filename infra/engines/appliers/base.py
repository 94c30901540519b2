"""The shape of an applier and the pieces every provider shares: node-backed resources (created with
``Provider.create_nodes``) and resources applied through a provider-specific extra method.

Optional abilities (placement groups, reservations, Capacity Blocks, scale sets, node pools) are typed
Protocols (providers/capabilities.py) reached through ``Provider.supports_*``; a provider without the
ability makes the resource *not applied*, with the reason, never a silent success.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from infra.spec import NodePoolSpec
from providers.base import Provider
from providers.capabilities import PlacementGroupRequest
from providers.catalog.model import CapacityType
from providers.model import Node, NodeRequest, NodeState

KEY_TAG, KEY_LABEL = "awan:resource", "awan-resource"   # the idempotency key, on what we create
_GONE = (NodeState.TERMINATED, NodeState.PREEMPTED)


class NotApplied(Exception):  # noqa: N818 - an outcome, not a failure of the engine
    """The resource is recorded but was not applied to the cloud; ``str(e)`` says why."""


@dataclass(slots=True)
class ApplyContext:
    provider: Provider
    stack: str
    region: str
    pools: dict[str, NodePoolSpec]
    config: dict[str, str] = field(default_factory=dict)
    _nodes: dict[str, Node] | None = None           # the run's view of the cloud's nodes, by id
    _keys: dict[str, list[str]] | None = None       # idempotency key -> node ids
    _pools: dict[str, dict[str, Node]] | None = None    # pool -> its nodes by id (a pool's create asks)
    # A stack's calls run on several threads at once (infra.engines.calls): the view above is shared.
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def nodes(self, refresh: bool = False) -> list[Node]:
        """The adapter's list_nodes, once per run (it is the expensive call: every node the provider
        holds for Awan). What the run itself creates and deletes is folded in (``note_created``,
        ``note_deleted``), so one stack's run lists once, not once per node it touches."""
        with self._lock:
            return list(self._index(refresh).values())

    def live(self, node_id: str) -> Node | None:
        with self._lock:
            n = self._index().get(node_id)
        return n if n is not None and n.state not in _GONE else None

    def live_by_key(self, key: str) -> list[Node]:
        with self._lock:
            self._index()
            assert self._keys is not None
            return [n for i in self._keys.get(key, ()) if (n := self.live(i)) is not None]

    def in_pool(self, pool: str) -> list[Node]:
        """The view's nodes of ``pool`` (live or not), in listing order: a dictionary lookup, where scanning
        every node for each pool's create made a stack's run O(pools x nodes)."""
        with self._lock:
            self._index()
            assert self._pools is not None
            return list(self._pools.get(pool, {}).values())

    def note_created(self, nodes: list[Node], key: str = "") -> None:
        with self._lock:
            if self._nodes is not None:
                self._add(nodes, key)

    def note_deleted(self, ids: list[str]) -> None:
        with self._lock:
            if self._nodes is not None:
                for i in ids:
                    n = self._nodes.pop(i, None)
                    if n is not None and self._pools is not None:
                        self._pools.get(n.pool, {}).pop(i, None)

    def forget_nodes(self) -> None:
        with self._lock:
            self._nodes = self._keys = self._pools = None

    def _index(self, refresh: bool = False) -> dict[str, Node]:
        # Called with the lock held: one listing even when several calls ask first at once.
        if self._nodes is None or refresh:
            self._nodes, self._keys, self._pools = {}, {}, {}
            # A stack is one region: where the adapter can list one region, ask that one alone (EC2 would
            # otherwise be asked once per region it serves, on every stack run).
            regional = self.provider.supports_regional_listing()
            self._add(regional.list_nodes_in(self.region) if regional is not None else self.provider.list_nodes())
        return self._nodes

    def _add(self, nodes: list[Node], key: str = "") -> None:
        assert self._nodes is not None and self._keys is not None and self._pools is not None
        for n in nodes:
            old = self._nodes.get(n.id)
            if old is not None and old.pool != n.pool:
                self._pools.get(old.pool, {}).pop(n.id, None)
            self._nodes[n.id] = n
            self._pools.setdefault(n.pool, {})[n.id] = n
            for k in {key, n.labels.get(KEY_TAG), n.labels.get(KEY_LABEL)} - {None, ""}:
                ids = self._keys.setdefault(str(k), [])
                if n.id not in ids:
                    ids.append(n.id)


@dataclass(slots=True)
class Outcome:
    ids: list[str]
    info: dict[str, Any] = field(default_factory=dict)   # what delete/exists need later (kept in state)


class Handler(Protocol):
    in_place: bool   # True: an input change is applied in place; False: delete, then create

    def create(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome: ...
    def find(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome | None: ...
    def delete(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> None: ...
    def exists(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> bool | None: ...


def tags_of(inputs: dict[str, Any]) -> dict[str, str]:
    return dict(inputs.get("tags") or inputs.get("labels") or {})


def pool_of(ctx: ApplyContext, inputs: dict[str, Any]) -> NodePoolSpec:
    t = tags_of(inputs)
    name = t.get("awan:pool") or t.get("awan-pool") or ""
    if name not in ctx.pools:
        raise NotApplied(f"no pool {name!r} in stack {ctx.stack} for this resource")
    return ctx.pools[name]


def unresolved(value: str | None) -> bool:
    """A logical id left after substitution: its resource has no cloud id (virtual or not applied)."""
    return bool(value) and str(value).startswith("lid-")


# -- nodes -----------------------------------------------------------------------------------------

@dataclass(slots=True)
class NodeHandler:
    """A resource that is one node: an EC2 instance, a GCE instance, a TPU VM.

    ``request`` turns resolved inputs into the NodeRequest (count 1, the idempotency key carried both
    as the cloud's own token and as a tag, so a rerun can adopt what a killed run created)."""

    request: Callable[[ApplyContext, dict[str, Any], str], NodeRequest]
    in_place: bool = False

    def create(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome:
        req = self.request(ctx, inputs, key)
        nodes = ctx.provider.create_nodes(req)
        ctx.note_created(nodes, key)
        return Outcome(ids=[n.id for n in nodes], info=_request_info(req))

    def find(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome | None:
        found = ctx.live_by_key(key)
        if not found:
            return None
        return Outcome(ids=[n.id for n in found], info=_request_info(self.request(ctx, inputs, key)))

    def delete(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> None:
        delete_nodes(ctx, [ids])

    def exists(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> bool | None:
        return bool(ids) and all(ctx.live(i) is not None for i in ids)


def delete_nodes(ctx: ApplyContext, id_lists: list[list[str]]) -> None:
    """Delete the live nodes among ``id_lists`` (one list per resource) in one adapter call: the
    adapters take many nodes at once (EC2 terminates a region's batch in one request)."""
    live = [n for ids in id_lists for i in ids if (n := ctx.live(i)) is not None]
    if live:
        ctx.provider.delete_nodes(live)
        ctx.note_deleted([n.id for n in live])


def _request_info(req: NodeRequest) -> dict[str, Any]:
    return {"pool": req.pool, "workload": req.workload, "zone": req.zone, "instance_type": req.instance_type,
            "capacity_type": req.capacity_type.value}


def node_request(ctx: ApplyContext, pool: NodePoolSpec, key: str, tags: dict[str, str], *,
                 zone: str, instance_type: str, reservation_id: str = "", placement_group: str = "",
                 key_tag: str = KEY_TAG) -> NodeRequest:
    ct = pool.capacity_type
    if ct is CapacityType.RESERVED and unresolved(reservation_id):
        raise NotApplied("its capacity reservation was not applied")
    return NodeRequest(
        pool=pool.pool, workload=pool.workload, region=pool.region, zone=zone, instance_type=instance_type,
        capacity_type=ct, count=1, idempotency_key=key,
        reservation_id="" if unresolved(reservation_id) else reservation_id,
        placement_group="" if unresolved(placement_group) else placement_group,
        tags={**tags, key_tag: key})


# -- resources applied through a typed capability ---------------------------------------------------

class CapabilityHandler(ABC):
    """A resource applied through one of the adapter's optional abilities (providers/capabilities.py),
    not as nodes. A provider without the ability makes the resource *not applied*, with the reason."""

    in_place: bool = False

    @abstractmethod
    def create(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome: ...

    def find(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome | None:
        # Most abilities are idempotent by name (ensure/apply) or by client token: creating again adopts.
        return None

    @abstractmethod
    def delete(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> None: ...

    def exists(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> bool | None:
        return None


class ResizableHandler(CapabilityHandler):
    """A pool resource the cloud resizes in place (a GKE node pool's node count) but makes anew for any other
    change (its machine type, placement policy, networks: GKE forces a new pool for those)."""

    in_place = True
    resize_keys: frozenset[str] = frozenset()

    def applies_in_place(self, keys: list[str]) -> bool:
        return set(keys) <= self.resize_keys


def applies_in_place(h: Handler, keys: list[str]) -> bool:
    """Whether a change of ``keys`` is applied to the live resource (else it is deleted, then created)."""
    return h.applies_in_place(keys) if isinstance(h, ResizableHandler) else h.in_place


C = TypeVar("C")


def need(ability: C | None, ctx: ApplyContext, protocol: str) -> C:
    """The ability, or NotApplied naming what the adapter lacks."""
    if ability is None:
        raise NotApplied(f"the {ctx.provider.name} adapter does not implement {protocol}")
    return ability


class PlacementGroupHandler(CapabilityHandler):
    """An EC2 cluster placement group or a GCE compact placement policy; ``request`` maps the resource's
    inputs to the request. Its id is what instances name (EC2: the name, GCE: the self link)."""

    def __init__(self, request: Callable[[ApplyContext, dict[str, Any], str], PlacementGroupRequest]) -> None:
        self.request = request

    def create(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome:
        groups = need(ctx.provider.supports_placement_groups(), ctx, "SupportsPlacementGroups")
        req = self.request(ctx, inputs, key)
        got = groups.ensure_placement(req)
        return Outcome(ids=[got.id], info={"region": req.region, "name": req.name})

    def delete(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> None:
        groups = need(ctx.provider.supports_placement_groups(), ctx, "SupportsPlacementGroups")
        groups.delete_placement(str(info.get("region") or ctx.region), str(info.get("name") or ""))
