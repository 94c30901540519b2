"""The loop: every ``interval_s`` the leader runs place -> plan stacks -> run stacks (one worker per
stack, in a pool) -> observe -> finish deletions. A pass after a crash or a change of leader re-reads
everything and simply continues (level-triggered); stack runs are idempotent. Between those full passes
(every ``full_resync_s``) a pass looks only at what the change feed and the timers name (edge.py).

Woken passes: a committed submit pokes the loop (wake.py, any store, any process of the service) and on
PostgreSQL every committed change notifies it (feed.Listener). A wake before the next interval pass runs a
placing pass only (``woken_tick``: admission and placement on the health and capacity the last interval pass
read), so a new workload is placed within a pass of its submit without the clouds being asked again. Why not
a full pass per wake, as before on PostgreSQL: under a stream of submits every commit (the loop's own
placements and stack results too) woke another full pass, so the loop ran them back to back (health probes
and capacity of every cloud, stacks, observation), a new workload waited behind one, and the stream of passes
took the CPU the API needed. Other changes (a delete, a policy) are acted on at the next interval pass.

Stack runs, the work that waits on clouds, are shared: on PostgreSQL every replica, leader or not, plans
the stacks and claims the ones it has room for with per-stack work leases (controlplane/reconcile/sharing),
so N replicas run N times as many stacks at once. Each replica runs at most ``provider_concurrency`` stacks
of one provider at a time (the clouds' API rate limits) and ``stack_workers`` in all.

Graceful shutdown: ``stop()`` stops taking work at once (the pass in progress ends at its next step,
queued stack runs are cancelled), lets running stack workers finish within a grace period (a Pulumi-style
update should not be cut in half), then releases the lease so a successor takes over without waiting for
the expiry. A stack run still going after the grace is left to the process's exit: the same as a crash
mid-run, which every step tolerates (level-triggered, idempotent, fenced by epoch).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from controlplane.dispatch.clusters import ClusterSet
from controlplane.logs import get_logger
from controlplane.placement import FleetSnapshot
from controlplane.placement.results import Assignment
from controlplane.policy import PolicySet
from controlplane.purchasing import PurchasingConfig
from controlplane.purchasing.loop import BuyingStep
from controlplane.queues import QueueConfig
from controlplane.reconcile import admitting, failover, fleet, observing, placing, provisioning, running
from controlplane.reconcile.capacity_estimates import Learned, learned
from controlplane.reconcile.edge import EdgeLoop
from controlplane.reconcile.feed import SETTLE_S, Listener
from controlplane.reconcile.leader import LeaderElector
from controlplane.reconcile.metrics import LoopMetrics
from controlplane.reconcile.queue import RateLimitedQueue
from controlplane.reconcile.sharing import SharedBlockList, WorkShare
from controlplane.reconcile.unobserved import Unobserved, leave_out
from controlplane.reconcile.wake import WakeListener
from controlplane.store import work_leases
from controlplane.store.db import Database
from controlplane.timeline.usage import record_usage
from infra.engines.base import Engine, RecordsStackState
from infra.spec import stack_name
from providers.base import Provider
from providers.breaker import unguarded
from providers.errors import CapacityError, ProviderError

log = get_logger("awan.controller")


def _worker_loop() -> None:
    # Pulumi's SDK (used by the engines' programs) expects an asyncio event loop in the calling thread.
    asyncio.set_event_loop(asyncio.new_event_loop())


@dataclass
class LoopConfig:
    interval_s: float = 2.0
    stack_workers: int = 4
    resync_s: float = 60.0
    retry_base_s: float = 1.0
    retry_max_s: float = 300.0
    lock_ttl_s: float = 60.0
    max_stack_attempts: int = 6
    block_ttl_s: float = failover.BLOCK_TTL_S   # how long a pool that failed stays out of placement
    health_confirm: int = 2                      # DOWN probes in a row before a region is evacuated
    short_bound_s: float = failover.SHORT_BOUND_S   # a Provisioning workload short this long fails over
    stack_config: dict[str, dict[str, str]] = field(default_factory=dict)   # provider -> settings
    provider_concurrency: int = 4      # stack runs of one provider at once in this replica (API rate limits)
    work_lease_ttl_s: float = 30.0     # a dead replica's stack leases are taken over after this
    share_work: bool | None = None     # every replica runs stacks; None: on PostgreSQL only (SKIP LOCKED)
    # The leader leaves stack runs to runner processes while one holds a live "runner" lease (runner.py).
    stacks_to_runners: bool = False
    learn_capacity: bool = True        # cap pools by capacity_estimates (False: block list only, as before)
    # Slow start for pools whose clouds publish no free capacity (capacity_estimates.Learned); 0 = off. Off by
    # default: a cap of N nodes on a pool nothing has run in would hold a single gang larger than N forever.
    capacity_slow_start: int = 0
    # Edge-triggered passes (edge.py): each pass looks at what the change feed and the timers name; a full
    # pass over every row every ``full_resync_s`` is the safety net. False: every pass is a full scan.
    edge: bool = True
    full_resync_s: float = 300.0
    observe_s: float = 0.0             # the clouds are listed at most this often (0: every pass)
    # Wakes between interval passes (wake.py: a submit; PostgreSQL: a committed change) run a placing pass
    # on the last pass's health and capacity. ``wake_socket``: where submits poke the loop (None: no socket);
    # ``wake_gap_s``: a woken pass waits this long first (and the CPU the last used), so a burst is one pass.
    wake_socket: str | None = None
    wake_gap_s: float = 0.05
    # The clouds' capacity read for placement is kept this long (interval passes too; woken passes as long
    # as the interval if that is longer), with what was placed on it since subtracted: reading every cloud's
    # quotas and pools is most of a placing pass's CPU under a stream of submits. Read afresh sooner on a new
    # term, a change of health, a provider whose read failed, a place whose listing fails or answers again
    # (its region's capacity may have failed with it), or failover moving workloads (a stock-out, a refusal,
    # an ending block: _moved). 0: every interval pass reads the clouds (as before).
    capacity_keep_s: float = 10.0


@dataclass
class _Taken:
    """The capacity snapshot an interval pass read and the assignments placed on it since."""

    raw: FleetSnapshot | None
    at: float                                   # time.monotonic() when read
    since: list[Assignment] = field(default_factory=list)
    health: tuple[Any, ...] = ()                # fleet.health_signature of the probe it was read on
    whole: bool = True                          # every provider that answered its probe gave capacity
    unseen: frozenset[Any] = frozenset()        # the places no list answered for when it was read


class Controller:
    def __init__(self, db: Database, providers: Mapping[str, Provider], engine: Engine, *,
                 elector: LeaderElector, policies: Callable[[], PolicySet], config: LoopConfig | None = None,
                 place: placing.PlaceFn | None = None,
                 snapshot: Callable[[], FleetSnapshot | None] | None = None,
                 metrics: LoopMetrics | None = None, clusters: ClusterSet | None = None,
                 queues: Callable[[], QueueConfig] | None = None,
                 purchasing: Callable[[], PurchasingConfig | None] | None = None) -> None:
        self.db, self.providers, self.engine, self.elector = db, providers, engine, elector
        self.policies = policies
        self.place: placing.PlaceFn = place if place is not None else placing.CachedPlace()
        self.queues = queues   # the admission gate (controlplane/queues); None: every workload is placed
        self.cfg = config or LoopConfig()
        self.metrics = metrics or LoopMetrics()
        self._custom_snapshot = snapshot
        self.blocks = SharedBlockList(db, self.cfg.block_ttl_s)
        self.watch = failover.RegionWatch(self.cfg.health_confirm)
        self.short = failover.ShortWatch(self.cfg.short_bound_s)
        # Places with no list answer, and since when: held workloads' notes, and left out of placement past
        # the short bound (a workload placed there could not be confirmed either). Both clocks are kept in the
        # store, loaded at each term's start and with each observation (a restart continues them).
        self.unseen = Unobserved()
        self._health: dict[str, Any] = {}
        self._led_epoch: int | None = None
        self._wake = threading.Event()
        # Leadership gained wakes the loop: a replica whose first pass ran before it led would otherwise wait
        # a whole interval (with a long interval, or after a failover, minutes) before its first pass as leader.
        given = elector.on_change

        def led(leader: bool) -> None:
            if given is not None:
                given(leader)
            if leader:
                self._wake.set()

        elector.on_change = led
        self.queue = RateLimitedQueue(self.cfg.retry_base_s, self.cfg.retry_max_s)
        self.actor = f"controller:{elector.holder}"
        self._pool = ThreadPoolExecutor(max_workers=self.cfg.stack_workers, thread_name_prefix="awan-stack",
                                        initializer=_worker_loop)
        self._inflight: dict[str, Future[None]] = {}
        self._inflight_provider: dict[str, str] = {}
        self.share = WorkShare(db, elector.holder, self.cfg.work_lease_ttl_s)
        self.shares_work = self.cfg.share_work if self.cfg.share_work is not None else db.dialect == "postgresql"
        self._drifted: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # Running what the workloads say on their nodes (spec.template): only with clusters to run it in.
        self.clusters = clusters
        self.runs = None if clusters is None else running.RunStep(
            db, clusters, actor=self.actor, fenced=self.elector.fenced,
            idle_timeout_s=lambda: float(self.policies().idle_timeout_s),
            share=self.share if self.shares_work else None, every_s=self.cfg.interval_s)
        # Observing shared (sharing.py): listed by every replica, applied by the leader (observing.py says
        # why answers this old are still applied).
        # A provider is listed at most every observe_s (the service: its pass interval), by one replica.
        self.observer = observing.SharedObserver(
            db, providers, self.share, self.metrics, every_s=self.cfg.observe_s,
            max_age_s=max(2 * self.cfg.work_lease_ttl_s, self.cfg.short_bound_s / 2))
        # Buying on policy and moving off ending blocks (controlplane/purchasing): only with a policy source.
        self.buying = None if purchasing is None else BuyingStep(
            db, providers, purchasing, actor=self.actor, fenced=self.elector.fenced, blocks=self.blocks,
            snapshot=self.snapshot)
        # -- edge-triggered passes (controlplane/reconcile/edge.py) --
        self.edge = None if not self.cfg.edge else EdgeLoop(
            db, resync_s=self.cfg.full_resync_s, observe_s=self.cfg.observe_s, config=self.cfg.stack_config)
        self._listener = Listener(db, self._wake.set)   # PostgreSQL: a committed change wakes the loop
        self._waker = WakeListener(self.cfg.wake_socket, self._wake.set)   # any store: a submit wakes it
        # The capacity read from the clouds for placement, kept for the placing passes a wake runs before
        # the next interval pass, with what was placed on it since (subtracted, so nothing is spent twice).
        self._taken: _Taken | None = None
        self._finished: tuple[tuple[Any, ...], FleetSnapshot] | None = None   # _finish's last inputs and result
        self._read_failed = False   # the last capacity read left a provider out (it failed)
        self.woken_passes = 0
        self._dispatched_at = float("-inf")   # a non-leader's last dispatch round (_shared_rounds)
        self._backoffs_read_at = float("-inf")   # the last read of backed-off stacks' shared backoff (_expedited)

    # -- one pass ----------------------------------------------------------------------------------
    def snapshot(self) -> FleetSnapshot | None:
        """This pass's fleet view with failover's blocked pools (a test's own snapshot gets them too; a test
        whose placer needs none gives None)."""
        return self._finish(self._raw_snapshot())

    def _raw_snapshot(self) -> FleetSnapshot | None:
        """What the clouds (or a test's snapshot) say, before blocks and learned caps."""
        if self._custom_snapshot is not None:
            return self._custom_snapshot()
        failed: set[str] = set()
        snap = fleet.capacity_snapshot(self.providers, self.metrics, health=self._health, failed=failed)
        self._read_failed = bool(failed)
        return snap

    def _finish(self, raw: FleetSnapshot | None) -> FleetSnapshot | None:
        """``raw`` with the blocked pools and learned caps as the store has them now (a stock-out seen since
        the clouds were read counts at once)."""
        if raw is None:
            return None
        caps = learned(self.db, ttl_s=self.cfg.block_ttl_s, start=self.cfg.capacity_slow_start or None,
                       placement_only=True) if self.cfg.learn_capacity else None
        blocked, places = self.blocks.shared(), frozenset(self.unseen.past(self.cfg.short_bound_s))
        # The inputs are read every pass (a block or a stock-out in any replica counts at once); only the
        # work on them is kept: the finished snapshot is a pure function of them, so while they are equal
        # (the raw snapshot by identity, the rest by value) the last one is the answer, and keeping the same
        # object keeps placement's index for it too.
        inputs = (raw, blocked, places, caps)
        last = self._finished
        if last is not None and last[0] == inputs:
            return last[1]
        snap = fleet.apply_caps(leave_out(raw.with_blocked(blocked), places), caps)
        _ = snap.structure   # computed once here, shared by the snapshots with_usage derives from it
        self._finished = (inputs, snap)
        return snap

    def _fresh_snapshot(self) -> FleetSnapshot | None:
        """An interval pass's placement: the clouds read now, kept for the woken passes until the next."""
        self._read_failed = False
        raw = self._raw_snapshot()
        if raw is not None and self._custom_snapshot is None:
            raw = raw.with_quota_use(fleet.not_yet_asked(self.db))   # a live report's quota use lacks them
        self._taken = _Taken(raw, time.monotonic(), health=fleet.health_signature(self._health),
                             whole=not self._read_failed, unseen=frozenset(self.unseen.since()))
        return self._finish(raw)

    def _kept_snapshot(self) -> FleetSnapshot | None:
        """An interval pass's placement: the kept capacity (``_recent_snapshot``) while it is at most
        ``capacity_keep_s`` old, else the clouds read now. A test's own snapshot is read every interval pass."""
        if self._custom_snapshot is not None:
            return self._fresh_snapshot()
        return self._recent_snapshot(self.cfg.capacity_keep_s)

    def _recent_snapshot(self, keep_s: float | None = None) -> FleetSnapshot | None:
        """A woken pass's placement: the kept capacity less what was placed on it since, while it is at most
        ``keep_s`` old (default: the longer of ``interval_s`` and ``capacity_keep_s``) and still good (else
        read afresh, on the health of the last interval pass). Exact for quotas and pools alike: what holds
        capacity now was in the clouds' answer, Placed when it was read (``not_yet_asked``), or placed on it
        since (``since``); a stack created since moves nodes between the first two and the cloud, counted once.
        Only capacity freed since (a deletion) is seen late, at the next read."""
        t = self._taken
        if keep_s is None:   # a test's own snapshot: the interval, as before capacity_keep_s
            keep_s = self.cfg.interval_s if self._custom_snapshot is not None else max(self.cfg.interval_s,
                                                                                       self.cfg.capacity_keep_s)
        if (t is None or time.monotonic() - t.at > keep_s or not t.whole or self._custom_snapshot is None and (
                t.health != fleet.health_signature(self._health) or t.unseen != frozenset(self.unseen.since()))):
            return self._fresh_snapshot()
        snap = self._finish(t.raw)
        return snap.with_usage(t.since) if snap is not None and t.since else snap

    def _place_and_keep(self, workloads: Any, snapshot: Any, policies: Any) -> Any:
        """The placer, noting what it assigned on the kept snapshot (placement subtracts within one call; the
        next woken pass's snapshot must have these gone too)."""
        t = self._taken
        result = self.place(workloads, snapshot, policies)
        if t is not None and t is self._taken:
            t.since.extend(a for d in result.decisions for a in d.assignments)
        return result

    def _learned(self) -> Learned:
        return learned(self.db, ttl_s=self.cfg.block_ttl_s, start=self.cfg.capacity_slow_start or None)

    def _trim(self, p: provisioning.StackPlan) -> list[str]:
        """After a stock-out: what else waits for pools of that cloud beyond what it taught goes back to
        Pending now (failover.trim_to_learned), not one stock-out per pool per stack run."""
        with self._lock:
            busy = set(self._inflight) - {p.spec.name}
        return failover.trim_to_learned(self.db, self._learned(), [p.spec.provider], busy_stacks=busy,
                                        actor=self.actor, fenced=self.elector.fenced)

    def tick(self) -> None:
        if not self.elector.is_leader:
            self._led_epoch = None
            if self.shares_work and not self._stop.is_set():
                self._run_stacks()   # not the placer, but a runner of whatever stacks nobody holds
                self._shared_rounds()
            return
        if self.elector.epoch != self._led_epoch and self.elector.fenced():
            # A new term: row locks left by a killed leader (ours included) would hold its rows for
            # lock_ttl_s; the previous holder is fenced, so they can go now.
            placing.release_stale_locks(self.db)
            self._led_epoch = self.elector.epoch
            self._taken = None   # another leader may have placed since our capacity was read
            if self.edge is not None:   # a new term reads everything afresh
                self.edge.force_resync()
            # and the clocks as the last leader left them (a restart continues them: store/clocks.py)
            observing.load_clocks(self.db, short=self.short, unseen=self.unseen)
        self.metrics.ticks.inc()
        self._check_health()
        if self._stop.is_set():   # shutting down: no new step
            return
        if self.edge is not None:
            self.edge.begin()
            if self.edge.full and self.elector.fenced():
                self.edge.feed.prune(keep_s=2 * self.cfg.full_resync_s + SETTLE_S)
        self._place(self._kept_snapshot)
        if self.buying is not None:
            self._moved(self.buying.tick(), "block-ending")
        if self.edge is not None:
            self.edge.sync()   # placement's and buying's writes of this pass
        if (self.edge is None or self.edge.usage_dirty) and self.elector.fenced():
            # the GPUs in use, as a step function: contracts burn down from it
            record_usage(self.db, current=None if self.edge is None else self.edge.index.usage())
            if self.edge is not None:
                self.edge.usage_dirty = False
        if self._stop.is_set():
            return
        if not self._runners_take_stacks():
            self._run_stacks()
        if self._stop.is_set():
            return
        if self.edge is not None:
            self._observe_edge()
        else:
            obs = self._observation()
            self._drifted |= observing.apply_observation(self.db, obs, actor=self.actor,
                                                         fenced=self.elector.fenced, metrics=self.metrics,
                                                         blocks=self.blocks, short=self.short, unseen=self.unseen)
            observing.finish_deletions(self.db, obs, actor=self.actor, fenced=self.elector.fenced)
        if self.runs is not None and (self.edge is None or self.edge.runs_due()):
            self.runs.tick()
            if self.edge is not None:
                self.edge.runs_dirty = False

    def _runners_take_stacks(self) -> bool:
        """Whether this leader leaves the stack runs to the runner processes (runner.py): while one is live,
        so placing keeps this interpreter's GIL. Not with drift seen: only the leader knows it (its
        observation), and a drifted stack is forced now, not at its resync."""
        return (self.cfg.stacks_to_runners and self.shares_work and not self._drifted
                and self.share.runners() > 0)

    def _place(self, snapshot: Callable[[], FleetSnapshot | None]) -> None:
        unplaced = placing.place_pending(
            self.db, snapshot=snapshot, policies=self.policies, place=self._place_and_keep,
            fenced=self.elector.fenced, actor=self.actor, metrics=self.metrics, ttl_s=self.cfg.lock_ttl_s,
            skip=lambda n: self.queue.backing_off(f"place:{n}"), admission=self._admit(),
            more=self._wake.set)   # a placing pass (woken_tick) follows this one after the usual hold
        for key in unplaced:   # capacity may appear later: try again, backing off
            self.queue.retry(f"place:{key}")

    def woken_tick(self) -> None:
        """A pass a wake asked for before the next interval pass: admit and place what waits, and nothing
        else. The clouds are not asked again: health is the last interval pass's and capacity the snapshot
        it read (``_recent_snapshot``); stacks, observation, usage and dispatch wait for the interval pass,
        which also catches anything a wake missed. Only in a term this replica has already run an interval
        pass in (its stale locks released, its epoch checked); every write is fenced as in ``tick``."""
        if self._stop.is_set() or not self._can_wake_place():
            return
        self.woken_passes += 1
        self.metrics.woken.inc()
        self._place(self._recent_snapshot)

    def _can_wake_place(self) -> bool:
        return self.elector.is_leader and self._led_epoch is not None and self.elector.epoch == self._led_epoch

    def _observe_edge(self) -> None:
        """Observation on its interval, compared only with the workloads edge.py names (all on a full pass)."""
        assert self.edge is not None
        self.edge.sync()   # what this pass's placement and stack results wrote
        if not self.edge.observe_due():
            return
        obs = self._observation()
        only, prints = self.edge.to_compare(obs)
        unsettled: set[str] = set()
        self._drifted |= observing.apply_observation(self.db, obs, actor=self.actor, fenced=self.elector.fenced,
                                                     metrics=self.metrics, blocks=self.blocks, short=self.short,
                                                     only=only, unsettled=unsettled, unseen=self.unseen)
        if self.edge.deletions_due():
            observing.finish_deletions(self.db, obs, actor=self.actor, fenced=self.elector.fenced)
        self.edge.observed(obs, prints, only, unsettled)

    # -- shared work other than stacks (sharing.py: observing and dispatch) ------------------------------
    def _shared_rounds(self) -> None:
        """A replica that does not lead: its share of the observing (in the background) and of the dispatch.
        Dispatch once an interval: its round reads every placed row, its claims are given back for an interval
        anyway (RunStep every_s), and a non-leader's passes run at each committed change (a runner process under
        a stream of placements: many a second, each reading thousands of rows for nothing)."""
        self.observer.start_round()
        now = time.monotonic()
        if self.runs is not None and not self._stop.is_set() and now - self._dispatched_at >= self.cfg.interval_s:
            self._dispatched_at = now
            self.runs.tick()

    def _observation(self) -> fleet.Observation:
        """What the leader applies: its own list calls (one replica), or its share of them (listed in this
        pass, as the one leader always did) and every replica's latest published answers (shared)."""
        if not self.shares_work:
            return observing.observe(self.providers, self.metrics, self.observer.regions())
        self.observer.round()
        return self.observer.latest()

    def _admit(self) -> Callable[[str | None, Any], Any] | None:
        """Release victims whose grace is over, then admit; returns placement's narrowing, or None when
        no queues are configured (no gate)."""
        if self.queues is None:
            return None
        cfg = self.queues()
        if not cfg.enabled:
            return None
        released = admitting.release_victims(self.db, cfg, fenced=self.elector.fenced, actor=self.actor)
        result = admitting.admit_pending(self.db, cfg, fenced=self.elector.fenced, actor=self.actor)
        self.metrics.admissions.labels("admitted").inc(len(result.admitted))
        self.metrics.admissions.labels("preempted").inc(len(result.marked))
        self.metrics.admissions.labels("requeued").inc(len(released))
        for key in result.admitted:
            self.queue.forget(f"place:{key}")
        return lambda flavour, w: admitting.narrow(cfg, flavour, w)

    def _check_health(self) -> None:
        """Evacuate DOWN regions; when one answers again, run its stacks now (not after their backoff)
        so the pools left there are deleted and nothing is orphaned. Now by whichever replica or runner
        process claims them: the backoff their runs failed into during the outage is kept twice, in this
        replica's queue (forgotten here) and in the stacks' work leases, shared by every replica (ended here,
        work_leases.expedite, fenced by this term; a stack some runner holds is left to it). The other
        replicas end their own queue's backoff when they see the shared one over (``_expedited``)."""
        # Probe through the breaker's inner provider: health must see the cloud as it is now, not the
        # breaker's memory of it, or a recovered region would stay "down" until the breaker half-opens.
        self._health = fleet.probe_health({n: unguarded(p) for n, p in self.providers.items()},
                                          self.metrics)
        down_regions, down_providers, back = self.watch.update(self._health)
        moved = failover.evacuate(self.db, down_regions, down_providers, actor=self.actor,
                                  fenced=self.elector.fenced)
        if moved:
            self.metrics.failovers.labels("outage").inc(len(moved))
            for name in moved:
                self.queue.forget(f"place:{name}")
        for provider, region in back:
            prefix = f"awan-{provider}-" if region == "*" else stack_name(provider, region)
            names = [n for n in provisioning.stack_names(self.db) if n.startswith(prefix)]
            for key in [f"stack:{n}" for n in names]:
                self.queue.forget(key)
                self.queue.add(key)
            try:
                work_leases.expedite(self.db, work_leases.STACK, names, fenced=self.elector.fenced)
            except Exception as e:   # they run after their backoff, as before; this replica's queue has them now
                log.warning("ending the recovered region's stacks' shared backoff failed", provider=provider,
                            region=region, error=str(e))
            log.info("region answers again; cleaning up its stacks", provider=provider, region=region)

    def _expedited(self, plans: Mapping[str, provisioning.StackPlan]) -> set[str]:
        """The planned stacks this replica's queue backs off whose shared backoff (their work lease's) is
        already over: due here again now. A failed run sets both at its release, the shared one from every
        replica's attempts (never shorter), so a lease free sooner had its backoff ended early: by the leader,
        for a region that answers again (``_check_health``), whose re-queue reaches its own queue only (with
        runner processes live, the leader runs no stack). Read at most every third of a lease's life: while a
        region is down its stacks back off for minutes, and a query every pass for them would be waste."""
        backing = [n for n, p in plans.items()
                   if p.reason not in ("changed", "drift") and self.queue.backing_off(f"stack:{n}")]
        now = time.monotonic()
        if not backing or now - self._backoffs_read_at < self.cfg.work_lease_ttl_s / 3:
            return set()
        self._backoffs_read_at = now
        try:
            free = work_leases.free_of(self.db, work_leases.STACK, backing)
        except Exception as e:   # read again later; meanwhile this replica's own backoff holds
            log.warning("reading the stacks' shared backoff failed", error=str(e))
            return set()
        for name in free:
            self.queue.forget(f"stack:{name}")
        return free

    def _run_stacks(self) -> None:
        if self.edge is not None:   # from the index the change feed keeps (no scan of the workloads)
            if not self.elector.is_leader:
                self.edge.begin()      # a runner replica: its own pass starts here
            else:
                self.edge.sync()
            with self.db.session() as s:
                plans = self.edge.index.plan(s, resync_s=self.cfg.resync_s, force=sorted(self._drifted))
        else:
            plans = provisioning.plan(self.db, resync_s=self.cfg.resync_s, config=self.cfg.stack_config,
                                      force=sorted(self._drifted))
        by_name = {p.spec.name: p for p in plans}
        expedited = self._expedited(by_name)
        for name, p in by_name.items():
            if p.reason in ("changed", "drift") or name in expedited or not self.queue.backing_off(f"stack:{name}"):
                self.queue.add(f"stack:{name}")
        with self._lock:
            ready: dict[str, list[str]] = {}   # provider -> stacks due here, in queue order
            for key in self.queue.ready(prefix="stack:"):
                name = key.removeprefix("stack:")
                if not key.startswith("stack:") or name not in by_name:
                    continue
                if name in self._inflight:   # one worker per stack: the next pass picks it up
                    continue
                ready.setdefault(by_name[name].spec.provider, []).append(name)
            for i, (provider, names) in enumerate(ready.items()):
                busy = sum(1 for v in self._inflight_provider.values() if v == provider)
                # A fair share of the free workers for each provider with stacks due: one cloud whose stacks
                # keep failing (and are due again every pass) must not hold every worker from the others.
                free = self.cfg.stack_workers - len(self._inflight)
                room = min(self.cfg.provider_concurrency - busy, -(-free // (len(ready) - i)))
                if self._stop.is_set() or room <= 0:
                    continue   # a stack not claimed now is due again next pass (the plan re-adds it)
                force = [n for n in names if by_name[n].reason in ("changed", "drift")]
                for name, epoch in self.share.claim(names, room, force=force).items():
                    self._drifted.discard(name)
                    self._inflight_provider[name] = provider
                    self._inflight[name] = self._pool.submit(self._up, by_name[name], epoch)

    def _up(self, p: provisioning.StackPlan, epoch: int) -> None:
        key = f"stack:{p.spec.name}"
        # Every write about this run is fenced by its stack lease (not the leader's term): a replica whose
        # lease expired (it stalled, or was presumed dead) must not overwrite its successor's result.
        fenced = self.share.fence(p.spec.name, epoch)
        backoff_s = 0.0
        try:
            result = self.engine.up(p.spec)
        except Exception as e:
            self.metrics.stack_runs.labels("failed").inc()
            self.metrics.provider_errors.labels(p.spec.provider, fleet.error_reason(e)).inc()
            log.warning("stack up failed", stack=p.spec.name, error=str(e))
            state = self.engine.recorded_state(p.spec.name) if isinstance(self.engine, RecordsStackState) else None
            if failover.is_pool_failure(e):
                moved = failover.on_stack_failure(self.db, p.spec.pools, e, state=state, blocks=self.blocks,
                                                  actor=self.actor, fenced=fenced)
                self._moved(moved, "capacity")
                if self.cfg.learn_capacity and isinstance(e, CapacityError):
                    self._moved(self._trim(p), "capacity")
            # Retryable errors (outage, throttling) and stock-outs (handled by moving the workloads) say
            # nothing about the workloads left in the stack: they do not count toward failing them. Other
            # errors fail only the workloads of the pools they are about, when that can be told.
            retryable = (isinstance(e, ProviderError) and e.retryable) or failover.is_pool_failure(e)
            culprits = failover.pools_failed_in_run(p.spec.pools, state) or failover.pools_named(str(e), p.spec.pools)
            attempts = provisioning.record_failure(self.db, p, e, actor=self.actor,
                                                   max_attempts=10**9 if retryable else self.cfg.max_stack_attempts,
                                                   fenced=fenced, failed_pools=culprits)
            backoff_s = self.queue.retry(key)
            if attempts:   # the stack's own count (every replica's failures): the backoff all replicas keep
                backoff_s = min(self.cfg.retry_max_s, self.cfg.retry_base_s * 2 ** (attempts - 1))
        else:
            self.metrics.stack_runs.labels("ok").inc()
            provisioning.record_success(self.db, p, result, actor=self.actor, fenced=fenced)
            refused = dict(result.outputs.get("refused") or {})
            self._moved(failover.on_refused(self.db, refused, blocks=self.blocks, actor=self.actor,
                                            fenced=fenced), "refused")
            self.queue.forget(key)
        finally:
            self.share.release(p.spec.name, epoch, backoff_s)
            with self._lock:
                self._inflight.pop(p.spec.name, None)
                self._inflight_provider.pop(p.spec.name, None)

    def _moved(self, keys: list[str], trigger: str) -> None:
        """Workloads failover sent back to Pending: re-place them now, not after a backoff or interval."""
        if not keys:
            return
        self.metrics.failovers.labels(trigger).inc(len(keys))
        self._taken = None   # the clouds said less than they reported (or a block ends): read them again
        for k in keys:
            self.queue.forget(f"place:{k}")
        self._wake.set()

    def wait_idle(self, timeout_s: float = 60.0) -> None:
        """Wait for the stack workers started so far (tests and shutdown)."""
        with self._lock:
            futures = list(self._inflight.values())
        for f in futures:
            f.result(timeout=timeout_s)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.elector.start()
        if self.edge is not None:
            self._listener.start()
        self._waker.start()
        self._thread = threading.Thread(target=self._run, name="awan-reconcile", daemon=True)
        self._thread.start()
        # Which kind of pass this replica runs (AWAN_EDGE_PASSES): the first thing to check when a pass
        # does too little (edge) or too much (full scan).
        log.info("reconcile loop started", mode="edge-triggered" if self.edge is not None else "full-scan",
                 interval_s=self.cfg.interval_s, full_resync_s=self.cfg.full_resync_s)

    def _run(self) -> None:
        """An interval pass every ``interval_s`` (counted from the end of the last); a wake in between runs
        a placing pass (``woken_tick``) for a leader that has run an interval pass in this term, a full one
        for a replica that does not lead (its stack claims). Wakes during a pass are kept for the next one:
        the event is cleared just before a pass starts, so a commit signalled after that is seen by it or
        wakes the next.

        A woken pass waits ``wake_gap_s`` first, and at least as long as the CPU the last one used: under a
        stream of wakes the placing passes then use at most about half a core, so their fixed cost (the claim,
        the snapshot's blocks and caps, the writes: ~10 ms of CPU on SQLite, ~15 ms on PostgreSQL by
        bench.submitcpu.placing) does not starve the API beside them; the CPU, not the wall time, because a
        pass waiting on the database (or for a core on a busy machine) costs nothing to the others, and holding
        as long as it waited would halve the placing rate under load."""
        next_full = 0.0
        took = 0.0
        while not self._stop.is_set():
            full = time.monotonic() >= next_full or not self._can_wake_place()
            cpu = time.thread_time()
            try:
                if full:
                    self.tick()
                else:
                    self.woken_tick()
            except Exception as e:  # one bad pass must not end the loop; the next pass retries
                log.exception("reconcile pass failed", error=str(e))
            if full:
                next_full = time.monotonic() + self.cfg.interval_s
            else:
                took = time.thread_time() - cpu
            self._wake.wait(max(0.0, next_full - time.monotonic()))
            hold = min(max(self.cfg.wake_gap_s, took), next_full - time.monotonic())
            if hold > 0:
                self._stop.wait(hold)   # the rest of a burst's wakes join this pass
            self._wake.clear()

    def stop(self, release_lease: bool = True, grace_s: float = 60.0) -> bool:
        """Stop taking work and wait up to ``grace_s`` for the pass and the running stack runs. Returns
        whether everything finished (False: stack runs still going, to be cut short by the exit)."""
        deadline = time.monotonic() + grace_s
        self._stop.set()
        self._wake.set()
        self._pool.shutdown(wait=False, cancel_futures=True)   # queued stack runs never start
        if self._thread:
            self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._lock:
            running = [f for f in self._inflight.values() if not f.done()]
        log.info("stopping: no new work", running_stack_runs=len(running), grace_s=grace_s)
        _, left = wait(running, timeout=max(0.0, deadline - time.monotonic()))
        drained = not left and not (self._thread and self._thread.is_alive())
        if not drained:
            log.warning("shutdown grace over; unfinished work is left to the next leader, as after a crash",
                        running_stack_runs=len(left))
        # Released only when nothing of ours still runs: a stack run cut short by the exit must not
        # overlap a successor's run of the same stack, so then the lease is left to expire.
        self.elector.stop(release=release_lease and drained)
        self._listener.stop()
        self._waker.stop()
        self.share.stop()
        self.observer.close()
        if self.clusters is not None:
            self.clusters.close()
        return drained
