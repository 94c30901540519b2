"""Time-aware placement: run now (at what is free now, usually on-demand) or wait for capacity that starts
later (a Capacity Block, a future reservation), decided by cost.

Each possible start time is tried with the ordinary placement engine on the snapshot *as it will be then*
(``taken_at`` moved to that time, so dated pools are in or out of term exactly as the candidate filter says):
the engine never sees capacity that has not started at the time it places for. The start times tried are
``now`` (or ``notBefore``) and every start of a dated pool inside the window the schedule allows
(``maxWait``; ``deadline - duration``). The cheapest total wins:

    total = price per hour x duration  +  waiting hours x GPUs x ``wait_cost_per_gpu_hour``

ties go to the earlier start. Without a ``duration`` one hour of running is compared.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from controlplane.model.workload import GPUWorkload
from controlplane.placement.cache import IndexCache
from controlplane.placement.candidates import in_term
from controlplane.placement.engine import Placer
from controlplane.placement.results import Assignment, Decision
from controlplane.placement.snapshot import FleetSnapshot
from controlplane.policy.model import PolicySet


@dataclass(frozen=True, slots=True)
class WaitPolicy:
    """What waiting costs: dollars per GPU per hour of delay (people idle, results late). 0 means waiting is
    free, so any cheaper later capacity wins; a large value means never wait."""

    wait_cost_per_gpu_hour: float = 0.0
    min_saving: float = 0.0        # wait only if it saves at least this many dollars


@dataclass(frozen=True, slots=True)
class StartOption:
    start: datetime
    decision: Decision
    run_cost: float                # price per hour x duration
    wait_cost: float

    @property
    def total(self) -> float:
        return self.run_cost + self.wait_cost

    @property
    def reservation(self) -> str:
        return next((a.reservation for a in self.decision.assignments if a.reservation), "")


@dataclass(slots=True)
class TimedDecision:
    workload: str
    action: str                          # run-now | wait | unplaceable
    start: datetime | None
    chosen: StartOption | None
    now_option: StartOption | None
    reasons: list[str] = field(default_factory=list)
    considered: list[StartOption] = field(default_factory=list)

    @property
    def decision(self) -> Decision | None:
        return self.chosen.decision if self.chosen else None

    def to_json(self) -> dict[str, object]:
        return {"workload": self.workload, "action": self.action,
                "start": self.start.isoformat() if self.start else None,
                "reservation": self.chosen.reservation if self.chosen else "",
                "cost": round(self.chosen.run_cost, 2) if self.chosen else None,
                "reasons": list(self.reasons),
                "considered": [{"start": o.start.isoformat(), "reservation": o.reservation,
                                "runCost": round(o.run_cost, 2), "waitCost": round(o.wait_cost, 2)}
                               for o in self.considered]}


def human(d: timedelta) -> str:
    """``2d 4h``, ``3h 20m``, ``45m``: how long a wait is, to the minute."""
    mins = max(0, math.ceil(d.total_seconds() / 60))
    days, rem = divmod(mins, 24 * 60)
    hours, mins = divmod(rem, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{mins}m" if mins and not days else ""]
    return " ".join(p for p in parts if p) or "0m"


def _where(d: Decision) -> str:
    a = d.assignments[0]
    what = f"{a.provider}/{a.region} {a.nodes}x {a.instance_type}"
    return f"{a.reservation} ({what})" if a.reservation else f"{what} {a.capacity_type}"


def _at(snap: FleetSnapshot, t: datetime, duration: timedelta | None) -> FleetSnapshot:
    """The snapshot as it will be at ``t``: dated pools that end before the run would finish are left out
    (a block that ends mid-run would have to be left before its end)."""
    pools = tuple(p for p in snap.pools
                  if p.ends_at is None or duration is None or t + duration <= p.ends_at)
    return dataclasses.replace(snap, taken_at=t, pools=pools)


def start_times(snap: FleetSnapshot, earliest: datetime, latest: datetime | None) -> list[datetime]:
    """``earliest`` and every later start of a dated pool up to ``latest``."""
    later = {p.starts_at for p in snap.pools
             if p.starts_at is not None and p.starts_at > earliest and (latest is None or p.starts_at <= latest)}
    return [earliest, *sorted(later)]


def decide(w: GPUWorkload, snap: FleetSnapshot, policies: PolicySet, existing: Sequence[Assignment] = (),
           policy: WaitPolicy | None = None, cache: IndexCache | None = None) -> TimedDecision:
    """Run now, or wait for capacity that starts later: see the module doc. Nothing is placed into a pool
    outside its term at the start time chosen (the engine's candidate filter, placement.candidates.in_term)."""
    policy = policy or WaitPolicy()
    now = snap.taken_at
    sched = w.spec.schedule
    earliest = max(now, sched.not_before) if sched and sched.not_before else now
    duration = sched.duration if sched else None
    hours = duration.total_seconds() / 3600 if duration else 1.0
    latest: datetime | None = None
    limits: list[tuple[datetime, str]] = []
    if sched and sched.max_wait is not None:
        limits.append((now + sched.max_wait, f"maxWait {human(sched.max_wait)}"))
    if sched and sched.deadline is not None and duration is not None:
        limits.append((sched.deadline - duration, f"the deadline {sched.deadline.isoformat()}"))
    if limits:
        latest = min(t for t, _ in limits)
    gpus = w.total_gpus
    options: list[StartOption] = []
    if latest is None or earliest <= latest:
        for t in start_times(snap, earliest, latest):
            d = Placer(_at(snap, t, duration), policies, existing, cache=cache).place_one(w)
            if d.placed:
                wait_h = (t - now).total_seconds() / 3600
                options.append(StartOption(t, d, d.price_per_hour * hours,
                                           wait_h * gpus * policy.wait_cost_per_gpu_hour))
    now_opt = next((o for o in options if o.start == earliest), None)
    out = TimedDecision(w.name, "unplaceable", None, None, now_opt, considered=options)
    if not options:
        why = (f"no start fits: the window closes at {latest.isoformat()} before {earliest.isoformat()}"
               if latest is not None and earliest > latest else "no capacity at any start time in the window")
        out.reasons = [why]
        # what stops it from starting later too: dated pools beyond the window
        beyond = [p for p in snap.pools if p.starts_at is not None and latest is not None and p.starts_at > latest]
        if beyond and limits:
            first = min(beyond, key=lambda p: p.starts_at or now)
            out.reasons.append(f"{first.reservation_id or first.instance_type} starts "
                               f"{first.starts_at.isoformat() if first.starts_at else ''}, after "
                               f"{min(limits)[1]}")
        return out
    best = min(options, key=lambda o: (o.total, o.start))
    if now_opt is not None and best is not now_opt and now_opt.total - best.total < policy.min_saving:
        best = now_opt
    out.chosen, out.start = best, best.start
    out.action = "run-now" if best.start <= now else "wait"
    if out.action == "wait":
        line = f"waits {human(best.start - now)} for {_where(best.decision)} at ${best.run_cost:,.2f}"
        if now_opt is not None and now_opt is not best:
            line += (f", saves ${now_opt.total - best.total:,.2f} against {_where(now_opt.decision)} "
                     f"now at ${now_opt.run_cost:,.2f}")
        elif best.start == earliest:
            line += f" (notBefore {earliest.isoformat()})"
        out.reasons = [line]
    else:
        out.reasons = [f"runs now on {_where(best.decision)} at ${best.run_cost:,.2f}"]
        cheaper_later = [p for p in snap.pools if p.starts_at is not None and p.starts_at > now
                         and not in_term(p, now)]
        skipped = [o for o in options if o is not best and o.run_cost < best.run_cost]
        if skipped:
            o = min(skipped, key=lambda o: o.run_cost)
            out.reasons.append(f"waiting {human(o.start - now)} for {_where(o.decision)} would save "
                               f"${best.run_cost - o.run_cost:,.2f} but cost ${o.wait_cost:,.2f} of waiting")
        elif cheaper_later and latest is not None:
            p = min(cheaper_later, key=lambda p: p.starts_at or now)
            if p.starts_at is not None and p.starts_at > latest:
                label = min(limits)[1]
                out.reasons.append(f"{p.reservation_id or p.instance_type} starts in {human(p.starts_at - now)}: "
                                   f"waiting for it would miss {label}")
    return out
