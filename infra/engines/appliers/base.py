"""The shape of an applier and the pieces every provider shares: node-backed resources (created with
``Provider.create_nodes``) and resources applied through a provider-specific extra method.

Extras (``ensure_placement_group``, ``apply_scale_set``, ...) are optional on an adapter. They are
called by keyword, passing only the arguments the method declares; a missing method or a required
argument we cannot supply makes the resource *not applied*, with the reason, never a silent success.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from infra.spec import NodePoolSpec
from providers.base import Provider
from providers.catalog.model import CapacityType
from providers.errors import NotFoundError
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

    def nodes(self, refresh: bool = False) -> list[Node]:
        """The adapter's list_nodes, once per run (it is the expensive call: every node the provider
        holds for Awan). What the run itself creates and deletes is folded in (``note_created``,
        ``note_deleted``), so one stack's run lists once, not once per node it touches."""
        return list(self._index(refresh).values())

    def live(self, node_id: str) -> Node | None:
        n = self._index().get(node_id)
        return n if n is not None and n.state not in _GONE else None

    def live_by_key(self, key: str) -> list[Node]:
        self._index()
        assert self._keys is not None
        return [n for i in self._keys.get(key, ()) if (n := self.live(i)) is not None]

    def note_created(self, nodes: list[Node], key: str = "") -> None:
        if self._nodes is not None:
            self._add(nodes, key)

    def note_deleted(self, ids: list[str]) -> None:
        if self._nodes is not None:
            for i in ids:
                self._nodes.pop(i, None)

    def forget_nodes(self) -> None:
        self._nodes = self._keys = None

    def _index(self, refresh: bool = False) -> dict[str, Node]:
        if self._nodes is None or refresh:
            self._nodes, self._keys = {}, {}
            self._add(self.provider.list_nodes())
        return self._nodes

    def _add(self, nodes: list[Node], key: str = "") -> None:
        assert self._nodes is not None and self._keys is not None
        for n in nodes:
            self._nodes[n.id] = n
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


# -- extras ----------------------------------------------------------------------------------------

def call_extra(provider: Provider, method: str, **offered: Any) -> Any:
    fn: Callable[..., Any] | None = getattr(provider, method, None)
    if fn is None:
        raise NotApplied(f"the {provider.name} adapter has no {method}()")
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(**offered)
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in offered]
    if missing:
        raise NotApplied(f"{provider.name} adapter {method}() needs {', '.join(missing)}, which the engine "
                         f"does not know how to supply (offered: {', '.join(sorted(offered))})")
    return fn(**{k: v for k, v in offered.items() if k in params})


def result_id(result: Any, fallback: str) -> str:
    """Adapters return an id, a dict or a dataclass; take the id whatever the shape."""
    if isinstance(result, str) and result:
        return result
    keys = ("id", "reservation_id", "CapacityReservationId", "name", "Id")
    if isinstance(result, dict):
        return next((str(result[k]) for k in keys if result.get(k)), fallback)
    return next((str(getattr(result, k)) for k in keys if getattr(result, k, None)), fallback)


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


# -- extras as resources ---------------------------------------------------------------------------

@dataclass(slots=True)
class ExtraHandler:
    """A resource applied through adapter extras: ``create``/``delete`` are method names, ``args`` maps
    resolved inputs to the keyword arguments offered; ``get`` (optional) answers exists()."""

    create_method: str
    delete_method: str | None
    args: Callable[[ApplyContext, dict[str, Any], str], dict[str, Any]]
    get_method: str | None = None
    in_place: bool = False
    delete_note: str = ""

    def create(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome:
        offered = self.args(ctx, inputs, key)
        res = call_extra(ctx.provider, self.create_method, **offered)
        name = str(offered.get("name", ""))
        return Outcome(ids=[result_id(res, name)], info={k: v for k, v in offered.items()
                                                        if isinstance(v, str | int | float | bool)})

    def find(self, ctx: ApplyContext, inputs: dict[str, Any], key: str) -> Outcome | None:
        # Extras are idempotent by name (ensure/apply) or by client token: creating again adopts.
        return None

    def delete(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> None:
        if self.delete_method is None:
            raise NotApplied(self.delete_note or "cannot be deleted through the adapter")
        call_extra(ctx.provider, self.delete_method, **{**info, "id": ids[0] if ids else "",
                                                          "reservation_id": ids[0] if ids else ""})

    def exists(self, ctx: ApplyContext, info: dict[str, Any], ids: list[str]) -> bool | None:
        if self.get_method is None or getattr(ctx.provider, self.get_method, None) is None:
            return None
        try:
            return call_extra(ctx.provider, self.get_method, **info) is not None
        except NotApplied:
            return None
        except NotFoundError:
            return False
