"""The local engine: the stack's Pulumi program runs under Pulumi's mock runtime (infra.engines.
mockruntime, in a worker process: infra.engines.mockruntime_worker says why) and each recorded
resource is applied to the cloud through the provider adapter.

Crash safety (Crossplane style): before any cloud call that creates something, a ``pending-create``
record with the resource's idempotency key is written to the stack state. The key travels as the
cloud's own token (EC2 ClientToken, GCE requestId, ARM/Kubernetes names) and as a tag, so a run that
finds a pending record first adopts what the cloud already has for that key and only then creates
again with the same key: a worker killed at any point leaves no duplicate and no orphan.
Deletes are marked ``pending-delete`` first, for the same reason.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from infra.engines import diffing
from infra.engines.appliers import handlers_for
from infra.engines.appliers.base import (
    KEY_LABEL,
    KEY_TAG,
    ApplyContext,
    CapabilityHandler,
    Handler,
    NodeHandler,
    NotApplied,
    applies_in_place,
    delete_nodes,
)
from infra.engines.base import ChangeSet, DriftItem, DriftReport, EngineError, ResourceChange, UpResult
from infra.engines.mockruntime import DesiredResource, logical_id
from infra.engines.mockruntime_worker import render
from infra.engines.state import FileStateStore, StackStateStore, empty_state
from infra.spec import StackSpec, parse_stack_name
from providers.base import Provider
from providers.errors import ProviderError

BANNER = ("local engine: {why}; running programs under Pulumi's mock runtime and applying through "
          "the adapters")
_KEY_NS = uuid.UUID("5d6f0a52-7f0e-4d7e-9a57-61776e2d6b65")


def idempotency_key(stack: str, urn: str, generation: int, incarnation: str = "") -> str:
    """A UUID (GCE requestId must be one), stable for one generation of one incarnation of a resource.

    The incarnation is new each time a resource is created afresh (its record gone, or replaced): a
    resource deleted and later declared again under the same URN (a pool that comes back to a region, a
    workload resubmitted under its name) must not reuse the old key, or the cloud answers the new request
    with the old, finished operation (GCE keeps requestIds) and nothing is created. The key is recorded
    in the pending record before the cloud call, so a retry after a crash reuses it."""
    return str(uuid.uuid5(_KEY_NS, f"{stack}|{urn}|{generation}|{incarnation}"))


def resolve(value: Any, ids: Mapping[str, str]) -> Any:
    """Replace logical ids (what the mock runtime handed out) by the cloud ids they stand for."""
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, list):
        return [resolve(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, ids) for k, v in value.items()}
    return value


class LocalEngine:
    name = "local"

    def __init__(self, providers: Callable[[str], Provider], store: StackStateStore | None = None,
                 on_output: Callable[[str], None] | None = None, why: str = "Pulumi CLI not found",
                 lock_timeout_s: float = 30.0) -> None:
        self._providers = providers
        self.store: StackStateStore = store if store is not None else FileStateStore()
        self._emit = on_output or (lambda _line: None)
        self.banner = BANNER.format(why=why)
        self.lock_timeout_s = lock_timeout_s

    # -- the Engine interface ------------------------------------------------------------------
    def preview(self, stack: StackSpec) -> ChangeSet:
        self._emit(self.banner)
        stored = (self.store.get(stack.name) or empty_state(stack.name))["resources"]
        rec = render(stack)   # in a worker process: see mockruntime_worker
        return diffing.diff(rec.resources, stored).change_set(stored)

    def up(self, stack: StackSpec) -> UpResult:
        t0 = time.monotonic()
        self._emit(self.banner)
        with self.store.lock(stack.name, self.lock_timeout_s):
            state = self.store.get(stack.name) or empty_state(stack.name)
            rec = render(stack)
            ctx = self._context(stack)
            run = _Run(self, ctx, state, stack.name)
            run.settle()
            run.collect_strays()
            plan = diffing.diff(rec.resources, state["resources"])
            changes = plan.change_set(state["resources"])
            try:
                run.create_all(plan.creates)
                for d, keys in plan.updates:
                    run.update(d, keys)
                run.delete_all(plan.deletes)
            finally:
                state["outputs"] = resolve(rec.outputs, run.ids)
                run.save()
        return UpResult(stack.name, changes, state["outputs"], time.monotonic() - t0,
                        [self.banner, *run.messages], run.not_applied)

    def destroy(self, stack_name: str) -> UpResult:
        t0 = time.monotonic()
        self._emit(self.banner)
        provider, region = parse_stack_name(stack_name)
        with self.store.lock(stack_name, self.lock_timeout_s):
            state = self.store.get(stack_name)
            if state is None:
                return UpResult(stack_name, ChangeSet(), {}, 0.0, [f"stack {stack_name}: nothing to destroy"])
            ctx = self._context(StackSpec(provider, region))
            run = _Run(self, ctx, state, stack_name)
            run.settle(observe=False)
            res = state["resources"]
            urns = list(reversed(diffing.order_urns(list(res), {u: diffing._edges(s) for u, s in res.items()})))
            changes = ChangeSet(deletes=[ResourceChange(u, res[u]["type"], res[u]["name"], "delete") for u in urns])
            run.delete_all(urns)
            if state["resources"]:
                run.save()
            else:
                self.store.delete(stack_name)
        return UpResult(stack_name, changes, {}, time.monotonic() - t0, [self.banner, *run.messages],
                        run.not_applied)

    def refresh(self, stack: StackSpec) -> DriftReport:
        """Compare the state with the cloud. Read-only: the next ``up`` repairs what this reports."""
        self._emit(self.banner)
        report = DriftReport(stack.name, messages=[self.banner])
        with self.store.lock(stack.name, self.lock_timeout_s):
            state = self.store.get(stack.name) or empty_state(stack.name)
            ctx = self._context(stack)
            handlers = handlers_for(stack.provider)
            known: set[str] = set()
            pooled: set[str] = set()     # pools whose nodes an extra (VMSS, NodePool) manages
            for urn, s in state["resources"].items():
                h = handlers.get(s["type"])
                if h is None or s.get("status") == "not-applied":
                    continue
                known.update(s.get("ids") or [])
                if isinstance(h, CapabilityHandler) and s.get("info", {}).get("pool"):
                    pooled.add(s["info"]["pool"])
                alive = h.exists(ctx, s.get("info") or {}, s.get("ids") or [])
                if alive is False or s.get("status") in ("pending-create", "missing"):
                    report.missing.append(DriftItem(urn, s["type"], "missing",
                                                    f"{s['name']}: not found in {stack.provider}",
                                                    ",".join(s.get("ids") or [])))
            for n in ctx.nodes():
                tag = n.labels.get("awan:stack") or n.labels.get("awan-stack")
                if tag in (stack.name, stack.name.lower()) and n.id not in known and n.pool not in pooled \
                        and n.state.value not in ("terminated", "preempted"):
                    report.unmanaged.append(DriftItem("", f"{stack.provider} node", "unmanaged",
                                                      f"{n.name} (pool {n.pool or '?'}) is tagged with this "
                                                      "stack but not in its state", n.id))
        return report

    def outputs(self, stack_name: str) -> dict[str, Any]:
        return dict((self.store.get(stack_name) or {}).get("outputs") or {})

    def list_stacks(self) -> list[str]:
        return self.store.list()

    def recorded_state(self, stack_name: str) -> dict[str, Any] | None:
        return self.store.get(stack_name)

    # -- internals -----------------------------------------------------------------------------
    def _context(self, stack: StackSpec) -> ApplyContext:
        try:
            provider = self._providers(stack.provider)
        except KeyError:
            raise EngineError(f"provider {stack.provider!r} is not configured (stack {stack.name})") from None
        return ApplyContext(provider=provider, stack=stack.name, region=stack.region,
                            pools={p.pool: p for p in stack.pools}, config=dict(stack.config))


def _batches(items: list[Any], counts: Callable[[Any], bool], cap: int = 256) -> Iterator[list[Any]]:
    """Consecutive slices of ``items`` holding 1, 2, 4, ... up to ``cap`` items that ``counts`` (those
    that mean a cloud call): a small stack still saves around every call, a large one writes its
    (whole) state a few dozen times instead of twice per resource."""
    out: list[Any] = []
    n, size = 0, 1
    for it in items:
        out.append(it)
        if counts(it):
            n += 1
            if n >= size:
                yield out
                out, n, size = [], 0, min(cap, size * 2)
    if out:
        yield out


class _LiveIds(Mapping[str, str]):
    """Logical id -> cloud id of what the run has created so far, read through to the state (so it is
    never stale and costs nothing to keep up to date)."""

    def __init__(self, res: dict[str, dict[str, Any]], lids: dict[str, str]) -> None:
        self._res, self._lids = res, lids

    def __getitem__(self, lid: str) -> str:
        got = self.get(lid)
        if got is None:
            raise KeyError(lid)
        return str(got)

    def get(self, lid: str, default: Any = None) -> Any:      # resolve() asks this of every string
        urn = self._lids.get(lid)
        s = self._res.get(urn) if urn is not None else None
        if s is None or s.get("status") != "created" or not s.get("ids"):
            return default
        return str(s["ids"][0])

    def __iter__(self) -> Iterator[str]:
        return (lid for lid in self._lids if lid in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Run:
    """One up/destroy of one stack: applies and records.

    State is saved in batches (``_batches``): the pending records of a batch in one write *before* its
    cloud calls, the outcomes in one write after. A worker killed in between leaves pending records,
    which the next run adopts by key (``settle``) or creates again with the same key."""

    def __init__(self, engine: LocalEngine, ctx: ApplyContext, state: dict[str, Any], stack: str) -> None:
        self.engine, self.ctx, self.state, self.stack = engine, ctx, state, stack
        self.res: dict[str, dict[str, Any]] = state["resources"]
        self.handlers: dict[str, Handler] = handlers_for(parse_stack_name(stack)[0])
        self.messages: list[str] = []
        self.not_applied: list[ResourceChange] = []
        self._virtual_noted = False
        self._lids: dict[str, str] = {logical_id(u): u for u in self.res}
        self.ids = _LiveIds(self.res, self._lids)

    def save(self) -> None:
        self.state["serial"] = int(self.state.get("serial", 0)) + 1
        self.engine.store.put(self.stack, self.state)

    def _say(self, line: str) -> None:
        self.messages.append(line)
        self.engine._emit(line)

    def settle(self, observe: bool = True) -> None:
        """Adopt what interrupted runs left behind, and notice what vanished behind our back. Node
        resources are answered from one listing of the provider's nodes (``ApplyContext.nodes``)."""
        for _urn, s in self.res.items():
            h = self.handlers.get(s["type"])
            if h is None:
                continue
            status = s.get("status")
            if status in ("pending-create", "failed"):
                found = h.find(self.ctx, resolve(s["inputs"], self.ids), s["key"])
                if found is not None:
                    s.update(status="created", ids=found.ids, info=found.info)
                    self._say(f"  adopted {s['name']} ({', '.join(found.ids)}): created by an interrupted run")
            elif status == "pending-delete" or (observe and status == "created"):
                alive = h.exists(self.ctx, s.get("info") or {}, s.get("ids") or [])
                if alive is False:
                    s["status"] = "missing"
                    self._say(f"  {s['name']}: gone from the cloud; will be created again")
                elif status == "pending-delete":
                    s["status"] = "created"

    def collect_strays(self) -> None:
        """Delete live nodes that this engine created for this stack (they carry its stack tag and an
        idempotency key) but that no record of the state holds, by id or by key: left by a run killed
        between the cloud call and a record that was then lost, or by a delete the cloud did not finish.
        Karpenter garbage-collects such instances too; without it a workload keeps more nodes than it was
        assigned, for ever. Nodes made by the cloud itself (scale set and node pool members) carry no key
        and are left to the resource that owns them."""
        ids: set[str] = set()
        keys: set[str] = set()
        for s in self.res.values():
            ids.update(str(i) for i in s.get("ids") or [])
            if s.get("key"):
                keys.add(str(s["key"]))
        stack = {self.stack, self.stack.lower()}
        strays = []
        for n in self.ctx.nodes():
            key = n.labels.get(KEY_TAG) or n.labels.get(KEY_LABEL)
            tag = n.labels.get("awan:stack") or n.labels.get("awan-stack")
            if key and tag in stack and n.id not in ids and key not in keys and self.ctx.live(n.id) is not None:
                strays.append(n)
        if strays:
            self.ctx.provider.delete_nodes(strays)
            self.ctx.note_deleted([n.id for n in strays])
            self._say(f"  - {len(strays)} node(s) tagged with this stack but held by no record deleted: "
                      f"{', '.join(sorted(n.name for n in strays))}")

    def _entry(self, d: DesiredResource, status: str) -> dict[str, Any]:
        prior = self.res.get(d.urn) or {}
        self._lids[d.logical_id] = d.urn
        return {"type": d.type, "name": d.name, "inputs": d.inputs, "parent": d.parent, "deps": d.deps,
                "status": status, "ids": [], "info": {}, "gen": prior.get("gen", -1), "key": prior.get("key", "")}

    # -- creates ---------------------------------------------------------------------------------
    def create_all(self, ds: list[DesiredResource]) -> None:
        """Create in (dependency) order, in batches: one write of the batch's pending records, its cloud
        calls one by one (a dependent's inputs resolve to the ids its dependencies just got), one write
        of the outcomes."""
        for chunk in _batches(ds, lambda d: d.type in self.handlers):
            batch = [(d, p) for d in chunk if (p := self._prepare(d)) is not None]
            if not batch:
                continue
            self.save()                               # the pending records, before the cloud calls
            done = 0
            try:
                for d, (h, entry, _prior) in batch:
                    done += 1
                    self._apply(h, d, entry, "created", save=False)
            except Exception:
                # Calls not made need no pending record: put back what the state held before.
                for d, (_h, _e, prior) in batch[done:]:
                    if prior is None:
                        self.res.pop(d.urn, None)
                    else:
                        self.res[d.urn] = prior
                raise
            finally:
                self.save()

    def create(self, d: DesiredResource) -> None:
        p = self._prepare(d)
        if p is None:
            return
        h, entry, _prior = p
        self.save()                                   # the pending record, before the cloud call
        self._apply(h, d, entry, "created")

    def _prepare(self, d: DesiredResource) -> tuple[Handler, dict[str, Any], dict[str, Any] | None] | None:
        """Record ``d`` as pending-create (in memory); None for what has no cloud counterpart."""
        h = self.handlers.get(d.type)
        if h is None:
            self.res[d.urn] = self._entry(d, "virtual" if d.custom else "component")
            if d.custom and not self._virtual_noted:
                self._virtual_noted = True
                self._say("  network, cluster and template resources have no counterpart in the mock clouds: "
                          "kept in state as virtual")
            return None
        prior = self.res.get(d.urn)
        entry = self._entry(d, "pending-create")
        # Same key while nothing may exist yet (so the cloud deduplicates); a new one after a loss.
        same = (prior or {}).get("status") in ("pending-create", "not-applied") and (prior or {}).get("key")
        entry["gen"] = (prior or {}).get("gen", -1) + (0 if same else 1)
        entry["key"] = (prior or {})["key"] if same else idempotency_key(self.stack, d.urn, entry["gen"],
                                                                         uuid.uuid4().hex)
        self.res[d.urn] = entry
        return h, entry, prior

    def _apply(self, h: Handler, d: DesiredResource, entry: dict[str, Any], verb: str, save: bool = True) -> None:
        try:
            out = h.create(self.ctx, resolve(d.inputs, self.ids), entry["key"])
        except NotApplied as e:
            entry.update(status="not-applied", reason=str(e))
            self.not_applied.append(ResourceChange(d.urn, d.type, d.name, "create", str(e)))
            self._say(f"  ! {d.type} {d.name}: not applied: {e}")
            if save:
                self.save()
            return
        except ProviderError as e:
            entry.update(status="failed", reason=f"{type(e).__name__}: {e}")
            if save:
                self.save()
            raise
        entry.update(status="created", ids=out.ids, info=out.info, inputs=d.inputs)
        entry.pop("reason", None)
        if save:
            self.save()
        self._say(f"  + {d.type} {d.name} {verb} ({', '.join(out.ids)})")

    def update(self, d: DesiredResource, keys: list[str]) -> None:
        h = self.handlers.get(d.type)
        entry = self.res[d.urn]
        if h is None:
            entry.update(inputs=d.inputs, deps=d.deps, parent=d.parent)
            return
        if applies_in_place(h, keys):
            entry.update(deps=d.deps, parent=d.parent)
            self._apply(h, d, entry, f"updated [{', '.join(keys)}]")
            return
        self._say(f"  ~ {d.type} {d.name}: {', '.join(keys)} changed; replacing")
        self.delete(d.urn)
        self.create(d)

    # -- deletes ---------------------------------------------------------------------------------
    def delete(self, urn: str) -> None:
        self.delete_all([urn])

    def delete_all(self, urns: list[str]) -> None:
        """Delete in the order given (dependents first), in batches: one write marking the batch
        pending-delete, the cloud calls, one write dropping what is gone."""
        for chunk in _batches(urns, self._deletable):
            self._delete_batch(chunk)

    def _delete_batch(self, chunk: list[str]) -> None:
        """Nodes go to the adapter together (one ``delete_nodes``), flushed before any other cloud delete
        so that the order between a node and anything else holds; state-only entries (virtual, never
        applied) need no call."""
        prior = {u: st for u in chunk if (st := self._mark_delete(u)) is not None}
        if prior:
            self.save()                               # pending-delete, before the cloud calls
        gone: list[str] = []
        tried: set[str] = set()
        nodes: list[str] = []
        try:
            for u in chunk:
                if u not in prior:
                    gone.append(u)                    # nothing in the cloud: state only
                elif isinstance(self.handlers[self.res[u]["type"]], NodeHandler):
                    nodes.append(u)
                else:
                    self._delete_nodes(nodes, tried, gone)
                    tried.add(u)
                    self._delete_extra(u)
                    gone.append(u)
            self._delete_nodes(nodes, tried, gone)
        except Exception:
            # Deletes not attempted need no pending-delete mark: put back the status they had.
            for u, st in prior.items():
                if u not in tried:
                    self.res[u]["status"] = st
            raise
        finally:
            for u in gone:
                del self.res[u]
            if prior or gone:
                self.save()

    def _delete_nodes(self, nodes: list[str], tried: set[str], gone: list[str]) -> None:
        if not nodes:
            return
        tried.update(nodes)
        delete_nodes(self.ctx, [self.res[u].get("ids") or [] for u in nodes])
        for u in nodes:
            self._deleted(u)
        gone.extend(nodes)
        nodes.clear()

    def _delete_extra(self, urn: str) -> None:
        s = self.res[urn]
        try:
            self.handlers[s["type"]].delete(self.ctx, s.get("info") or {}, s.get("ids") or [])
            self._deleted(urn)
        except NotApplied as e:
            self.not_applied.append(ResourceChange(urn, s["type"], s["name"], "delete", str(e)))
            self._say(f"  ! {s['type']} {s['name']}: left in the cloud, not deleted: {e}")

    def _deletable(self, urn: str) -> bool:
        s = self.res[urn]
        return s["type"] in self.handlers and s.get("status") not in ("not-applied", "missing")

    def _mark_delete(self, urn: str) -> str | None:
        """Mark ``urn`` pending-delete when there may be something in the cloud to delete; returns the
        status it had (None: nothing to delete, state only)."""
        if not self._deletable(urn):
            return None
        s = self.res[urn]
        h = self.handlers[s["type"]]
        status = s.get("status")
        if status in ("pending-create", "failed"):
            found = h.find(self.ctx, resolve(s["inputs"], self.ids), s.get("key", ""))
            if found is not None:
                s.update(ids=found.ids, info=found.info)
        s["status"] = "pending-delete"
        return str(status)

    def _deleted(self, urn: str) -> None:
        s = self.res[urn]
        self._say(f"  - {s['type']} {s['name']} deleted ({', '.join(s.get('ids') or [])})")
