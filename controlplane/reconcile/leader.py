"""Leader election on the store's lease row: every replica serves the API, only the holder reconciles.

The elector renews well before expiry, on its own connection (a dedicated small engine), so a busy API
that holds every pooled connection cannot starve it. A renewal that fails for want of the store (SQLite's
"database is locked" while a large submit writes, a PostgreSQL hiccup) does not cost leadership: the lease
row still names us until it expires, so we keep leading until shortly before that expiry, retrying sooner.
Only when someone else holds the lease, or our own expiry is near, do we step down at once. The loop checks
the epoch against the row before each write either way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from controlplane.logs import get_logger
from controlplane.store import lease
from controlplane.store.db import Database

log = get_logger("awan.leader")
LEASE = "reconciler"


class LeaderElector:
    def __init__(self, db: Database, holder: str, ttl_s: float = 15.0, renew_s: float = 5.0,
                 on_change: Callable[[bool], None] | None = None, *, own_connection: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if renew_s >= ttl_s:
            raise ValueError("lease_renew_s must be shorter than lease_ttl_s")
        self.db, self.holder, self.ttl_s, self.renew_s = db, holder, ttl_s, renew_s
        # A renewal waits at most a renewal period for the store, so a retry still fits in the lease's life.
        self._lease_db = db.dedicated(busy_timeout_s=renew_s) if own_connection else db
        self.on_change = on_change
        self.epoch: int | None = None
        self._clock = clock
        # Until when (our monotonic clock) we may act on the last renewal: its start plus the lease's life,
        # less a margin for the clocks of the other replicas, which judge the expiry by theirs.
        self._valid_until = 0.0
        self._margin_s = min(2.0, ttl_s / 10)
        self._renewal_failed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        return self.epoch is not None

    def step(self) -> bool:
        """One acquire/renew attempt; returns whether we lead afterwards."""
        was = self.is_leader
        started = self._clock()
        self._renewal_failed = False
        try:
            self.epoch = lease.try_acquire(self._lease_db, LEASE, self.holder, self.ttl_s)
            if self.epoch is not None:
                self._valid_until = started + self.ttl_s - self._margin_s
        except Exception as e:
            if self.epoch is not None and self._clock() < self._valid_until:
                self._renewal_failed = True
                # The row still names us until it expires: a store too busy to answer now is no reason
                # to hand the work over (and to have every row lock of this term released).
                log.warning("lease renewal failed; still leading until the lease expires", error=str(e),
                            seconds_left=round(self._valid_until - self._clock(), 1))
            else:  # the lease may be gone: we cannot prove we lead, so we do not
                log.warning("lease renewal failed", error=str(e))
                self.epoch = None
        if was != self.is_leader:
            log.info("leadership changed", holder=self.holder, leader=self.is_leader, epoch=self.epoch)
            if self.on_change:
                self.on_change(self.is_leader)
        return self.is_leader

    def renewal_pending(self) -> bool:
        """True while leading on a lease whose last renewal attempt failed (retry soon, not in renew_s)."""
        return self.epoch is not None and self._renewal_failed

    def fenced(self) -> bool:
        """True when our epoch is still the lease's: checked right before the loop writes results."""
        return self.epoch is not None and lease.still_held(self.db, LEASE, self.holder, self.epoch)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="awan-leader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step()
            self._stop.wait(self.renew_s / 4 if self.renewal_pending() else self.renew_s)

    def stop(self, release: bool = True) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.ttl_s)
        if release and self.is_leader:
            try:
                lease.release(self._lease_db, LEASE, self.holder)
            except Exception as e:  # shutting down anyway; the lease simply expires
                log.warning("lease release failed", error=str(e))
        self.epoch = None
        if self._lease_db is not self.db:
            self._lease_db.dispose()
