"""The loop's view of the workloads that hold (or are about to hold, or give back) capacity, kept in memory
and moved by the change feed, as a Kubernetes informer keeps its cache: a full list at start and at every
resync, then only the rows the feed names are read again. From it each pass knows, without a scan, which
stacks changed (their pools, hashed once per change), which workloads wait on a stack, which are being
deleted and which run a template.

The stack plan made from it is the one ``provisioning.plan`` makes from a full read of the store: the same
pools, in the same order (by workload id, then assignment), so the same hashes.

Rows are read as columns (``repo.columns_of``, ``repo.columns_in``), not ORM objects: during a burst the feed
names thousands of rows a second (each placement, each stack result), and building ORM rows with their
assignments' collections was most of a re-read's CPU.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from controlplane.reconcile.pools import pools_for
from controlplane.reconcile.provisioning import HOLDING, StackPlan, _holds_something, spec_hash
from controlplane.reconcile.restarts import is_run
from controlplane.store import workloads as repo
from controlplane.store.coltypes import utcnow
from controlplane.store.models import ACTIVE_STATES, Stack, WorkloadState
from controlplane.timeline.usage import UsageKey, usage_of
from infra.spec import NodePoolSpec, StackSpec, desired_stacks, stack_name, stack_settings

_WAITING = (WorkloadState.PLACED.value, WorkloadState.PROVISIONING.value)
KEPT = (*HOLDING, WorkloadState.DELETING.value)
_ACTIVE = tuple(st.value for st in ACTIVE_STATES)
StackRow = Row[str, str, str, datetime | None, datetime]   # name, spec_hash, status, applied_at, updated_at


@dataclass(frozen=True, slots=True)
class Held:
    id: int
    key: str
    state: str
    pools: tuple[NodePoolSpec, ...]
    stacks: frozenset[str]
    run: bool          # spec.template: dispatch follows it
    # Per pool: (its stack, its name, its JSON as StackSpec.to_json writes it). A workload may span stacks
    # (replicas spread over providers or regions): each stack hashes only its own pools.
    texts: tuple[tuple[str, str, str], ...] = ()


_POOL_FIELDS = tuple(f.name for f in dataclasses.fields(NodePoolSpec))


def pool_dict(p: NodePoolSpec) -> dict[str, Any]:
    """``p.to_dict()`` without ``asdict``'s deep copy (a third of a re-list's time): every field is a plain
    value or an enum, written as its value. Anything else falls back to ``to_dict``."""
    d: dict[str, Any] = {}
    for f in _POOL_FIELDS:
        v = getattr(p, f)
        if isinstance(v, Enum):
            v = v.value
        elif not isinstance(v, str | int | float | bool):
            return p.to_dict()
        d[f] = v
    return d


class WorkloadIndex:
    def __init__(self, config: dict[str, dict[str, str]] | None = None) -> None:
        self.config = config
        self.rows: dict[int, Held] = {}
        self.by_stack: dict[str, set[int]] = {}
        self._specs: dict[str, tuple[StackSpec, str]] = {}    # stack -> (desired spec, its hash)
        self._hashes: dict[str, str] = {}
        self._states: dict[str, set[int]] = {}                # state -> ids
        self._runs: set[int] = set()
        self._keys: dict[str, int] = {}
        self._held: dict[str, tuple[tuple[Any, ...], bool]] = {}   # stack -> (its row's stamp, holds something)
        # GPUs in use (timeline.usage's figure), kept by adding and taking away each row's share.
        self._use: dict[int, list[tuple[UsageKey, int, float]]] = {}
        self._totals: dict[UsageKey, list[float]] = {}            # key -> [rows, GPUs, $/hour]

    # -- load ----------------------------------------------------------------------------------------
    def relist(self, s: Session) -> None:
        self.rows, self.by_stack, self._specs, self._states, self._runs, self._keys = {}, {}, {}, {}, set(), {}
        self._hashes = {}
        self._use, self._totals = {}, {}
        for row in repo.columns_in(s, KEPT):
            self._put(row)

    def refresh(self, s: Session, ids: Iterable[int]) -> set[str]:
        """Read the rows of ``ids`` again; returns the stacks whose pools may have changed."""
        ids = set(ids)
        touched: set[str] = set()
        for i in ids:
            old = self.rows.pop(i, None)
            if old is not None:
                touched |= old.stacks
                self._states.get(old.state, set()).discard(i)
                self._runs.discard(i)
                if self._keys.get(old.key) == i:
                    del self._keys[old.key]
                for st in old.stacks:
                    self.by_stack.get(st, set()).discard(i)
            self._unuse(i)
        for row in repo.columns_of(s, list(ids)):
            if row.state in KEPT:
                touched |= self._put(row)
        for st in touched:
            self._specs.pop(st, None)
            self._hashes.pop(st, None)
            if not self.by_stack.get(st):
                self.by_stack.pop(st, None)
        return touched

    def _put(self, row: repo.StoredWorkload) -> set[str]:
        pools = tuple(pools_for([row])) if row.state in HOLDING else ()
        names = tuple(stack_name(p.provider, p.region) for p in pools)
        stacks = frozenset(names)
        texts = tuple((st, p.pool, json.dumps(pool_dict(p), sort_keys=True)) for st, p in zip(names, pools, strict=True))
        h = self.rows[row.id] = Held(row.id, row.key, row.state, pools, stacks, is_run(row.spec), texts)
        self._states.setdefault(h.state, set()).add(h.id)
        self._keys[h.key] = h.id
        if row.state in _ACTIVE and row.deleted_at is None:
            share = self._use[row.id] = usage_of(row)
            for k, gpus, dollars in share:
                t = self._totals.setdefault(k, [0, 0, 0.0])
                t[0], t[1], t[2] = t[0] + 1, t[1] + gpus, t[2] + dollars
        if h.run:
            self._runs.add(h.id)
        for st in stacks:
            self.by_stack.setdefault(st, set()).add(row.id)
        return set(stacks)

    # -- questions -----------------------------------------------------------------------------------
    def _unuse(self, i: int) -> None:
        for k, gpus, dollars in self._use.pop(i, ()):
            t = self._totals[k]
            t[0], t[1], t[2] = t[0] - 1, t[1] - gpus, t[2] - dollars
            if t[0] <= 0:
                del self._totals[k]

    def usage(self) -> dict[UsageKey, tuple[int, float]]:
        """``timeline.usage.current_usage`` from the index."""
        return {k: (int(t[1]), round(t[2], 6)) for k, t in self._totals.items()}

    def id_of(self, key: str) -> int | None:
        return self._keys.get(key)

    def ids(self, states: Sequence[str]) -> set[int]:
        return set().union(*(self._states.get(st, set()) for st in states))

    def any_in(self, states: Sequence[str]) -> bool:
        return any(self._states.get(st) for st in states)

    def any_run(self) -> bool:
        return bool(self._runs)

    def spec(self, name: str) -> tuple[StackSpec, str]:
        """The stack's desired spec and hash (the spec is built only for a stack that is planned)."""
        got = self._specs.get(name)
        if got is None:
            # Only this stack's pools of each row (a row spanning stacks holds others'), grouped as
            # provisioning.plan groups them; a stack with no pool left is named by its stored name, as plan's
            # ``existing``, so the one spec returned is always this stack's.
            pools = [p for i in sorted(self.by_stack.get(name, ())) for p in self.rows[i].pools
                     if stack_name(p.provider, p.region) == name]
            spec = desired_stacks(pools, existing=[name], config=self.config)[0]
            got = self._specs[name] = (spec, self.hash(name))
        return got

    def hash(self, name: str) -> str:
        """``provisioning.spec_hash`` of the stack's desired spec, from the pools' JSON kept per row: one
        change re-hashes its stack's text, it does not rebuild every pool's dictionary."""
        got = self._hashes.get(name)
        if got is None:
            ids = self.by_stack.get(name, ())
            if not ids:
                return spec_hash(desired_stacks([], existing=[name], config=self.config)[0])
            own = next(p for i in ids for p in self.rows[i].pools if stack_name(p.provider, p.region) == name)
            provider, region = own.provider, own.region
            texts = sorted(((pool, t) for i in ids for st, pool, t in self.rows[i].texts if st == name),
                           key=lambda t: t[0])
            config = stack_settings(dict((self.config or {}).get(provider, {})), region)
            doc = (f'{{"config": {json.dumps(config, sort_keys=True)}, "pools": [{", ".join(t for _, t in texts)}], '
                   f'"provider": {json.dumps(provider)}, "region": {json.dumps(region)}}}')
            got = self._hashes[name] = hashlib.sha256(doc.encode()).hexdigest()
        return got

    def plan(self, s: Session, *, resync_s: float, force: Sequence[str] = ()) -> list[StackPlan]:
        """``provisioning.plan`` from the index: the stacks table is read (its small columns), no workload."""
        now = utcnow()
        known = {r.name: r for r in s.execute(select(Stack.name, Stack.spec_hash, Stack.status, Stack.applied_at,
                                                     Stack.updated_at))}
        existing = {n for n, r in known.items() if self._holds(s, r, force)}
        waiting = {st for i in self.ids(_WAITING) for st in self.rows[i].stacks}
        out = []
        for name in sorted(set(self.by_stack) | existing):
            h = self.hash(name)
            st = known.get(name)
            if st is None or st.spec_hash != h:
                reason = "changed"
            elif st.status == "failed":
                reason = "retry"
            elif name in force:
                reason = "drift"
            elif name in waiting and (st.applied_at is None or now - st.applied_at >= timedelta(seconds=resync_s)):
                reason = "resync"
            else:
                continue
            out.append(StackPlan(self.spec(name)[0], h, reason))
        return out

    def _holds(self, s: Session, r: StackRow, force: Sequence[str]) -> bool:
        """``provisioning._holds_something`` without reading every stack's spec and state each pass: a stack
        whose stored hash is that of its desired pools holds them; another is read once per write of it."""
        if r.name in force or r.status == "failed":
            return True
        if self.by_stack.get(r.name) and self.hash(r.name) == r.spec_hash:
            return True
        stamp = (r.spec_hash, r.status, r.applied_at, r.updated_at)
        got = self._held.get(r.name)
        if got is None or got[0] != stamp:
            st = s.get(Stack, r.name)
            got = self._held[r.name] = (stamp, st is not None and _holds_something(st))
        return got[1]
