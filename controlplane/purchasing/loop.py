"""What the controller runs each pass for capacity over time: the purchasing step (propose and buy on
policy) and the move off ending blocks (controlplane/timeline/moving.py), both read from the one
PurchasingPolicy in force. Returns the keys of workloads moved, for the controller to re-place at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from controlplane.placement.snapshot import FleetSnapshot
from controlplane.purchasing.model import PurchasingConfig
from controlplane.purchasing.step import PurchaseStep
from controlplane.reconcile.failover import BlockList
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.timeline.moving import BlockEndMover
from providers.base import Provider


class BuyingStep:
    def __init__(self, db: Database, providers: Mapping[str, Provider],
                 source: Callable[[], PurchasingConfig | None], *, actor: str, fenced: Callable[[], bool],
                 blocks: BlockList, snapshot: Callable[[], FleetSnapshot | None],
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.purchases = PurchaseStep(db, providers, source, actor=actor, fenced=fenced, clock=clock)
        self.mover = BlockEndMover(db, actor=actor, fenced=fenced, blocks=blocks, snapshot=snapshot, clock=clock)

    def set_clock(self, clock: Callable[[], datetime]) -> None:
        """The controller's idea of now (tests give the AWS mock's clock, which they move)."""
        self.purchases.clock = self.mover.clock = clock

    def tick(self) -> list[str]:
        if not self.purchases.fenced():
            return []
        self.purchases.tick()
        cfg = self.purchases.config()
        if cfg is None or cfg.move_before_end is None:
            return []
        return self.mover.tick(cfg.move_before_end)
