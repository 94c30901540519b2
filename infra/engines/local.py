"""The local engine: the stack's Pulumi program runs under Pulumi's mock runtime (infra.engines.
mockruntime) and each recorded resource is applied to the cloud through the provider adapter.

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
from collections.abc import Callable
from typing import Any

from infra.engines import diffing
from infra.engines.appliers import handlers_for
from infra.engines.appliers.base import ApplyContext, ExtraHandler, Handler, NotApplied
from infra.engines.base import ChangeSet, DriftItem, DriftReport, EngineError, ResourceChange, UpResult
from infra.engines.mockruntime import DesiredResource, logical_id, run_program
from infra.engines.state import FileStateStore, StackStateStore, empty_state
from infra.programs import program_for
from infra.spec import StackSpec, parse_stack_name
from providers.base import Provider
from providers.errors import ProviderError

BANNER = ("local engine: {why}; running programs under Pulumi's mock runtime and applying through "
          "the adapters")
_KEY_NS = uuid.UUID("5d6f0a52-7f0e-4d7e-9a57-61776e2d6b65")


def idempotency_key(stack: str, urn: str, generation: int) -> str:
    """A UUID (GCE requestId must be one), stable for one generation of one resource."""
    return str(uuid.uuid5(_KEY_NS, f"{stack}|{urn}|{generation}"))


def resolve(value: Any, ids: dict[str, str]) -> Any:
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
        rec = run_program(program_for(stack), stack.name)
        return diffing.diff(rec.resources, stored).change_set(stored)

    def up(self, stack: StackSpec) -> UpResult:
        t0 = time.monotonic()
        self._emit(self.banner)
        with self.store.lock(stack.name, self.lock_timeout_s):
            state = self.store.get(stack.name) or empty_state(stack.name)
            rec = run_program(program_for(stack), stack.name)
            ctx = self._context(stack)
            run = _Run(self, ctx, state, stack.name)
            run.settle()
            plan = diffing.diff(rec.resources, state["resources"])
            changes = plan.change_set(state["resources"])
            try:
                for d in plan.creates:
                    run.create(d)
                for d, keys in plan.updates:
                    run.update(d, keys)
                for urn in plan.deletes:
                    run.delete(urn)
            finally:
                state["outputs"] = resolve(rec.outputs, run.id_map())
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
            for urn in urns:
                run.delete(urn)
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
                if isinstance(h, ExtraHandler) and s.get("info", {}).get("pool"):
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

    # -- internals -----------------------------------------------------------------------------
    def _context(self, stack: StackSpec) -> ApplyContext:
        try:
            provider = self._providers(stack.provider)
        except KeyError:
            raise EngineError(f"provider {stack.provider!r} is not configured (stack {stack.name})") from None
        return ApplyContext(provider=provider, stack=stack.name, region=stack.region,
                            pools={p.pool: p for p in stack.pools}, config=dict(stack.config))


class _Run:
    """One up/destroy of one stack: applies and records, saving state around every cloud call."""

    def __init__(self, engine: LocalEngine, ctx: ApplyContext, state: dict[str, Any], stack: str) -> None:
        self.engine, self.ctx, self.state, self.stack = engine, ctx, state, stack
        self.res: dict[str, dict[str, Any]] = state["resources"]
        self.handlers: dict[str, Handler] = handlers_for(parse_stack_name(stack)[0])
        self.messages: list[str] = []
        self.not_applied: list[ResourceChange] = []
        self._virtual_noted = False

    def save(self) -> None:
        self.state["serial"] = int(self.state.get("serial", 0)) + 1
        self.engine.store.put(self.stack, self.state)

    def id_map(self) -> dict[str, str]:
        return {logical_id(u): s["ids"][0] for u, s in self.res.items()
                if s.get("status") == "created" and s.get("ids")}

    def _say(self, line: str) -> None:
        self.messages.append(line)
        self.engine._emit(line)

    def settle(self, observe: bool = True) -> None:
        """Adopt what interrupted runs left behind, and notice what vanished behind our back."""
        for _urn, s in self.res.items():
            h = self.handlers.get(s["type"])
            if h is None:
                continue
            status = s.get("status")
            if status in ("pending-create", "failed"):
                found = h.find(self.ctx, resolve(s["inputs"], self.id_map()), s["key"])
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

    def _entry(self, d: DesiredResource, status: str) -> dict[str, Any]:
        prior = self.res.get(d.urn) or {}
        return {"type": d.type, "name": d.name, "inputs": d.inputs, "parent": d.parent, "deps": d.deps,
                "status": status, "ids": [], "info": {}, "gen": prior.get("gen", -1), "key": prior.get("key", "")}

    def create(self, d: DesiredResource) -> None:
        h = self.handlers.get(d.type)
        if h is None:
            self.res[d.urn] = self._entry(d, "virtual" if d.custom else "component")
            if d.custom and not self._virtual_noted:
                self._virtual_noted = True
                self._say("  network, cluster and template resources have no counterpart in the mock clouds: "
                          "kept in state as virtual")
            return
        prior = self.res.get(d.urn) or {}
        entry = self._entry(d, "pending-create")
        # Same key while nothing may exist yet (so the cloud deduplicates); a new one after a loss.
        same = prior.get("status") in ("pending-create", "not-applied") and prior.get("key")
        entry["gen"] = prior.get("gen", -1) + (0 if same else 1)
        entry["key"] = prior["key"] if same else idempotency_key(self.stack, d.urn, entry["gen"])
        self.res[d.urn] = entry
        self.save()                                   # the pending record, before the cloud call
        self._apply(h, d, entry, "created")

    def _apply(self, h: Handler, d: DesiredResource, entry: dict[str, Any], verb: str) -> None:
        try:
            out = h.create(self.ctx, resolve(d.inputs, self.id_map()), entry["key"])
        except NotApplied as e:
            entry.update(status="not-applied", reason=str(e))
            self.not_applied.append(ResourceChange(d.urn, d.type, d.name, "create", str(e)))
            self._say(f"  ! {d.type} {d.name}: not applied: {e}")
            self.save()
            return
        except ProviderError as e:
            entry.update(status="failed", reason=f"{type(e).__name__}: {e}")
            self.save()
            raise
        entry.update(status="created", ids=out.ids, info=out.info, inputs=d.inputs)
        entry.pop("reason", None)
        self.save()
        self._say(f"  + {d.type} {d.name} {verb} ({', '.join(out.ids)})")

    def update(self, d: DesiredResource, keys: list[str]) -> None:
        h = self.handlers.get(d.type)
        entry = self.res[d.urn]
        if h is None:
            entry.update(inputs=d.inputs, deps=d.deps, parent=d.parent)
            return
        if h.in_place:
            entry.update(deps=d.deps, parent=d.parent)
            self._apply(h, d, entry, f"updated [{', '.join(keys)}]")
            return
        self._say(f"  ~ {d.type} {d.name}: {', '.join(keys)} changed; replacing")
        self.delete(d.urn)
        self.create(d)

    def delete(self, urn: str) -> None:
        s = self.res[urn]
        h = self.handlers.get(s["type"])
        if h is not None and s.get("status") not in ("not-applied", "missing"):
            if s.get("status") in ("pending-create", "failed"):
                found = h.find(self.ctx, resolve(s["inputs"], self.id_map()), s.get("key", ""))
                if found is not None:
                    s.update(ids=found.ids, info=found.info)
            s["status"] = "pending-delete"
            self.save()
            try:
                h.delete(self.ctx, s.get("info") or {}, s.get("ids") or [])
                self._say(f"  - {s['type']} {s['name']} deleted ({', '.join(s.get('ids') or [])})")
            except NotApplied as e:
                self.not_applied.append(ResourceChange(urn, s["type"], s["name"], "delete", str(e)))
                self._say(f"  ! {s['type']} {s['name']}: left in the cloud, not deleted: {e}")
        del self.res[urn]
        self.save()
