"""Work shared by every replica: stack runs, observing and dispatch, taken with work leases
(controlplane/store/work_leases, ``SELECT ... FOR UPDATE SKIP LOCKED``, dstack's pattern).

Why one placer and many runners: placement's capacity accounting is exact only when one process decides
at a time (it subtracts what it already assigned this pass from one snapshot; two placers reading the same
snapshot would both spend the same free nodes). Placement costs CPU, not cloud time. What waits on clouds
is shared by every healthy replica:

- Stack runs (create and delete): each replica claims the stacks it has room for, runs them, writes the
  result fenced by its lease's epoch and releases the lease. A replica that dies stops renewing; its leases
  expire (``ttl_s``) and the next claimant runs the stack again from the store (the engine adopts what the
  cut-short run left, by idempotency key), so nothing is lost and nothing is created twice.
- Observing (listing each provider's live nodes, which is how preempted and vanished nodes are seen):
  each round every replica takes its fair share of the scopes with an "observe" lease, lists them and
  publishes the answers (table ``observations``), fenced by the lease; the lease is given back with a
  backoff of one round, so each scope is listed by one replica a round. The scope is the region where the
  provider can list one region (SupportsRegionalListing: every cloud adapter), else the whole provider
  (``list_nodes``, one call over all its regions). Per region because a cloud's regions fail and slow
  down on their own: a whole-provider list fails or waits with its worst region, so one sick region made
  every region of that cloud "unknown" for the pass, and a lab with 20 regions on one cloud had one
  replica listing all 20 (one after another on AWS and OCI). Listed are the regions the provider is
  configured for and those the store has stacks in (observing.scopes says why both).
- Dispatch (creating a run's Jobs/Deployments/Services, the gang start, following the pods to the end):
  a "dispatch" lease a workload, a fair share a round; each change is written only while the workload's
  lease is still ours, checked in the write's transaction with the lease row share-locked, so a claim by
  another replica cannot slip in between. Garbage on the clusters is collected with a "sweep" lease a
  cluster. Every object has a deterministic name (create-or-get), so even a stalled replica that wakes up
  creates nothing twice; its late changes are dropped by the fence.

A fair share is ceil(work / live replicas): each replica keeps a "replica" lease (renewed with its others)
and counts the live ones. Claims take the longest-waiting free keys first, so what a round had no room for
is first in the next.

What stays with the leader, and why:

- Placement and admission (above), and everything that writes the placer's ledger, the assignments:
  releasing a finished run's capacity after the idle timeout, evacuating a region that is down, re-placing
  a workload whose nodes were preempted or never came.
- Applying observations: the transitions (Provisioning -> Starting/Running, drift back to Provisioning,
  preempted -> re-placed, Deleting -> Deleted) read every provider of a workload at once (a workload may
  span providers, each observed by a different replica) and some decide from state kept over passes (the
  short-of-nodes and unobserved clocks, in the store: controlplane/store/clocks.py; the health debounce).
  They are a database pass of milliseconds; the waiting (list calls) is what is shared. The leader applies each scope's newest answer if it was
  published recently (two leases' lives, at least half the short-of-nodes bound: a list over many slow
  regions can take tens of seconds); else, or on an error, the scope is "unknown", as after a failed list
  call. A workload is compared only when every (provider, region) it is assigned is known: its
  transitions come from the answers of the regions its nodes are in. Answers only move forward (an older one never overwrites a newer one), so a stale
  answer can delay a transition, never invent one the one leader would not have made on it.
- Health probes: they drive evacuation, a transition the placer depends on (one call a provider a pass).

SQLite (the embedded default) has one replica: there the leader does everything, stacks through the same
leases, observing and dispatch directly as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from sqlalchemy.orm import Session

from controlplane.logs import get_logger
from controlplane.reconcile import failover
from controlplane.store import work_leases
from controlplane.store.db import Database

log = get_logger("awan.sharing")


class WorkShare:
    """This replica's work leases: claim, fence, release, and renew the held ones on a connection of
    their own (a busy API or a long stack run cannot starve the renewal).

    Stack leases are held for one run (``claim``/``fence``/``release``). Round leases (observe, dispatch,
    sweep) are taken a fair share at a time (``take``), checked in the write's own transaction
    (``still_mine``) and given back after the round with a backoff of one round (``give_back``)."""

    def __init__(self, db: Database, holder: str, ttl_s: float = 30.0) -> None:
        self.db, self.holder, self.ttl_s = db, holder, ttl_s
        self._own = db.dedicated(busy_timeout_s=max(1.0, ttl_s / 3))
        self._held: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._members = 1
        self._members_at = float("-inf")
        self._runners = 0
        self._runners_at = float("-inf")

    # -- stack runs: one lease a run ---------------------------------------------------------------
    def claim(self, keys: Sequence[str], limit: int, force: Iterable[str] = (),
              kind: str = work_leases.STACK) -> dict[str, int]:
        got = work_leases.claim(self.db, kind, keys, self.holder, self.ttl_s, limit, force=force)
        if got:
            with self._lock:
                self._held.update({(kind, k): e for k, e in got.items()})
            self._ensure_renewer()
        return got

    def fence(self, key: str, epoch: int, kind: str = work_leases.STACK) -> Callable[[], bool]:
        """True while our claim ``epoch`` of ``key`` is still the lease's: checked before each write."""
        return lambda: work_leases.still_held(self.db, kind, key, self.holder, epoch)

    def release(self, key: str, epoch: int, backoff_s: float = 0.0, kind: str = work_leases.STACK) -> None:
        with self._lock:
            if self._held.get((kind, key)) == epoch:
                del self._held[(kind, key)]
        try:
            work_leases.release(self.db, kind, key, self.holder, epoch, backoff_s)
        except Exception as e:   # the lease simply expires; whoever takes it next runs the stack again
            log.warning("work lease release failed", kind=kind, key=key, error=str(e))

    def held(self, kind: str = work_leases.STACK) -> dict[str, int]:
        with self._lock:
            return {k: e for (kd, k), e in self._held.items() if kd == kind}

    # -- round work: a fair share a round ------------------------------------------------------------
    def members(self, fresh: bool = False) -> int:
        """How many replicas are live (their "replica" lease renewed), this one included; refreshed (and
        our own row re-taken, should it have expired during a stall) every third of the lease's life."""
        now = time.monotonic()
        if not fresh and now - self._members_at < self.ttl_s / 3:
            return self._members
        try:
            self.claim([self.holder], 1, kind=work_leases.REPLICA)
            self._members = max(1, work_leases.count_live(self.db, work_leases.REPLICA))
            self._members_at = now
        except Exception as e:   # keep the last count: a share a little off for a while is harmless
            log.warning("counting replicas failed", error=str(e))
        return self._members

    def runners(self) -> int:
        """How many runner processes (controlplane/reconcile/runner.py) hold a live "runner" lease; read
        again every third of the lease's life. On an error: 0, so the caller runs the stacks itself."""
        now = time.monotonic()
        if now - self._runners_at < self.ttl_s / 3:
            return self._runners
        try:
            self._runners = work_leases.count_live(self.db, work_leases.RUNNER)
        except Exception as e:
            log.warning("counting runner processes failed", error=str(e))
            self._runners = 0
        self._runners_at = now
        return self._runners

    def take(self, kind: str, keys: Sequence[str]) -> dict[str, int]:
        """Claim this replica's share of ``keys`` this round: at most ceil(len / live replicas), taking the
        longest-waiting free ones first, so N replicas split a round's work N ways and what one had no
        share for is first in line next round."""
        if not keys or self._stop.is_set():
            return {}
        limit = -(-len(keys) // self.members())
        try:
            return self.claim(keys, limit, kind=kind)
        except Exception as e:   # nothing taken: the others (or our next round) do it
            log.warning("taking shared work failed", kind=kind, error=str(e))
            return {}

    def still_mine(self, s: Session, kind: str, claims: Mapping[str, int]) -> set[str]:
        """The fence of round work, inside the write's transaction (work_leases.still_mine)."""
        return work_leases.still_mine(s, kind, dict(claims), self.holder)

    def give_back(self, kind: str, claims: Mapping[str, int], backoff_s: float) -> None:
        """End the round's claims; nobody takes them again before ``backoff_s`` (the next round)."""
        if not claims:
            return
        with self._lock:
            for k, e in claims.items():
                if self._held.get((kind, k)) == e:
                    del self._held[(kind, k)]
        try:
            work_leases.release_many(self.db, kind, dict(claims), self.holder, backoff_s)
        except Exception as e:   # they expire; the next claimant does them again (idempotent)
            log.warning("giving back shared work failed", kind=kind, error=str(e))

    # -- renewal -----------------------------------------------------------------------------------
    def _ensure_renewer(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._renew_loop, name="awan-work-leases", daemon=True)
                self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            with self._lock:
                if not self._held:
                    continue
            try:
                work_leases.renew(self._own, self.holder, self.ttl_s)
            except Exception as e:   # retried at the next period; the fence refuses writes if it expired
                log.warning("work lease renewal failed", error=str(e))

    def stop(self) -> None:
        """Stop renewing; leases of runs still going are left to expire (as after a crash)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.ttl_s)
        self._own.dispose()


def pool_key_text(k: failover.PoolKey) -> str:
    return "|".join(k)


def pool_key_of(text: str) -> failover.PoolKey | None:
    parts = text.split("|")
    if len(parts) != 5:
        return None
    return parts[0], parts[1], parts[2], parts[3], parts[4]


class SharedBlockList(failover.BlockList):
    """Failover's block list, also written to the store so the one placer sees pools that failed in any
    replica's stack run (else it would place into a stocked-out pool again and again)."""

    def __init__(self, db: Database, ttl_s: float) -> None:
        super().__init__(ttl_s)
        self.db = db

    def block(self, keys: Iterable[failover.PoolKey]) -> None:
        keys = list(keys)
        super().block(keys)
        try:
            work_leases.block(self.db, [pool_key_text(k) for k in keys], self.ttl_s)
        except Exception as e:   # this replica still blocks them; the placer may meet the failure itself
            log.warning("sharing blocked pools failed", error=str(e))

    def shared(self) -> frozenset[failover.PoolKey]:
        """This replica's blocks and every other replica's still in the store."""
        try:
            stored = {k for t in work_leases.blocked(self.db) if (k := pool_key_of(t)) is not None}
        except Exception as e:
            log.warning("reading shared blocked pools failed", error=str(e))
            stored = set()
        return self.active() | stored
