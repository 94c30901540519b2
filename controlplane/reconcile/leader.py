"""Leader election on the store's lease row: every replica serves the API, only the holder reconciles.

The elector renews well before expiry; if a renewal fails (lost DB, or someone took an expired lease)
it stops being leader at once, and the loop checks the epoch before each write.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from controlplane.logs import get_logger
from controlplane.store import lease
from controlplane.store.db import Database

log = get_logger("awan.leader")
LEASE = "reconciler"


class LeaderElector:
    def __init__(self, db: Database, holder: str, ttl_s: float = 15.0, renew_s: float = 5.0,
                 on_change: Callable[[bool], None] | None = None) -> None:
        if renew_s >= ttl_s:
            raise ValueError("lease_renew_s must be shorter than lease_ttl_s")
        self.db, self.holder, self.ttl_s, self.renew_s = db, holder, ttl_s, renew_s
        self.on_change = on_change
        self.epoch: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        return self.epoch is not None

    def step(self) -> bool:
        """One acquire/renew attempt; returns whether we lead afterwards."""
        was = self.is_leader
        try:
            self.epoch = lease.try_acquire(self.db, LEASE, self.holder, self.ttl_s)
        except Exception as e:  # the DB is away: we cannot prove we lead, so we do not
            log.warning("lease renewal failed", error=str(e))
            self.epoch = None
        if was != self.is_leader:
            log.info("leadership changed", holder=self.holder, leader=self.is_leader, epoch=self.epoch)
            if self.on_change:
                self.on_change(self.is_leader)
        return self.is_leader

    def fenced(self) -> bool:
        """True when our epoch is still the lease's: checked right before the loop writes results."""
        return self.epoch is not None and lease.still_held(self.db, LEASE, self.holder, self.epoch)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="awan-leader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step()
            self._stop.wait(self.renew_s)

    def stop(self, release: bool = True) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.ttl_s)
        if release and self.is_leader:
            try:
                lease.release(self.db, LEASE, self.holder)
            except Exception as e:  # shutting down anyway; the lease simply expires
                log.warning("lease release failed", error=str(e))
        self.epoch = None
