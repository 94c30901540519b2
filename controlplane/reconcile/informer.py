"""The loop's view of the workloads that hold (or are about to hold, or give back) capacity, kept in memory
and moved by the change feed, as a Kubernetes informer keeps its cache: a full list at start and at every
resync, then only the rows the feed names are read again. From it each pass knows, without a scan, which
stacks changed (their pools, hashed once per change), which workloads wait on a stack, which are being
deleted and which run a template.

The stack plan made from it is the one ``provisioning.plan`` makes from a full read of the store: the same
pools, in the same order (by workload id, then assignment), so the same hashes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from controlplane.reconcile.pools import pools_for
from controlplane.reconcile.provisioning import HOLDING, StackPlan, _holds_something, spec_hash
from controlplane.reconcile.restarts import is_run
from controlplane.store import workloads as repo
from controlplane.store.coltypes import utcnow
from controlplane.store.models import Stack, Workload, WorkloadState
from infra.spec import NodePoolSpec, StackSpec, desired_stacks, stack_name

_WAITING = (WorkloadState.PLACED.value, WorkloadState.PROVISIONING.value)
KEPT = (*HOLDING, WorkloadState.DELETING.value)


@dataclass(frozen=True, slots=True)
class Held:
    id: int
    key: str
    state: str
    pools: tuple[NodePoolSpec, ...]
    stacks: frozenset[str]
    run: bool          # spec.template: dispatch follows it


class WorkloadIndex:
    def __init__(self, config: dict[str, dict[str, str]] | None = None) -> None:
        self.config = config
        self.rows: dict[int, Held] = {}
        self.by_stack: dict[str, set[int]] = {}
        self._specs: dict[str, tuple[StackSpec, str]] = {}    # stack -> (desired spec, its hash)
        self._states: dict[str, set[int]] = {}                # state -> ids
        self._runs: set[int] = set()
        self._keys: dict[str, int] = {}

    # -- load ----------------------------------------------------------------------------------------
    def relist(self, s: Session) -> None:
        self.rows, self.by_stack, self._specs, self._states, self._runs, self._keys = {}, {}, {}, {}, set(), {}
        for row in repo.list_(s, states=KEPT, limit=10_000_000):
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
        for row in repo.by_ids(s, list(ids), light=False):
            if row.state in KEPT:
                touched |= self._put(row)
        for st in touched:
            self._specs.pop(st, None)
            if not self.by_stack.get(st):
                self.by_stack.pop(st, None)
        return touched

    def _put(self, row: Workload) -> set[str]:
        pools = tuple(pools_for([row])) if row.state in HOLDING else ()
        stacks = frozenset(stack_name(p.provider, p.region) for p in pools)
        h = self.rows[row.id] = Held(row.id, row.key, row.state, pools, stacks, is_run(row.spec))
        self._states.setdefault(h.state, set()).add(h.id)
        self._keys[h.key] = h.id
        if h.run:
            self._runs.add(h.id)
        for st in stacks:
            self.by_stack.setdefault(st, set()).add(row.id)
        return set(stacks)

    # -- questions -----------------------------------------------------------------------------------
    def id_of(self, key: str) -> int | None:
        return self._keys.get(key)

    def ids(self, states: Sequence[str]) -> set[int]:
        return set().union(*(self._states.get(st, set()) for st in states))

    def any_in(self, states: Sequence[str]) -> bool:
        return any(self._states.get(st) for st in states)

    def any_run(self) -> bool:
        return bool(self._runs)

    def spec(self, name: str) -> tuple[StackSpec, str]:
        """The stack's desired spec and hash, computed once per change of its pools."""
        got = self._specs.get(name)
        if got is None:
            pools = [p for i in sorted(self.by_stack.get(name, ())) for p in self.rows[i].pools]
            # Grouped as provisioning.plan groups them (by the pools' provider and region); a stack with no
            # pool left is named by its stored name, as plan's ``existing``.
            spec = desired_stacks(pools, existing=[] if pools else [name], config=self.config)[0]
            got = self._specs[name] = (spec, spec_hash(spec))
        return got

    def plan(self, s: Session, *, resync_s: float, force: Sequence[str] = ()) -> list[StackPlan]:
        """``provisioning.plan`` from the index: the stacks table is read (one row per stack), no workload."""
        now = utcnow()
        known = {st.name: st for st in s.scalars(select(Stack).options(defer(Stack.state)))}
        existing = {n for n, st in known.items() if _holds_something(st) or n in force}
        waiting = {st for i in self.ids(_WAITING) for st in self.rows[i].stacks}
        out = []
        for name in sorted(set(self.by_stack) | existing):
            spec, h = self.spec(name)
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
            out.append(StackPlan(spec, h, reason))
        return out
