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
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, as_completed, wait
from functools import partial
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
    Outcome,
    applies_in_place,
    delete_nodes,
)
from infra.engines.base import ChangeSet, DriftItem, DriftReport, EngineError, ResourceChange, UpResult
from infra.engines.calls import CallBounds, CallLimits, Withdrawn, bounds_from_env
from infra.engines.mockruntime import DesiredResource, logical_id
from infra.engines.mockruntime_worker import forget, render
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
                 lock_timeout_s: float = 30.0, call_bounds: CallBounds | None = None) -> None:
        self._providers = providers
        # Cloud calls of one provider at once, over every stack this engine runs (AWAN_PROVIDER_CALL_CONCURRENCY).
        self.limits = CallLimits(call_bounds if call_bounds is not None else bounds_from_env())
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
                forget(stack_name)   # its last render, kept for its next run (rendercache), will not be used
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

    State is saved in groups: the pending records of a group in one write *before* its
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
        """Create along the dependency graph: a resource whose dependencies are done is applied at once,
        on the run's call pool, beside every other ready one (never more at once than the provider's
        bound). Crash safety is kept per call: every resource's pending record is written before its call
        is handed to the pool; records are written in groups (one write per group handed over, which
        grows with what is done, up to 256) and outcomes are written with the next group
        and at the end.

        The first failure stops new calls; the calls already under way finish and are recorded (a cloud
        call cannot be taken back), those handed over but not started are withdrawn (their records put
        back as they were), and the first failure is raised. Exactly the resources the cloud refused are
        ``failed``; dependents of a refused or unfinished resource are never tried."""
        if not ds:
            return
        by_urn = {d.urn: d for d in ds}
        waits: dict[str, set[str]] = {u: {e for e in (*d.deps, d.parent) if e in by_urn and e != u}
                                      for u, d in by_urn.items()}
        dependents: dict[str, list[str]] = {u: [] for u in by_urn}
        for u, w in waits.items():
            for e in w:
                dependents[e].append(u)
        ready = deque(u for u in by_urn if not waits[u])      # in the planned (topological) order
        inflight: dict[Future[Outcome], tuple[DesiredResource, Handler, dict[str, Any], dict[str, Any] | None]] = {}
        failure: BaseException | None = None
        done = 0

        def release(u: str) -> None:
            for v in dependents[u]:
                waits[v].discard(u)
                if not waits[v]:
                    ready.append(v)

        def outcome(fut: Future[Outcome]) -> None:
            nonlocal failure, done
            d, h, entry, prior = inflight.pop(fut)
            if fut.cancelled() or isinstance(fut.exception(), Withdrawn):   # never started: no call, no record
                if prior is None:
                    self.res.pop(d.urn, None)
                else:
                    self.res[d.urn] = prior
                return
            exc = fut.exception()
            if exc is None:
                self._created(d, entry, fut.result(), "created")
                done += 1
                release(d.urn)
            elif isinstance(exc, NotApplied):
                self._not_applied(d, entry, exc)
                release(d.urn)
            else:
                if isinstance(exc, ProviderError):
                    self._failed(entry, exc)
                # else: unknown whether the cloud did it; the pending record stays for the next run to adopt
                if failure is None:
                    failure = exc
                    pool.stop()                       # withdraw what has not started
                    for f in inflight:
                        f.cancel()

        pool = self.engine.limits.pool(self.ctx.provider.name)
        try:
            while True:
                if failure is None and ready and len(inflight) < pool.bound:
                    group: list[tuple[DesiredResource, tuple[Handler, dict[str, Any], dict[str, Any] | None]]] = []
                    want = max(pool.bound - len(inflight), min(256, done))
                    while ready and len(group) < want:
                        d = by_urn[ready.popleft()]
                        p = self._prepare(d)
                        if p is None:                 # state only (virtual, component): done now
                            release(d.urn)
                            continue
                        group.append((d, p))
                    if group:
                        self.save()                   # the pending records (and outcomes so far), first
                        for d, (h, entry, prior) in group:
                            inputs = resolve(d.inputs, self.ids)
                            fut = pool.submit(partial(h.create, self.ctx, inputs, entry["key"]))
                            inflight[fut] = (d, h, entry, prior)
                    continue
                if not inflight:
                    break
                finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                for fut in finished:
                    outcome(fut)
        except BaseException:
            # The run itself failed (a state write, an interrupt): record what the calls under way did.
            pool.stop()
            for f in inflight:
                f.cancel()
            pool.close()
            for fut in list(inflight):
                outcome(fut)
            raise
        finally:
            pool.close()
            self.save()
        if failure is not None:
            raise failure

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
            self._not_applied(d, entry, e)
            if save:
                self.save()
            return
        except ProviderError as e:
            self._failed(entry, e)
            if save:
                self.save()
            raise
        self._created(d, entry, out, verb)
        if save:
            self.save()

    def _created(self, d: DesiredResource, entry: dict[str, Any], out: Outcome, verb: str) -> None:
        entry.update(status="created", ids=out.ids, info=out.info, inputs=d.inputs)
        entry.pop("reason", None)
        self._say(f"  + {d.type} {d.name} {verb} ({', '.join(out.ids)})")

    def _not_applied(self, d: DesiredResource, entry: dict[str, Any], e: NotApplied) -> None:
        entry.update(status="not-applied", reason=str(e))
        self.not_applied.append(ResourceChange(d.urn, d.type, d.name, "create", str(e)))
        self._say(f"  ! {d.type} {d.name}: not applied: {e}")

    @staticmethod
    def _failed(entry: dict[str, Any], e: BaseException) -> None:
        entry.update(status="failed", reason=f"{type(e).__name__}: {e}")

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
        """Delete in reverse dependency order, in waves: a resource goes once nothing still to be deleted
        depends on it (names it as a dependency or parent). A wave's deletes run at once on the run's call
        pool: its nodes in one adapter call per group of up to 256 (the adapters take many nodes at once),
        every other resource in a call of its own. Each group is marked pending-delete in one write before
        its calls and dropped from the state in one write after."""
        remaining = list(urns)
        left = set(remaining)
        blocked: dict[str, set[str]] = {u: set() for u in remaining}     # u waits for these to go first
        for u in remaining:
            for e in diffing._edges(self.res[u]):
                if e in left and e != u:
                    blocked[e].add(u)
        while remaining:
            wave = [u for u in remaining if not blocked[u]] or remaining[:1]   # [:1]: a cycle, in the given order
            for i in range(0, len(wave), 256):
                self._delete_group(wave[i:i + 256])
            gone = set(wave)
            remaining = [u for u in remaining if u not in gone]
            for u in remaining:
                blocked[u] -= gone

    def _delete_group(self, chunk: list[str]) -> None:
        """State-only entries (virtual, never applied) need no call. On a failure the calls under way finish
        and are recorded, those not started keep the status they had, and the first failure is raised."""
        prior = {u: st for u in chunk if (st := self._mark_delete(u)) is not None}
        gone = [u for u in chunk if u not in prior]       # nothing in the cloud: state only
        if not prior:
            for u in gone:
                del self.res[u]
            return
        self.save()                                       # pending-delete, before the cloud calls
        nodes = [u for u in prior if isinstance(self.handlers[self.res[u]["type"]], NodeHandler)]
        calls: dict[Future[None], list[str]] = {}
        failure: BaseException | None = None
        pool = self.engine.limits.pool(self.ctx.provider.name)
        try:
            if nodes:
                ids = [self.res[u].get("ids") or [] for u in nodes]
                calls[pool.submit(partial(delete_nodes, self.ctx, ids))] = nodes
            for u in prior:
                if u not in nodes:
                    s = self.res[u]
                    h = self.handlers[s["type"]]
                    calls[pool.submit(partial(h.delete, self.ctx, s.get("info") or {}, s.get("ids") or []))] = [u]
            for fut in as_completed(list(calls)):
                exc = None if fut.cancelled() else fut.exception()
                us = calls[fut]
                if fut.cancelled() or isinstance(exc, Withdrawn):
                    for u in us:                          # never tried: the status it had
                        self.res[u]["status"] = prior[u]
                elif exc is None or isinstance(exc, NotApplied):
                    for u in us:
                        if exc is None:
                            self._deleted(u)
                        else:
                            s = self.res[u]
                            self.not_applied.append(ResourceChange(u, s["type"], s["name"], "delete", str(exc)))
                            self._say(f"  ! {s['type']} {s['name']}: left in the cloud, not deleted: {exc}")
                    gone.extend(us)
                elif failure is None:                     # tried and failed: stays pending-delete
                    failure = exc
                    pool.stop()
                    for f in calls:
                        f.cancel()
        finally:
            pool.close()
            for u in gone:
                del self.res[u]
            self.save()
        if failure is not None:
            raise failure

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
