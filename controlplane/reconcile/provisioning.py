"""Step 2: desired stacks from stored placements, and one ``engine.up`` per stack that needs it.

A stack needs a run when what it should hold changed (its spec hash), when it last failed and its
backoff has passed, or when it holds workloads that are not Running yet and it was last applied more
than ``resync_s`` ago (Pulumi operator: re-sync at most every 60 s). Runs happen outside transactions;
only the result is written, under the leader fence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import defer

from controlplane.logs import get_logger
from controlplane.reconcile.failover import redact
from controlplane.reconcile.pools import pools_for
from controlplane.store import audit
from controlplane.store import workloads as repo
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import Stack, WorkloadState
from infra.engines.base import UpResult
from infra.spec import StackSpec, desired_stacks

log = get_logger("awan.provisioning")
# A finished run keeps its nodes (its assignments) until the idle timeout releases them.
HOLDING = (WorkloadState.PLACED.value, WorkloadState.PROVISIONING.value, WorkloadState.STARTING.value,
           WorkloadState.RUNNING.value, WorkloadState.SUCCEEDED.value, WorkloadState.FAILED.value)
_WAITING = (WorkloadState.PLACED.value, WorkloadState.PROVISIONING.value)


def spec_hash(spec: StackSpec) -> str:
    return hashlib.sha256(spec.to_json().encode()).hexdigest()


@dataclass(frozen=True)
class StackPlan:
    spec: StackSpec
    hash: str
    reason: str


def plan(db: Database, *, resync_s: float, config: dict[str, dict[str, str]] | None = None,
         force: Sequence[str] = ()) -> list[StackPlan]:
    now = utcnow()
    with db.session() as s:
        # Not light: the pools read each row's placement record (deferred, it would load one row at a time).
        rows = repo.list_(s, states=HOLDING, limit=1_000_000)
        pools = pools_for(rows)
        waiting = {r.key for r in rows if r.state in _WAITING}
        # The engine's state (the largest column: every resource of the stack) is read only for a stack
        # that neither holds pools nor failed, to see whether it still holds resources.
        known = {st.name: st for st in s.scalars(select(Stack).options(defer(Stack.state)))}
        # A stack that observation found holding nodes it should not (``force``) is run even when its
        # record says it holds nothing: its run deletes them.
        existing = [n for n, st in known.items() if _holds_something(st) or n in force]
    out = []
    for spec in desired_stacks(pools, existing=existing, config=config):
        h = spec_hash(spec)
        st = known.get(spec.name)
        if st is None or st.spec_hash != h:
            reason = "changed"
        elif st.status == "failed":
            reason = "retry"
        elif spec.name in force:
            reason = "drift"
        elif any(p.workload in waiting for p in spec.pools) and (
                st.applied_at is None or now - st.applied_at >= timedelta(seconds=resync_s)):
            reason = "resync"
        else:
            continue
        out.append(StackPlan(spec, h, reason))
    return out


def _holds_something(st: Stack) -> bool:
    """A stack that may hold cloud resources, so an empty desired spec must still be run to delete them.
    A stack whose first run failed part way has no applied spec but may have created nodes before the
    error (its engine state says so); its workloads may since have moved away."""
    if st.spec and st.spec.get("pools"):
        return True
    if st.status == "failed":
        return True
    return bool((st.state or {}).get("resources"))


def record_success(db: Database, p: StackPlan, result: UpResult, *, actor: str, fenced: Callable[[], bool]) -> bool:
    with db.session() as s:
        if not fenced():
            return False
        st = s.get(Stack, p.spec.name, with_for_update=True)
        if st is None:
            st = Stack(name=p.spec.name)
            s.add(st)
        st.spec, st.spec_hash = {"provider": p.spec.provider, "region": p.spec.region,
                                 "pools": [x.to_dict() for x in p.spec.pools]}, p.hash
        st.status, st.message, st.attempts, st.applied_at = "ok", result.summary(), 0, utcnow()
        names = {x.workload for x in p.spec.pools}
        for row in repo.placed_of(s, [(x.team, x.workload) for x in p.spec.pools]):
            if row.key in names:
                row.state, row.message = WorkloadState.PROVISIONING.value, f"stack {p.spec.name} applied"
                audit.record(s, actor=actor, action="provisioning", kind="workload", subject=row.name,
                             team=row.team, details={"stack": p.spec.name})
        changes = result.counts
        if any(changes.get(k) for k in ("create", "update", "delete")) or p.reason == "changed":
            audit.record(s, actor=actor, action="stack-applied", kind="stack", subject=p.spec.name,
                         details={"reason": p.reason, "changes": changes, "pools": sorted(names)})
    return True


def record_failure(db: Database, p: StackPlan, error: BaseException, *, actor: str, max_attempts: int,
                   fenced: Callable[[], bool], failed_pools: Iterable[str] = ()) -> int:
    """Returns the attempts so far. After ``max_attempts`` the workloads waiting on the stack fail: only
    those whose pools failed when the engine or the error says which (``failed_pools``), every waiting
    one otherwise. Each one's message names no pool but its own."""
    with db.session() as s:
        if not fenced():
            return 0
        st = s.get(Stack, p.spec.name, with_for_update=True)
        if st is None:
            st = Stack(name=p.spec.name)
            s.add(st)
        st.status, st.message = "failed", f"{type(error).__name__}: {error}"[:2000]
        st.attempts = (st.attempts or 0) + 1
        audit.record(s, actor=actor, action="stack-failed", kind="stack", subject=p.spec.name,
                     details={"error": st.message, "attempt": st.attempts})
        if st.attempts >= max_attempts:
            names = {x.workload for x in p.spec.pools}
            every = {x.pool for x in p.spec.pools}
            culprits = set(failed_pools)
            for row in repo.list_(s, states=[WorkloadState.PLACED.value, WorkloadState.PROVISIONING.value],
                                  limit=1_000_000, light=True):
                own = {a.pool for a in row.assignments}
                if row.key in names and (not culprits or own & culprits):
                    row.state = WorkloadState.FAILED.value
                    why = redact(st.message, own, every)
                    row.message = f"stack {p.spec.name} failed {st.attempts} times: {why}"[:1000]
                    row.assignments.clear()  # its pools leave the stack on the next run
                    audit.record(s, actor=actor, action="failed", kind="workload", subject=row.name,
                                 team=row.team, details={"stack": p.spec.name, "error": why})
        return st.attempts


def stack_names(db: Database) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(Stack.name)))
