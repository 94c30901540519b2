"""Failover: move workloads off pools and regions that failed, without anyone acting.

Three triggers, one action (the workload goes back to Pending with its assignments cleared, so the next
placement pass puts it on its next candidate under the same policies, and the next stack run of the old
stack deletes whatever the old pools left):

* a stack run fails with CapacityError/QuotaError: the pools it was creating are blocked (SkyPilot's
  failover block list; Karpenter keeps an insufficient-capacity cache for 3 minutes, hence 180 s);
* observation finds a Running workload's nodes gone (preempted, revoked): its pools are blocked;
* a region (or a whole provider) is DOWN in two health probes in a row (one failed probe is noise).

A Provisioning workload whose pools stay short of nodes for ``SHORT_BOUND_S`` is a capacity failure too
(observing.apply_observation), and so is one whose region cannot be listed for that long while its health
answers (reconcile/unobserved.py): nodes not seen are nodes not confirmed. One bound for both on purpose:
the question is the same (how long may a workload wait for nodes nobody has confirmed), and two settings
could move a workload sooner when its nodes are unseen than when they are visibly missing. A Running
workload is never moved because its region cannot be listed: its nodes were confirmed.

Level-triggered: each step reads the store, so a pass after a crash redoes only what is still needed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controlplane.logs import get_logger
from controlplane.reconcile import capacity_estimates, restarts
from controlplane.store import audit
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.models import Assignment, Workload, WorkloadState
from providers.errors import CapacityError, ProviderError, QuotaError
from providers.model import HealthStatus

log = get_logger("awan.failover")
PoolKey = tuple[str, str, str, str, str]   # provider, zone, instance type, capacity type, reservation id
BLOCK_TTL_S = 180.0
# A workload whose pools stay short of their nodes this long after its stack applied is a capacity
# failure, whatever the provider says (CKS shows a revoked zone as pending nodes, not as an error).
# Karpenter gives a node 15 minutes to register; GPU nodes of the clouds here come up in a few.
SHORT_BOUND_S = 180.0
MOVABLE = (WorkloadState.PLACED.value, WorkloadState.PROVISIONING.value, WorkloadState.STARTING.value,
           WorkloadState.RUNNING.value)


def is_pool_failure(e: BaseException) -> bool:
    """A provisioning error that retrying the same pool will not cure: a stock-out or quota, or any
    other non-retryable cloud error (SkyPilot fails over on these too). Another candidate may well
    work; retryable ones (throttling, an outage) are retried in place or handled by evacuation."""
    return isinstance(e, CapacityError | QuotaError) or (isinstance(e, ProviderError) and not e.retryable)


def key_of(a: Assignment) -> PoolKey:
    return (a.provider, a.zone, a.instance_type, a.capacity_type, a.reservation or "")


@dataclass
class BlockList:
    """Pools that failed recently, each until its own expiry. Thread-safe (stack workers add to it)."""

    ttl_s: float = BLOCK_TTL_S
    clock: Callable[[], float] = time.monotonic
    _until: dict[PoolKey, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def block(self, keys: Iterable[PoolKey]) -> None:
        with self._lock:
            until = self.clock() + self.ttl_s
            for k in keys:
                self._until[k] = max(self._until.get(k, 0.0), until)

    def active(self) -> frozenset[PoolKey]:
        with self._lock:
            now = self.clock()
            for k in [k for k, t in self._until.items() if t <= now]:
                del self._until[k]
            return frozenset(self._until)


@dataclass
class ShortWatch:
    """Since when each Provisioning workload has been short of nodes (seen short, or not seen at all: its
    region could not be listed); ``overdue`` past ``bound_s``.

    Kept in the store (controlplane/store/clocks, kind "short"): observation ``load``s the clocks in the
    transaction it applies in and writes back what changed (``stored``), fenced like its other writes, so a
    restarted controller, or another replica taking the lead, continues them: a workload short for most of
    the bound before a restart fails over at the bound, not a whole bound after it (a crash loop no longer
    holds it for ever). ``clock``: wall-clock seconds since the epoch, UTC (a test's own clock in tests): a
    start must mean the same in the next process, which a monotonic reading does not."""

    bound_s: float = SHORT_BOUND_S
    clock: Callable[[], float] = time.time
    _since: dict[str, float] = field(default_factory=dict)

    def overdue(self, key: str) -> float | None:
        """Seconds short when past the bound, else None (and the clock starts if it had not)."""
        now = self.clock()
        since = self._since.setdefault(key, now)
        return now - since if now - since >= self.bound_s else None

    def keep_only(self, keys: Iterable[str]) -> None:
        """Forget every workload not short this pass."""
        keep = set(keys)
        for k in [k for k in self._since if k not in keep]:
            del self._since[k]

    def load(self, since: Mapping[str, datetime]) -> None:
        """The clocks as the store has them (workload key -> start), replacing this process's."""
        self._since = {k: v.timestamp() for k, v in since.items()}

    def stored(self) -> dict[str, datetime]:
        """The clocks as the store keeps them."""
        return {k: datetime.fromtimestamp(v, UTC) for k, v in self._since.items()}


def replace(s: Any, row: Workload, *, actor: str, reason: str, trigger: str,
            blocked: Iterable[PoolKey] = (), planned: bool = False) -> None:
    """Back to Pending, assignments cleared, with the reason in the message and the audit log. ``planned``:
    the control plane moves it on purpose (off a Capacity Block before its end), so its run's next
    incarnation is not a retry and does not count against ``spec.run.maxRetries``."""
    old = [{"provider": a.provider, "region": a.region, "zone": a.zone, "instanceType": a.instance_type,
            "capacityType": a.capacity_type, "nodes": a.nodes} for a in row.assignments]
    row.assignments.clear()
    row.state, row.message = WorkloadState.PENDING.value, f"failover ({trigger}): {reason}"[:1000]
    row.placement = None
    row.running_at = None
    audit.record(s, actor=actor, action="failover", kind="workload", subject=row.name, team=row.team,
                 details={"trigger": trigger, "reason": reason[:500], "from": old,
                          "blocked": ["/".join(k[:4]) for k in blocked]})
    # A run whose pods were dispatched is over with its nodes: the next one (from its checkpoint) is a retry,
    # unless the move was planned.
    if planned:
        restarts.moved(row)
    else:
        restarts.end_incarnation(s, row, actor=actor, why=f"failover ({trigger}): {reason}")


def redact(text: str, own: Iterable[str], every: Iterable[str]) -> str:
    """``text`` with every name in ``every`` but ``own`` replaced: a message stored on one team's workload
    never names another team's pools (a stack's error may name any pool of the stack)."""
    mine = set(own)
    for name in sorted(set(every) - mine, key=len, reverse=True):
        if name and name not in mine:
            text = text.replace(name, "<another pool>")
    return text


def pools_named(text: str, stack_pools: Iterable[Any]) -> set[str]:
    """The pools of a stack that an error message names (``pool 'x': ...`` from the programs)."""
    return {p.pool for p in stack_pools if f"'{p.pool}'" in text or f'"{p.pool}"' in text}


def pools_failed_in_run(stack_pools: Iterable[Any], state: Mapping[str, Any] | None) -> set[str]:
    """Pool names of a stack whose resources the engine left ``failed`` (the one it was creating when
    the cloud said no). Empty when the state does not tell (the caller then takes every waiting pool)."""
    names = {p.pool for p in stack_pools}
    out: set[str] = set()
    for urn, r in ((state or {}).get("resources") or {}).items():
        if r.get("status") != "failed":
            continue
        for n in names:
            if n in (r.get("name", ""), r.get("parent", "")) or f"::{n}" in urn or str(r.get("name", "")).startswith(f"{n}-"):
                out.add(n)
    return out


def pools_created_in_run(stack_pools: Iterable[Any], state: Mapping[str, Any] | None) -> set[str]:
    """Pool names of a stack all of whose resources the engine recorded ``created``: a partial fill (the
    run created them before the cloud ran out); their workloads keep those nodes."""
    names = {p.pool for p in stack_pools}
    status: dict[str, set[str]] = {}
    for urn, r in ((state or {}).get("resources") or {}).items():
        for n in names:
            if n in (r.get("name", ""), r.get("parent", "")) or f"::{n}" in urn or str(r.get("name", "")).startswith(f"{n}-"):
                status.setdefault(n, set()).add(str(r.get("status")))
    return {n for n, st in status.items() if "created" in st and not st & {"failed", "pending-create", "missing"}}


def on_stack_failure(db: Database, stack_pools: Iterable[Any], error: BaseException, *,
                     state: Mapping[str, Any] | None, blocks: BlockList, actor: str,
                     fenced: Callable[[], bool]) -> list[str]:
    """A capacity/quota failure of a stack run: block the failed pools and re-place their workloads
    (only those not Running: a Running workload in the same stack is not affected). Returns the names."""
    pools = list(stack_pools)
    failed = pools_failed_in_run(pools, state)
    created = pools_created_in_run(pools, state) - failed
    in_stack = {p.workload for p in pools}
    every = {p.pool for p in pools}
    reason = f"{type(error).__name__}: {error}"
    moved: list[str] = []
    with db.session() as s:
        if not fenced():
            return moved
        rows = [r for r in repo.list_(s, states=[WorkloadState.PLACED.value, WorkloadState.PROVISIONING.value],
                                      limit=1_000_000, light=True) if r.key in in_stack]
        # The pools that failed; when the state does not tell, every pool not yet applied.
        keys = {key_of(a) for r in rows for a in r.assignments
                if (a.pool in failed if failed else r.state == WorkloadState.PLACED.value)}
        blocks.block(keys)
        # Workloads still waiting for the same pool would hit the same wall: move them too. Those
        # already applied (Provisioning) elsewhere in the stack keep their nodes, and so do those whose pools
        # this run created before the stock-out (a partial fill: the pool's estimate counts them).
        going = [(row, hit) for row in rows if (hit := [key_of(a) for a in row.assignments if key_of(a) in keys])
                 and (row.state == WorkloadState.PLACED.value or any(a.pool in failed for a in row.assignments))
                 and not all(a.pool in created for a in row.assignments if key_of(a) in keys)]
        notes: dict[PoolKey, str] = {}
        if isinstance(error, CapacityError):
            # A stock-out measures the pool: it holds what we keep there (capacity_estimates caps it).
            counts = capacity_estimates.held(s, keys, exclude=[row.key for row, _ in going])
            notes = {e.key: e.describe(e.stocked_out_at)
                     for e in capacity_estimates.record_stock_out(s, counts)}
        for row, hit in going:
            own = [a.pool for a in row.assignments]
            why = "; ".join([redact(reason, own, every), *(notes[k] for k in dict.fromkeys(hit) if k in notes)])
            replace(s, row, actor=actor, reason=why, trigger="provisioning", blocked=hit)
            moved.append(row.key)
    if moved:
        log.warning("capacity failure: re-placing", workloads=moved, error=reason)
    return moved


def trim_to_learned(db: Database, learned: capacity_estimates.Learned, providers: Iterable[str], *,
                    busy_stacks: Iterable[str], actor: str, fenced: Callable[[], bool]) -> list[str]:
    """Workloads still Placed (nothing created for them yet) in pools of ``providers`` whose start shrank
    since they were placed (a stock-out there taught it), beyond what the pool may now hold: back to
    Pending, to be placed within the caps next pass. Without this a stack of many over-filled pools met
    their stock-outs one run at a time (the engine stops at the first), each run moving one pool's
    workloads. Higher priority, then older, workloads keep their places; stacks running now
    (``busy_stacks``) are left alone (their nodes may be being created). Returns the keys moved."""
    from infra.spec import stack_name

    wanted, busy = set(providers), set(busy_stacks)
    moved: list[str] = []
    with db.session() as s:
        if not fenced():
            return moved
        rows = sorted(repo.list_(s, states=[WorkloadState.PLACED.value], limit=1_000_000, light=True),
                      key=lambda r: (-r.priority, r.id))
        kept: dict[PoolKey, int] = {}
        for row in rows:
            over: list[tuple[PoolKey, int]] = []
            for a in row.assignments:
                k = key_of(a)
                if k[0] not in wanted or k in learned.caps or stack_name(a.provider, a.region) in busy:
                    continue
                allowed = learned.allowed(k) if k[0] in learned.starts else None
                held = learned.usage.get(k, (0, 0))[1]    # nodes of workloads past Placed: created
                if allowed is not None and held + kept.get(k, 0) + a.nodes > allowed:
                    over.append((k, allowed))
            if not over:
                for a in row.assignments:
                    kept[key_of(a)] = kept.get(key_of(a), 0) + a.nodes
                continue
            why = "; ".join(f"{capacity_estimates.label(k)} may hold {n} nodes of ours until more are confirmed "
                            "(what the pools of its cloud that ran out held)" for k, n in dict(over).items())
            replace(s, row, actor=actor, reason=why, trigger="capacity learned", blocked=[k for k, _ in over])
            moved.append(row.key)
    if moved:
        log.warning("over what stock-outs taught: re-placing", workloads=len(moved), providers=sorted(wanted))
    return moved


def _move_where(db: Database, fenced: Callable[[], bool], hits: Callable[[Assignment], bool],
                move: Callable[[Any, Workload, list[Assignment]], None]) -> list[str]:
    """Apply ``move`` to every movable workload with an assignment that ``hits``, in one fenced
    transaction; returns their keys."""
    moved: list[str] = []
    with db.session() as s:
        if not fenced():
            return moved
        for row in repo.list_(s, states=list(MOVABLE), limit=1_000_000, light=True):
            hit = [a for a in row.assignments if hits(a)]
            if hit:
                move(s, row, hit)
                moved.append(row.key)
    return moved


def on_refused(db: Database, refused: Mapping[str, str], *, blocks: BlockList, actor: str,
               fenced: Callable[[], bool]) -> list[str]:
    """Pools the provider's components refused to build (the rest of the stack was applied): block each
    one's (provider, zone, instance type) and re-place its workload, with its own pool's reason only."""
    if not refused:
        return []

    def move(s: Any, row: Workload, hit: list[Assignment]) -> None:
        keys = [key_of(a) for a in hit]
        blocks.block(keys)
        replace(s, row, actor=actor, reason="; ".join(refused[a.pool] for a in hit), trigger="refused", blocked=keys)

    moved = _move_where(db, fenced, lambda a: a.pool in refused, move)
    if moved:
        log.warning("pools refused by their provider's components: re-placing", workloads=moved)
    return moved


@dataclass
class RegionWatch:
    """Debounced health: a (provider, region) is DOWN after ``confirm`` DOWN probes in a row; a provider
    whose health call fails ``confirm`` times in a row is DOWN everywhere."""

    confirm: int = 2
    _down_runs: dict[tuple[str, str], int] = field(default_factory=dict)
    _dead_runs: dict[str, int] = field(default_factory=dict)
    _was_down: set[tuple[str, str]] = field(default_factory=set)

    def update(self, health: Mapping[str, Any]) -> tuple[set[tuple[str, str]], set[str], set[tuple[str, str]]]:
        """``health``: provider -> ProviderHealth, or an exception when the call failed. Returns
        (down regions, down providers, regions that came back since they were last seen down)."""
        down_regions: set[tuple[str, str]] = set()
        down_providers: set[str] = set()
        seen: set[tuple[str, str]] = set()
        for name, h in health.items():
            if isinstance(h, BaseException):
                self._dead_runs[name] = self._dead_runs.get(name, 0) + 1
                if self._dead_runs[name] >= self.confirm:
                    down_providers.add(name)
                continue
            self._dead_runs.pop(name, None)
            for region, st in (h.regions or {}).items():
                k = (name, region)
                seen.add(k)
                self._down_runs[k] = self._down_runs.get(k, 0) + 1 if st == HealthStatus.DOWN else 0
                if self._down_runs[k] >= self.confirm:
                    down_regions.add(k)
            if not h.regions and h.status == HealthStatus.DOWN:   # a provider with one endpoint
                self._dead_runs[name] = self.confirm
                down_providers.add(name)
        now_down = down_regions | {(p, "*") for p in down_providers}
        answered = {n for n, h in health.items() if not isinstance(h, BaseException)}
        back = {k for k in self._was_down - now_down if k[0] in answered and (k[1] == "*" or k in seen)}
        self._was_down = (self._was_down - back) | now_down
        return down_regions, down_providers, back


def evacuate(db: Database, down_regions: set[tuple[str, str]], down_providers: set[str], *, actor: str,
             fenced: Callable[[], bool]) -> list[str]:
    """Re-place every workload holding an assignment in a DOWN region or provider."""
    if not down_regions and not down_providers:
        return []

    def move(s: Any, row: Workload, hit: list[Assignment]) -> None:
        where = sorted({f"{a.provider}/{a.region}" for a in hit})
        replace(s, row, actor=actor, reason=f"{', '.join(where)} DOWN", trigger="outage")

    moved = _move_where(db, fenced, lambda a: a.provider in down_providers or (a.provider, a.region) in down_regions,
                        move)
    if moved:
        log.warning("outage: re-placing", workloads=len(moved), regions=sorted(map("/".join, down_regions)),
                    providers=sorted(down_providers))
    return moved
