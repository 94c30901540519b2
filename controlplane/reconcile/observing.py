"""Step 3: observe nodes, mark workloads Running when all their nodes run (or back to Provisioning on
drift), and finish deletions once the stack no longer holds the workload and no node of it is left.

The unit of listing is a scope (``scopes``): one region of a provider that lists region by region
(providers.capabilities.SupportsRegionalListing), else the whole provider. A region that fails or does not
answer is "unknown" alone: workloads there are held as they are (neither moved on nor marked as having lost
their nodes) while the provider's other regions are observed and transition. Held within a bound: a
Provisioning workload's short-of-nodes clock keeps running while its region is unknown (unobserved.py).

Observing (the list calls, which wait on clouds) is shared by every replica on PostgreSQL
(``SharedObserver``): each round every replica takes its fair share of the scopes with an observe lease,
lists them, and publishes what it saw, fenced by the lease. Applying it (the transitions) stays with the
leader, which reads the latest published observation of every scope: see controlplane/reconcile/sharing
for why. SQLite (one replica) lists every scope itself, all at once (``observe``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.logs import get_logger
from controlplane.model.identity import workload_key
from controlplane.reconcile import failover, restarts
from controlplane.reconcile.fleet import Observation, error_reason, scope_key, scope_of
from controlplane.reconcile.metrics import LoopMetrics
from controlplane.reconcile.sharing import WorkShare
from controlplane.reconcile.unobserved import Place, Unobserved, describe
from controlplane.store import audit, clocks, work_leases
from controlplane.store import workloads as repo
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import Stack, Workload, WorkloadState
from infra.spec import stack_name
from providers import fanout
from providers.base import Provider
from providers.catalog.model import CapacityType
from providers.model import LABEL_STACK, TAG_STACK, Node, NodeState

log = get_logger("awan.observing")

_WATCHED = (WorkloadState.PLACED.value, WorkloadState.PROVISIONING.value, WorkloadState.STARTING.value,
            WorkloadState.RUNNING.value)
_UP = (WorkloadState.STARTING.value, WorkloadState.RUNNING.value)   # nodes were all up
# List calls in flight at once in a round: every region of a few clouds (20 regions on each of five is 100
# calls of mostly waiting); beyond this they queue, which a round of that size can afford.
MAX_LISTS_AT_ONCE = 64


@dataclass(frozen=True)
class Scope:
    """One list call of a round: a whole provider (``region`` None) or one region of it."""

    key: str
    provider: str
    region: str | None


def scopes(providers: Mapping[str, Provider], regions: Mapping[str, Collection[str]] | None = None) -> list[Scope]:
    """The list calls a round makes: one per region of a provider that lists region by region, one per
    provider otherwise. A regional provider's regions are those of ``regions`` (the store's stacks,
    stack_regions) and those its configuration names (``configured_regions``).

    The stacks' regions because Awan's nodes are made only by stack runs and a stack's row stays when it is
    emptied: they are every region Awan may have nodes in, those dropped from the configuration since
    included (a stack left there still holds nodes; not listing it would read its workloads as having lost
    them). The configured regions as well, because the operator named them and they are few, and they catch
    nodes whose stack row is gone (a store restored from an older backup). Not every region the adapter
    serves when none are configured: 44 Azure or 29 GCP catalog regions (about 90 GCE zones) would be as
    many list calls a round, nearly all for regions where Awan never made a node."""
    out: list[Scope] = []
    for name in sorted(providers):
        lister = providers[name].supports_regional_listing()
        if lister is None:
            out.append(Scope(name, name, None))
            continue
        wanted = set(lister.configured_regions()) | set((regions or {}).get(name, ()))
        out += [Scope(scope_key(name, r), name, r) for r in sorted(wanted)]
    return out


def stack_regions(db: Database, providers: Collection[str]) -> dict[str, set[str]]:
    """provider -> the regions the store has stacks of it in (the desired state's regions). Stack names are
    stack_name(provider, region); should one provider name prefix another, the longest wins."""
    prefixes = sorted(((stack_name(p, ""), p) for p in providers), key=lambda t: -len(t[0]))
    out: dict[str, set[str]] = {}
    with db.session() as s:
        for name in s.scalars(select(Stack.name)):
            for prefix, provider in prefixes:
                if name.startswith(prefix) and len(name) > len(prefix):
                    out.setdefault(provider, set()).add(name[len(prefix):])
                    break
    return out


def list_scopes(providers: Mapping[str, Provider], units: Sequence[Scope],
                metrics: LoopMetrics) -> dict[str, list[Node] | BaseException]:
    """Every unit's list call, all at once: a round waits for the slowest call, not for their sum (100 ms
    a list over 20 regions is 0.1 s, not 2 s). An error is that unit's answer (its scope is "unknown")."""
    def one(u: Scope) -> list[Node]:
        p = providers[u.provider]
        if u.region is None:
            return p.list_nodes()
        lister = p.supports_regional_listing()
        assert lister is not None, f"{u.provider} lost its regional listing"
        return lister.list_nodes_in(u.region)

    answers = fanout.each(units, one, at_once=MAX_LISTS_AT_ONCE, name="awan-observe")
    for u, got in zip(units, answers, strict=True):
        if isinstance(got, BaseException):
            metrics.provider_errors.labels(u.provider, error_reason(got)).inc()
            log.warning("list_nodes failed", provider=u.provider, region=u.region, error=str(got))
    return {u.key: got for u, got in zip(units, answers, strict=True)}


def observe(providers: Mapping[str, Provider], metrics: LoopMetrics,
            regions: Mapping[str, Collection[str]] | None = None) -> Observation:
    """Every provider's nodes (region by region where it lists so: ``scopes``), asked at once. An error
    leaves that scope out (observation says "unknown" for it, never "no nodes")."""
    obs = Observation()
    for key, got in list_scopes(providers, scopes(providers, regions), metrics).items():
        if isinstance(got, BaseException):
            obs.failed[key] = error_reason(got)
        else:
            obs.nodes.extend(got)
            obs.observed.add(key)
    return obs


def node_doc(n: Node) -> dict[str, Any]:
    return dataclasses.asdict(n)


def node_of(d: dict[str, Any]) -> Node:
    return Node(**{**d, "capacity_type": CapacityType(d["capacity_type"]), "state": NodeState(d["state"]),
                   "labels": dict(d.get("labels") or {})})


class SharedObserver:
    """Observation shared by the replicas: ``round`` lists this replica's share of the scopes (an observe
    lease each, keyed by the scope: "gcp/us-central1", or "lambda" for a provider listed whole; given back
    with a backoff of ``every_s``: one list per scope a round, by one replica) and publishes each answer
    fenced by its lease, under the same key; ``latest`` is what the leader applies: every scope's newest
    answer, published in the last ``max_age_s`` (else, or on an error, the scope is "unknown", as after a
    failed list call).

    The bound is generous on purpose: one list call over many regions of a busy cloud can take tens of
    seconds (the one leader's took as long), and answers only move forward, so applying the newest one
    again makes the decisions the one leader made on a cloud that had not changed yet; it can delay a
    transition, not invent one. It stays under half the short-of-nodes bound, which is what a stale
    answer could otherwise mislead (a workload whose nodes came up but were not seen yet)."""

    def __init__(self, db: Database, providers: Mapping[str, Provider], share: WorkShare, metrics: LoopMetrics,
                 *, every_s: float, max_age_s: float) -> None:
        self.db, self.providers, self.share, self.metrics = db, providers, share, metrics
        self.every_s, self.max_age_s = every_s, max_age_s
        self._bg = ThreadPoolExecutor(max_workers=1, thread_name_prefix="awan-observe-round")
        self._inflight: Future[set[str]] | None = None
        self._lock = threading.Lock()

    def start_round(self) -> bool:
        """Run a round in the background unless one still is: a list call over many slow regions can take
        tens of seconds, and neither the leader's pass nor a replica's stack claims should wait for it.
        Returns whether one was started."""
        with self._lock:
            if self._inflight is not None and not self._inflight.done():
                return False
            try:
                self._inflight = self._bg.submit(self._round_logged)
            except RuntimeError:   # shut down
                return False
            return True

    def _round_logged(self) -> set[str]:
        try:
            return self.round()
        except Exception as e:   # the next round tries again; its providers' leases were given back
            log.warning("observation round failed", error=str(e))
            return set()

    def close(self) -> None:
        self._bg.shutdown(wait=False, cancel_futures=True)

    def regions(self) -> dict[str, set[str]]:
        """stack_regions, or none on a store error: the configured regions are still listed this round."""
        try:
            return stack_regions(self.db, self.providers)
        except Exception as e:
            log.warning("reading the stacks' regions failed", error=str(e))
            return {}

    def round(self) -> set[str]:
        """Observe this replica's share of the scopes (regions, or whole providers that cannot list by
        region); returns the scopes whose answer was published."""
        units = {u.key: u for u in scopes(self.providers, self.regions())}
        claims = self.share.take(work_leases.OBSERVE, sorted(units))
        if not claims:
            return set()
        try:
            taken_at = utcnow()   # the answer is as old as the moment the list calls started
            answers = list_scopes(self.providers, [units[k] for k in sorted(claims)], self.metrics)
            published: set[str] = set()
            with self.db.session() as s:
                # A replica that stalled past its lease's life lost the scope to another: its answer, maybe
                # older than the successor's, is dropped.
                for key in sorted(self.share.still_mine(s, work_leases.OBSERVE, claims)):
                    got = answers[key]
                    nodes, error = ((None, error_reason(got)) if isinstance(got, BaseException) else
                                    ([node_doc(n) for n in got], None))
                    if work_leases.publish(s, key, nodes, error, taken_at, self.share.holder, claims[key]):
                        published.add(key)
            lost = set(claims) - published
            if lost:
                log.info("observation not published: lease lost or a newer one there", scopes=sorted(lost))
            return published
        finally:
            self.share.give_back(work_leases.OBSERVE, claims, self.every_s)

    def latest(self) -> Observation:
        obs = Observation()
        regional = {n for n, p in self.providers.items() if p.supports_regional_listing() is not None}
        for row in work_leases.observations(self.db, self.max_age_s):
            provider, region = scope_of(row.provider)
            # A row of the other kind (whole provider for a regional one, or the reverse) was written by a
            # replica that lists it the other way (a rolling upgrade): mixing both would count nodes twice.
            if provider not in self.providers or (region is not None) != (provider in regional):
                continue
            if row.error is not None:
                obs.failed[row.provider] = row.error
                continue
            obs.nodes.extend(node_of(d) for d in (row.nodes or {}).get("nodes", []))
            obs.observed.add(row.provider)
        return obs


def load_clocks(db: Database, *, short: failover.ShortWatch, unseen: Unobserved) -> None:
    """The clocks as the store has them, outside a pass (a leader's new term: placement reads ``unseen`` before
    the term's first observation does)."""
    with db.session() as s:
        kept = clocks.read(s)
    short.load(kept[clocks.SHORT])
    unseen.load(kept[clocks.UNOBSERVED])


def apply_observation(db: Database, obs: Observation, *, actor: str, fenced: Callable[[], bool],
                      metrics: LoopMetrics, blocks: failover.BlockList | None = None,
                      short: failover.ShortWatch | None = None, only: Collection[int] | None = None,
                      unsettled: set[str] | None = None, unseen: Unobserved | None = None) -> set[str]:
    """Returns the stacks that drifted (a workload lost nodes, or holds more than assigned) so the caller
    re-runs them: to repair in place, to delete extra nodes, or to remove the old pools' leftovers after a
    preempted workload was re-placed. A Provisioning workload short of nodes past ``short``'s bound is a
    capacity failure: its short pools are blocked and it is re-placed.

    ``only``: compare just these workload ids (the edge-triggered pass's; None: every watched one).
    ``unsettled`` collects the keys of workloads holding nodes they should not: compared again next time
    even if nothing about them changes (their stacks are re-run until the extra nodes are gone).

    ``unseen``: since when each place without a list answer has had none (unobserved.py). A workload with
    an assignment there is held as it is, but a Provisioning one keeps its short-of-nodes clock (its nodes
    are not confirmed either way) and fails over at the same bound; a Running one stays, its message
    saying since when its region has not been observed.

    Both clocks (``short``'s and ``unseen``'s) are the store's (store/clocks.py): read at the start of this
    transaction, after the fence, and what changed written back in it, so a restarted controller or a new
    leader continues them."""
    drifted: set[str] = set()
    still_short: list[str] = []
    unseen = unseen if unseen is not None else Unobserved()
    shown = set(unseen.since())   # the gauge's places as this process last set them
    with db.session() as s:
        if not fenced():
            return drifted
        # The clocks as the store has them: a restart, or another replica's term as leader, continues them
        # (store/clocks.py). Read in this transaction and written back in it, only what changed.
        kept = clocks.read(s)
        unseen.load(kept[clocks.UNOBSERVED])
        if short is not None:
            short.load(kept[clocks.SHORT])
        shown |= unseen.update(obs)
        rows = [r for r in repo.by_ids(s, _worth_loading(s, obs, only)) if r.state in _WATCHED]
        for row in rows:
            if not row.assignments:
                continue
            need = sum(a.nodes for a in row.assignments)
            mine = obs.nodes_of(row.key)
            running = _running_for(row, mine)
            if not all(obs.covers(a.provider, a.region) for a in row.assignments):
                # Cannot tell: a provider or region of it did not answer. Held as it is, with the clock running.
                if _unobserved(s, row, obs, unseen, actor=actor, short=short, blocks=blocks, metrics=metrics,
                               running=running, need=need, drifted=drifted):
                    still_short.append(row.key)
                continue
            if row.message and row.message.startswith(_HELD):
                # Its region answers again: the note of when it stopped goes (a transition below may say more).
                row.message = f"{running}/{need} nodes running"
            extra = _extra_stacks(row, mine)
            if extra:
                if unsettled is not None:
                    unsettled.add(row.key)
                # More nodes than assigned (or nodes outside its pools) is drift too: the stacks that hold
                # them run again and delete what their state does not want.
                drifted |= extra
                live = sum(1 for n in mine if n.state in _LIVE)
                if row.state in _UP and row.message != (msg := f"{live}/{need} nodes live; "
                                                                                 "removing the extra ones"):
                    row.message = msg
                    audit.record(s, actor=actor, action="drift", kind="workload", subject=row.name,
                                 team=row.team, details={"live": live, "need": need, "extra": True})
            if row.state == WorkloadState.PROVISIONING.value and running < need and short is not None:
                waited = short.overdue(row.key)
                if waited is not None:
                    # Its clock ends with the move: kept, it would fail the next placement over at once
                    # (re-placed and Provisioning again before an observation found it not short).
                    _short_failover(s, row, obs, actor=actor, blocks=blocks, drifted=drifted, trigger="capacity",
                                    reason=f"{running}/{need} nodes running after {waited:.0f} s: the provider "
                                           "has not supplied them")
                    metrics.failovers.labels("short").inc()
                    continue
                still_short.append(row.key)
            if row.state == WorkloadState.PROVISIONING.value and running >= need:
                # With a template the nodes being up is only the start: dispatch creates the pods and
                # moves it on to Running when they run. Without one the capacity is what was asked for.
                run = restarts.is_run(row.spec)
                row.state = WorkloadState.STARTING.value if run else WorkloadState.RUNNING.value
                row.running_at = utcnow()
                row.message = f"{running}/{need} nodes running" + ("; starting the pods" if run else "")
                if row.placed_at:
                    metrics.provisioning_latency.observe((row.running_at - row.placed_at).total_seconds())
                audit.record(s, actor=actor, action="running", kind="workload", subject=row.name,
                             team=row.team, details={"nodes": running})
            elif row.state in _UP and running < need:
                drifted.update(stack_name(a.provider, a.region) for a in row.assignments)
                keys = _lost_pools(row, obs)
                if _preempted(row, obs, keys):
                    # Spot capacity taken back: the pool will not refill soon, so block it and re-place
                    # the workload at once on its next candidate (the old stack's run removes leftovers).
                    if blocks is not None:
                        blocks.block(keys)
                    failover.replace(s, row, actor=actor, trigger="preempted", blocked=keys,
                                     reason=f"{running}/{need} nodes running")
                    metrics.failovers.labels("preempted").inc()
                    continue
                # Nodes vanished from a regular pool: repair in place; if the cloud then has no capacity
                # there, the stack run fails with CapacityError and failover moves the workload.
                row.state = WorkloadState.PROVISIONING.value
                row.message = f"drift: {running}/{need} nodes running"
                audit.record(s, actor=actor, action="drift", kind="workload", subject=row.name,
                             team=row.team, details={"running": running, "need": need})
                restarts.end_incarnation(s, row, actor=actor, why=f"{running}/{need} nodes running: nodes lost")
        if short is not None:
            short.keep_only(still_short)
            clocks.write(s, clocks.SHORT, kept[clocks.SHORT], short.stored())
        clocks.write(s, clocks.UNOBSERVED, kept[clocks.UNOBSERVED], unseen.stored())
    for place in shown - set(unseen.since()):   # answered again (here, or in another leader's term)
        _unlabel(metrics, place)
    for place, since in unseen.since().items():
        metrics.unobserved_since.labels(place[0], place[1] or "*").set(since.wall.timestamp())
    return drifted


_LIVE = (NodeState.RUNNING, NodeState.PENDING)


def _short_failover(s: Session, row: Workload, obs: Observation, *, actor: str, blocks: failover.BlockList | None,
                    drifted: set[str], trigger: str, reason: str) -> None:
    """A Provisioning workload past the short bound (its nodes seen short, or not seen at all): its pools are
    blocked, its stacks re-run (to remove what they made for it), and it goes back to be placed again."""
    keys = _lost_pools(row, obs) or [failover.key_of(a) for a in row.assignments]
    if blocks is not None:
        blocks.block(keys)
    drifted.update(stack_name(a.provider, a.region) for a in row.assignments)
    failover.replace(s, row, actor=actor, trigger=trigger, blocked=keys, reason=reason)
_HELD = "not observed: "   # the message of a workload held in a place without a list answer


def _unlabel(metrics: LoopMetrics, place: Place) -> None:
    with contextlib.suppress(KeyError):   # never set: noted and answered again within one observation
        metrics.unobserved_since.remove(place[0], place[1] or "*")


def _worth_loading(s: Session, obs: Observation, only: Collection[int] | None) -> list[int]:
    """The watched rows (among ``only``; None: all) a comparison could change, read from their columns: all
    but a Placed row no node of which is seen and whose message is not the held note. For such a row
    ``apply_observation`` does nothing: no node means nothing extra, it is neither Provisioning nor up, and
    ``_unobserved`` leaves a Placed row as it is. During a burst these are most of the rows compared (every
    Placed row waits on its stack run), and loading them whole (spec JSON, assignments, ORM objects) was most
    of an observation's CPU."""
    placed = WorkloadState.PLACED.value
    return [i for i, state, team, name, message in repo.heads(s, _WATCHED, None if only is None else list(only))
            if state != placed or message.startswith(_HELD) or obs.nodes_of(workload_key(team, name))]


def _unobserved(s: Session, row: Workload, obs: Observation, unseen: Unobserved, *, actor: str,
                short: failover.ShortWatch | None, blocks: failover.BlockList | None, metrics: LoopMetrics,
                running: int, need: int, drifted: set[str]) -> bool:
    """A watched workload with an assignment where ``obs`` has no answer. Returns whether it is still
    short of nodes (its short-of-nodes clock keeps running).

    Provisioning: its nodes were never confirmed, so not seeing them is not seeing them supplied. Past the
    short bound it fails over as a workload visibly short does: its pools there are blocked, it is re-placed
    (placement leaves such a place out by then: the controller's snapshot). Running: its nodes were
    confirmed; moving it because monitoring fails would pay for a second set of nodes and kill a healthy run,
    so it is held, and its message says since when (Starting: dispatch owns the message, the metric says
    it). Placed: no stack has run yet; the stack run, not observation, decides about it."""
    where = {unseen.of(a.provider, a.region) for a in row.assignments if not obs.covers(a.provider, a.region)}
    first = min(where, key=lambda w: w[1].at)
    places = describe(p for p, _ in where)
    since = first[1].wall.strftime("%Y-%m-%d %H:%M:%S UTC")
    why = "; ".join(sorted({unseen.why(p) for p, _ in where}))
    if row.state == WorkloadState.PROVISIONING.value and short is not None:
        waited = short.overdue(row.key)
        if waited is None:
            msg = (f"{_HELD}{places} since {since} ({why}); nodes not confirmed yet, re-placed if not confirmed "
                   f"{short.bound_s:.0f} s after they were asked for")
            if row.message != msg:
                row.message = msg
            return True
        _short_failover(s, row, obs, actor=actor, blocks=blocks, drifted=drifted, trigger="unobserved",
                        reason=f"{places} could not be observed for {unseen.seconds(first[1]):.0f} s ({why}): "
                               f"{running}/{need} nodes confirmed running after {waited:.0f} s")
        metrics.failovers.labels("unobserved").inc()
        return False
    if row.state == WorkloadState.RUNNING.value:
        msg = f"{_HELD}{places} since {since} ({why}); its nodes were confirmed, so it is held, not moved"
        if row.message != msg:
            row.message = msg
    return False


def _running_for(row: Workload, nodes: list[Node]) -> int:
    """The running nodes that count for ``row``: those in its assigned pools, at most each pool's node count.
    Nodes in a pool it does not hold (its last placement's, until their stack deletes them) or beyond a pool's
    count are extra (``_extra_stacks``), not its capacity: counted, a workload re-placed while its old nodes
    still ran was marked Running with nothing in the pools it was assigned, and a pool over its count hid
    another pool short. Nodes that carry no pool label count as before (towards the whole need)."""
    up = [n for n in nodes if n.state == NodeState.RUNNING]
    unpooled = sum(1 for n in up if not n.pool)
    per_pool = Counter(n.pool for n in up if n.pool)
    pooled = sum(min(per_pool[a.pool], a.nodes) for a in row.assignments)
    return min(pooled + unpooled, sum(a.nodes for a in row.assignments))


def _extra_stacks(row: Any, nodes: list[Any]) -> set[str]:
    """Stacks holding live nodes of ``row`` beyond its assignments: in a pool or a (provider, region) it
    does not hold, or more in a pool than the pool's node count."""
    pools = {a.pool: a for a in row.assignments}
    count: dict[str, int] = {}
    out: set[str] = set()
    unpooled = 0
    for n in nodes:
        if n.state not in _LIVE:
            continue
        if not n.pool:
            unpooled += 1
            continue
        a = pools.get(n.pool)
        if a is None:
            out.add(n.labels.get(TAG_STACK) or n.labels.get(LABEL_STACK) or stack_name(n.provider, n.region))
            continue
        count[a.pool] = count.get(a.pool, 0) + 1
        if count[a.pool] > a.nodes:
            out.add(stack_name(a.provider, a.region))
    if unpooled and sum(count.values()) + unpooled > sum(a.nodes for a in row.assignments):
        out |= {stack_name(a.provider, a.region) for a in row.assignments}
    return out


def _lost_pools(row: Any, obs: Observation) -> list[failover.PoolKey]:
    """The pools of ``row`` with fewer running nodes than assigned (all of them when nodes carry no pool)."""
    nodes = [n for n in obs.nodes_of(row.key) if n.state == NodeState.RUNNING]
    if nodes and not any(n.pool for n in nodes):
        return [failover.key_of(a) for a in row.assignments]
    return [failover.key_of(a) for a in row.assignments if sum(1 for n in nodes if n.pool == a.pool) < a.nodes]


def _preempted(row: Any, obs: Observation, lost: list[failover.PoolKey]) -> bool:
    spot = any(k[3] == "spot" for k in lost)
    return spot or any(n.state == NodeState.PREEMPTED for n in obs.nodes_of(row.key))


def finish_deletions(db: Database, obs: Observation, *, actor: str, fenced: Callable[[], bool]) -> None:
    with db.session() as s:
        if not fenced():
            return
        held: set[str] = set()
        for st in s.scalars(select(Stack)):
            for p in (st.spec or {}).get("pools", []):
                held.add(p.get("workload", ""))
        for row in repo.list_(s, states=[WorkloadState.DELETING.value, WorkloadState.FAILED.value],
                              limit=1_000_000, light=True):
            if row.state == WorkloadState.FAILED.value:
                continue  # kept for the user to read; deleting it makes it Deleting
            known = all(obs.covers(a.provider, a.region) for a in row.assignments)
            if row.key in held or not known or obs.nodes_of(row.key):
                continue
            row.state, row.deleted_at, row.message = WorkloadState.DELETED.value, utcnow(), "deleted"
            row.assignments.clear()
            audit.record(s, actor=actor, action="deleted", kind="workload", subject=row.name, team=row.team)
