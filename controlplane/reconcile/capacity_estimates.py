"""Capacity the clouds do not publish, learned from what provisioning meets.

EC2, GCE and ARM have no free-capacity API: their pools report quota headroom, an upper bound that may be
thousands of nodes above what the zone really has. Placing a burst by that bound fails over one stock-out
at a time (SkyPilot's block list and Karpenter's 3-minute insufficient-capacity cache are what we had). So
a stock-out in a pool is also a measurement: the pool holds what we hold there now, and no more. The pool
is then capped at that many nodes (placement sees ``cap - nodes assigned there`` free, whatever the quota
headroom says), so the rest of a burst goes elsewhere in one round instead of one stock-out per workload.

Caps are not for ever (others release capacity, zones refill): after the hold (``ttl_s``, doubled for every
stock-out in a row, at most ``max_hold_s``) the cap probes back up, by 1, 2, 4, ... nodes for each further
``ttl_s`` (the exponential back-off, applied to the blocked size), and is forgotten once the probe exceeds
``forget_above`` nodes. A new stock-out while probing caps it again, held twice as long.

Stored in the store (table ``capacity_estimates``), so every replica's stack runs teach the one placer and a
restart forgets nothing; the ``nodes`` figure is what every replica counts from the workloads' assignments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from controlplane.model.identity import workload_key
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import ACTIVE_STATES, Assignment, CapacityEstimate, Workload, WorkloadState

PoolKey = tuple[str, str, str, str, str]   # provider, zone, instance type, capacity type, reservation id
TTL_S = 180.0          # Karpenter's ICE cache; failover's block list holds the pool as long
MAX_HOLD_S = 1800.0
FORGET_ABOVE = 1024
# Nodes of ours a pool of unpublished capacity may hold before any of them is confirmed (doubling as they
# are): wide enough for a 256-GPU gang in one pool, narrow enough that a burst spreads.
SLOW_START = 32    # a probe this large says nothing about a pool any more: drop the row


def key_text(k: PoolKey) -> str:
    return "|".join(k)


def key_of_text(text: str) -> PoolKey | None:
    parts = text.split("|")
    return (parts[0], parts[1], parts[2], parts[3], parts[4]) if len(parts) == 5 else None


def label(k: PoolKey) -> str:
    provider, zone, instance_type, capacity_type, reservation = k
    return f"{provider}:{zone} {instance_type} {capacity_type}" + (f" ({reservation})" if reservation else "")


@dataclass(frozen=True)
class Estimate:
    key: PoolKey
    nodes: int                  # what we held there at the last stock-out
    stock_outs: int             # in a row
    stocked_out_at: datetime

    def hold_s(self, ttl_s: float = TTL_S, max_hold_s: float = MAX_HOLD_S) -> float:
        return min(max_hold_s, ttl_s * float(2 ** max(0, self.stock_outs - 1)))

    def allowed(self, now: datetime, ttl_s: float = TTL_S, max_hold_s: float = MAX_HOLD_S) -> int | None:
        """Total nodes of ours the pool may hold at ``now``; None when the estimate is spent (no cap)."""
        past = (now - self.stocked_out_at).total_seconds() - self.hold_s(ttl_s, max_hold_s)
        if past < 0:
            return self.nodes
        steps = int(past // ttl_s)
        if steps >= FORGET_ABOVE.bit_length():
            return None
        return self.nodes + (1 << steps)

    def describe(self, now: datetime, ttl_s: float = TTL_S, max_hold_s: float = MAX_HOLD_S) -> str:
        ago = max(0.0, (now - self.stocked_out_at).total_seconds())
        when = f"{ago:.0f} s" if ago < 120 else f"{ago / 60:.0f} min"
        cap = self.allowed(now, ttl_s, max_hold_s)
        probing = "" if cap is None or cap == self.nodes else f" (probing: {cap} now)"
        return f"{label(self.key)} capped at {self.nodes} nodes after a stock-out {when} ago{probing}"


@dataclass(frozen=True)
class Cap:
    free: int           # nodes placement may still put there
    why: str


def held(s: Session, keys: Iterable[PoolKey], exclude: Iterable[str] = ()) -> dict[PoolKey, int]:
    """Nodes assigned to workloads that hold (or are about to hold) them, per pool in ``keys``; workloads
    keyed in ``exclude`` (those failover is moving away) are left out."""
    want = set(keys)
    if not want:
        return {}
    skip = set(exclude)
    providers = {k[0] for k in want}
    rows = s.execute(select(Assignment.provider, Assignment.zone, Assignment.instance_type,
                            Assignment.capacity_type, Assignment.reservation, Assignment.nodes,
                            Workload.name, Workload.team)
                     .join(Workload, Workload.id == Assignment.workload_id)
                     .where(Workload.state.in_([st.value for st in ACTIVE_STATES]),
                            Assignment.provider.in_(providers)))
    out: dict[PoolKey, int] = {k: 0 for k in want}
    for prov, zone, it, ct, res, nodes, name, team in rows:
        k = (prov, zone, it, ct, res or "")
        if k in want and workload_key(team, name) not in skip:
            out[k] += int(nodes)
    return out


def record_stock_out(s: Session, counts: Mapping[PoolKey, int], *, now: datetime | None = None,
                     ttl_s: float = TTL_S, max_hold_s: float = MAX_HOLD_S) -> list[Estimate]:
    """A stock-out in each pool of ``counts`` (pool -> nodes we hold there now): cap it there. A stock-out
    while the previous cap still applies (held or probing) counts as one more in a row."""
    now = now or utcnow()
    out = []
    for k, n in counts.items():
        row = s.get(CapacityEstimate, key_text(k))
        if row is None:
            row = CapacityEstimate(pool=key_text(k), nodes=n, stock_outs=1, stocked_out_at=now)
            s.add(row)
        else:
            prev = Estimate(k, row.nodes, row.stock_outs, row.stocked_out_at)
            row.stock_outs = row.stock_outs + 1 if prev.allowed(now, ttl_s, max_hold_s) is not None else 1
            row.nodes, row.stocked_out_at = n, now
        out.append(Estimate(k, row.nodes, row.stock_outs, row.stocked_out_at))
    s.flush()
    return out


def load(db: Database) -> list[Estimate]:
    with db.session() as s:
        return _estimates(s)


def _estimates(s: Session) -> list[Estimate]:
    return [Estimate(k, r.nodes, r.stock_outs, r.stocked_out_at)
            for r in s.scalars(select(CapacityEstimate)) if (k := key_of_text(r.pool)) is not None]


@dataclass(frozen=True)
class Learned:
    """What placement's snapshot is capped by this pass: the estimates (``caps``), and, for pools whose
    capacity the cloud does not publish and that never ran out (unconfirmed pools), a start size: at most
    ``max(start, 2 x confirmed, floor)`` nodes of ours there, ``confirmed`` being nodes a stack run really
    created (workloads past Placed). A burst then spreads over many pools and grows into the ones that
    deliver, instead of piling into the cheapest pool up to its quota headroom and failing over by the
    hundred, one pool per round.

    The start of a cloud some of whose pools ran out is what they taught (``starts``: the largest estimate
    among them), whether or not a slow start is configured: the 2,000-workload burst into pools of a few
    nodes otherwise learns one pool per provider per pass (6 workloads a pass at 3 nodes a pool). Before
    any stock-out, only a configured ``start`` caps. ``floor`` (the largest gang waiting) keeps every start
    placeable: a single gang larger than the start still fits a pool nothing of ours has run in."""

    caps: Mapping[PoolKey, Cap]
    usage: Mapping[PoolKey, tuple[int, int]]    # pool -> (nodes assigned, nodes confirmed)
    start: int | None = SLOW_START              # None: no slow start before a cloud's first stock-out
    # provider -> its start once pools of it ran out: the largest estimate among them (a cloud whose
    # pools held 3 nodes is offered 3 a pool, not its quota headroom, in the next round)
    starts: Mapping[str, int] = field(default_factory=dict)
    floor: int = 0                              # nodes of the largest gang waiting to be placed (at most)

    def allowed(self, k: PoolKey) -> int | None:
        """Nodes of ours pool ``k`` (not estimated, capacity unpublished) may hold now; None: no start.
        A configured start doubles with the nodes confirmed there. A start its cloud taught does not: its
        pools that ran out say the others are likely as small, and a probe past it in every pool that
        delivered cost one failed stack run per pool (the engine stops at a stack's first error). Nor does
        it probe up with the estimates (every pool of the cloud would probe at once, a stock-out each): a
        pool larger than it is found once those estimates are spent, or when it gets an estimate of its own."""
        confirmed = self.usage.get(k, (0, 0))[1]
        if k[0] in self.starts:
            return max(self.starts[k[0]], confirmed, self.floor)
        if self.start is None:
            return None
        return max(self.start, 2 * confirmed, self.floor)

    def free(self, k: PoolKey, reported: int, known: bool) -> tuple[int, str] | None:
        """The capped free nodes of pool ``k`` and why, or None when nothing caps it below ``reported``."""
        c = self.caps.get(k)
        if c is not None:
            return (c.free, c.why) if c.free < reported else None
        allowed = None if known else self.allowed(k)
        if allowed is None:
            return None
        assigned, confirmed = self.usage.get(k, (0, 0))
        free = max(0, allowed - assigned)
        if free >= reported:
            return None
        taught = " (what its pools that ran out held)" if k[0] in self.starts else ""
        return free, (f"{label(k)}: at most {allowed} nodes until more are confirmed (the cloud publishes no "
                      f"free capacity{taught}; {confirmed} created so far)")


def usage(s: Session) -> dict[PoolKey, tuple[int, int]]:
    """Per pool: nodes assigned to active workloads, and of those the nodes confirmed (past Placed)."""
    rows = s.execute(select(Assignment.provider, Assignment.zone, Assignment.instance_type, Assignment.capacity_type,
                            Assignment.reservation, Workload.state, func.sum(Assignment.nodes))
                     .join(Workload, Workload.id == Assignment.workload_id)
                     .where(Workload.state.in_([st.value for st in ACTIVE_STATES]))
                     .group_by(Assignment.provider, Assignment.zone, Assignment.instance_type,
                               Assignment.capacity_type, Assignment.reservation, Workload.state))
    out: dict[PoolKey, tuple[int, int]] = {}
    for prov, zone, it, ct, res, state, n in rows:
        k = (prov, zone, it, ct, res or "")
        a, c = out.get(k, (0, 0))
        out[k] = (a + int(n or 0), c + (int(n or 0) if state != WorkloadState.PLACED.value else 0))
    return out


def learned(db: Database, *, now: datetime | None = None, ttl_s: float = TTL_S, max_hold_s: float = MAX_HOLD_S,
            start: int | None = SLOW_START, placement_only: bool = False) -> Learned:
    """This pass's caps (estimates and starts), read from the store in one transaction. ``start=None``: no
    slow start before a cloud's first stock-out. ``placement_only``: what ``fleet.apply_caps`` reads and no
    more: without a start (none configured, no stock-out taught one) no pool's cap depends on the nodes
    assigned or the gangs waiting, so those two reads (the first grows with every active workload) are left
    out and ``usage`` is empty, ``floor`` 0."""
    with db.session() as s:
        c, live = _caps_in(s, now or utcnow(), ttl_s, max_hold_s)
        starts: dict[str, int] = {}
        for e in live:   # what the pool held when it ran out (its own cap probes up; the start does not)
            taught = max(starts.get(e.key[0], 1), e.nodes)
            starts[e.key[0]] = min(start, taught) if start else taught
        if placement_only and start is None and not starts:
            return Learned(c, {}, start, starts, 0)
        # Workload.gpus bounds the nodes one gang needs in a pool (every node has a GPU at least).
        floor = int(s.scalar(select(func.max(Workload.gpus)).where(Workload.state == WorkloadState.PENDING.value))
                    or 0)
        return Learned(c, usage(s), start, starts, floor)


def caps(db: Database, *, now: datetime | None = None, ttl_s: float = TTL_S,
         max_hold_s: float = MAX_HOLD_S) -> dict[PoolKey, Cap]:
    """Placement's caps this pass: per estimated pool, the nodes it may still take (its allowance less what
    is assigned there now). Spent estimates are deleted."""
    with db.session() as s:
        return _caps_in(s, now or utcnow(), ttl_s, max_hold_s)[0]


def _caps_in(s: Session, now: datetime, ttl_s: float, max_hold_s: float) -> tuple[dict[PoolKey, Cap], list[Estimate]]:
    """``caps`` in ``s``'s transaction, and the live estimates they come from."""
    live: list[Estimate] = []
    spent: list[Estimate] = []
    for e in _estimates(s):
        (live if e.allowed(now, ttl_s, max_hold_s) is not None else spent).append(e)
    if spent:
        s.execute(delete(CapacityEstimate).where(CapacityEstimate.pool.in_([key_text(e.key) for e in spent])))
    used = held(s, [e.key for e in live])
    out = {}
    for e in live:
        allowed = e.allowed(now, ttl_s, max_hold_s)
        assert allowed is not None
        out[e.key] = Cap(max(0, allowed - used.get(e.key, 0)), e.describe(now, ttl_s, max_hold_s))
    return out, live
