"""Work shared by every replica: stack runs taken with per-stack leases (controlplane/store/work_leases).

Why one placer and many runners: placement's capacity accounting is exact only when one process decides
at a time (it subtracts what it already assigned this pass from one snapshot; two placers reading the same
snapshot would both spend the same free nodes). Placement costs CPU, not cloud time. What waits on clouds
is running stacks (seconds per create on a real cloud), so that is what every healthy replica shares: each
claims the stacks it has room for with ``SELECT ... FOR UPDATE SKIP LOCKED``, runs them, writes the result
fenced by its lease's epoch and releases the lease. A replica that dies stops renewing; its leases expire
(``ttl_s``) and the next claimant runs the stack again from the store (the engine adopts what the cut-short
run left, by idempotency key), so nothing is lost and nothing is created twice.

SQLite (the embedded default) has one replica: there the leader runs every stack, through the same leases.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence

from controlplane.logs import get_logger
from controlplane.reconcile import failover
from controlplane.store import work_leases
from controlplane.store.db import Database

log = get_logger("awan.sharing")


class WorkShare:
    """This replica's stack leases: claim, fence, release, and renew the held ones on a connection of
    their own (a busy API or a long stack run cannot starve the renewal)."""

    def __init__(self, db: Database, holder: str, ttl_s: float = 30.0) -> None:
        self.db, self.holder, self.ttl_s = db, holder, ttl_s
        self._own = db.dedicated(busy_timeout_s=max(1.0, ttl_s / 3))
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def claim(self, keys: Sequence[str], limit: int, force: Iterable[str] = ()) -> dict[str, int]:
        got = work_leases.claim(self.db, work_leases.STACK, keys, self.holder, self.ttl_s, limit, force=force)
        if got:
            with self._lock:
                self._held.update(got)
            self._ensure_renewer()
        return got

    def fence(self, key: str, epoch: int) -> Callable[[], bool]:
        """True while our claim ``epoch`` of ``key`` is still the lease's: checked before each write."""
        return lambda: work_leases.still_held(self.db, work_leases.STACK, key, self.holder, epoch)

    def release(self, key: str, epoch: int, backoff_s: float = 0.0) -> None:
        with self._lock:
            if self._held.get(key) == epoch:
                del self._held[key]
        try:
            work_leases.release(self.db, work_leases.STACK, key, self.holder, epoch, backoff_s)
        except Exception as e:   # the lease simply expires; whoever takes it next runs the stack again
            log.warning("work lease release failed", stack=key, error=str(e))

    def held(self) -> dict[str, int]:
        with self._lock:
            return dict(self._held)

    def _ensure_renewer(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._renew_loop, name="awan-work-leases", daemon=True)
                self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            if not self.held():
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
