"""Live move off an ending Capacity Block: a workload that holds capacity in a block (or any dated
reservation) ending within the policy's ``moveBeforeEnd`` is moved before the end, by the same path as
failover (failover.replace): back to Pending with its assignments cleared, its run's incarnation ended (the
next one starts from the run's checkpoint, ``spec.run.checkpoint``: the old pods are deleted, which gives
them Kubernetes' termination grace to write it), placed again on the next pass. The ending pools are kept
out of placement on every pass until they end (failover's block list), so the move does not land in the
block it leaves. EC2 reclaims a block's instances 30 minutes before its end; moving earlier is what keeps
the run's work.

The clock is the controller's (injectable: the tests move the AWS mock's clock and give the mover the
same time)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from controlplane.logs import get_logger
from controlplane.placement.snapshot import FleetSnapshot
from controlplane.reconcile import failover
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import Assignment, Workload
from controlplane.timeline.timing import human

log = get_logger("awan.moving")


@dataclass(frozen=True, slots=True)
class Ending:
    reservation: str
    ends_at: datetime
    key: failover.PoolKey


def ending_pools(snap: FleetSnapshot, now: datetime, lead: timedelta) -> dict[str, Ending]:
    """Reservation id -> the dated pool that ends within ``lead`` of ``now`` (not yet ended)."""
    out: dict[str, Ending] = {}
    for p in snap.pools:
        if p.reservation_id and p.ends_at is not None and now < p.ends_at <= now + lead:
            out[p.reservation_id] = Ending(p.reservation_id, p.ends_at, (p.provider, p.zone, p.instance_type,
                                                                        p.capacity_type.value, p.reservation_id))
    return out


class BlockEndMover:
    def __init__(self, db: Database, *, actor: str, fenced: Callable[[], bool], blocks: failover.BlockList,
                 snapshot: Callable[[], FleetSnapshot | None], clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.actor, self.fenced, self.blocks = db, actor, fenced, blocks
        self.snapshot, self.clock = snapshot, clock

    def _on_reservations(self) -> bool:
        with self.db.session() as s:
            q = (select(Assignment.id).join(Workload).where(Workload.state.in_(failover.MOVABLE),
                                                            Assignment.reservation != "").limit(1))
            return s.scalar(q) is not None

    def tick(self, lead: timedelta) -> list[str]:
        """Block the pools that end within ``lead`` and move the workloads on them; returns their keys."""
        if not self._on_reservations():
            return []
        snap = self.snapshot()
        if snap is None:
            return []
        now = self.clock()
        ending = ending_pools(snap, now, lead)
        if not ending:
            return []
        self.blocks.block(e.key for e in ending.values())
        moved: list[str] = []
        with self.db.session() as s:
            if not self.fenced():
                return []
            rows = s.scalars(select(Workload).options(selectinload(Workload.assignments))
                             .where(Workload.state.in_(failover.MOVABLE)).with_for_update()).all()
            for row in rows:
                hit = [ending[a.reservation] for a in row.assignments if a.reservation in ending]
                if not hit:
                    continue
                e = min(hit, key=lambda e: e.ends_at)
                why = (f"Capacity Block {e.reservation} ends {e.ends_at.isoformat()} (in {human(e.ends_at - now)}), "
                       f"within moveBeforeEnd {human(lead)}: moved before the end, the run resumes from its checkpoint")
                failover.replace(s, row, actor=self.actor, reason=why, trigger="block-ending",
                                 blocked=[x.key for x in hit], planned=True)
                moved.append(row.key)
                log.info("moved off an ending block", workload=row.key, reservation=e.reservation,
                         ends_at=e.ends_at.isoformat())
        return moved
