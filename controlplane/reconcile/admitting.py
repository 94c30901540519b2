"""Step 0 of a pass: the admission gate before placement (controlplane/queues decides; this applies).

Reads every waiting and every quota-holding workload, runs one admission cycle, and writes the result in
one transaction while we hold the leader epoch: admitted workloads get their queue, flavour and
``admitted_at`` (placement then takes only those); waiting ones their reason and position; victims are
marked with their preemptor (audited on both sides). A second step releases marked victims once their
grace period is over: back to Pending, assignments cleared (so the next stack run deletes their pools and
they are placed again later: release and re-provision), admission dropped, audited on both sides.

Crash safety: marking and releasing are each one transaction, and each acts only on rows in the state it
expects (``preempted_for`` unset, resp. set on an admitted row), so a controller killed at any point and restarted neither
loses a victim nor preempts one twice; the marked victims count as their preemptor's room meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, load_only

from controlplane.logs import get_logger
from controlplane.model.workload import GPUWorkload
from controlplane.queues import Admitted, Pending, QueueConfig, admit, parse_queue_text
from controlplane.queues.admission import Cycle
from controlplane.reconcile import restarts
from controlplane.store import audit
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import QUEUED_STATES, Workload, WorkloadState

log = get_logger("awan.admitting")
HOLDING = QUEUED_STATES


class QueueSource:
    """The QueueConfig in force, from the same policy text as placement (parsed once per distinct text)."""

    def __init__(self, document: Callable[[], tuple[str, str]]) -> None:
        self._document = document
        self._cached: tuple[str, QueueConfig] | None = None
        self._lock = threading.Lock()

    def current(self) -> QueueConfig:
        text, _ = self._document()
        with self._lock:
            if self._cached and self._cached[0] == text:
                return self._cached[1]
        cfg = parse_queue_text(text, "policy document") if text.strip() else QueueConfig()
        with self._lock:
            self._cached = (text, cfg)
        return cfg


def _epoch(t: datetime | None) -> float | None:
    return None if t is None else t.timestamp()


def _models(spec: dict) -> tuple[str, ...]:   # type: ignore[type-arg]
    m = (spec.get("spec") or {}).get("gpus", {}).get("model", [])
    return tuple([m] if isinstance(m, str) else m)


def _providers(spec: dict) -> tuple[str, ...] | None:   # type: ignore[type-arg]
    regions = ((spec.get("spec") or {}).get("location") or {}).get("regions")
    if not regions:
        return None
    return tuple(sorted({r.split(":", 1)[0] for r in regions if ":" in r})) or None


def queue_of(row: Workload, config: QueueConfig) -> str | None:
    named = (row.spec.get("spec") or {}).get("queue")
    return named if named else config.queue_for_team(row.team)


def _adopt(config: QueueConfig, r: Workload) -> tuple[str, str] | None:
    """(queue, flavour) a workload admitted before queues existed counts against, or None (unmanaged)."""
    qn = queue_of(r, config)
    q = config.queues.get(qn or "")
    if q is None:
        return None
    models = _models(r.spec)
    return next(((q.name, f) for f in q.quotas if config.flavours[f].gpu_model in models), None)


@dataclass
class AdmitResult:
    cycle: Cycle = field(default_factory=Cycle)
    admitted: list[str] = field(default_factory=list)
    marked: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)


_COLS = (Workload.id, Workload.name, Workload.team, Workload.spec, Workload.priority, Workload.gpus,
         Workload.state, Workload.created_at, Workload.queue, Workload.flavour, Workload.admitted_at,
         Workload.running_at, Workload.preempted_for, Workload.preempt_requested_at, Workload.message,
         Workload.wait_reason, Workload.queue_position, Workload.generation)


def _load(s: Session) -> list[Workload]:
    return list(s.scalars(select(Workload).where(Workload.state.in_(HOLDING))
                          .options(load_only(*_COLS)).order_by(Workload.id)))


def admit_pending(db: Database, config: QueueConfig, *, fenced: Callable[[], bool], actor: str,
                  now: Callable[[], float] = time.time) -> AdmitResult:
    """One admission cycle over the store. With no queues configured, nothing is gated."""
    out = AdmitResult()
    if not config.enabled:
        return out
    t = now()
    with db.session() as s:
        rows = _load(s)
        by_key = {r.key: r for r in rows}
        holders, waiting = [], []
        adopt: list[tuple[Workload, tuple[str, str]]] = []
        # Victims already released keep their preemptor's key until it is admitted: it goes first, so the
        # room they left is not taken by another workload (which would make it preempt again).
        nominated = {r.preempted_for for r in rows if r.preempted_for is not None and r.admitted_at is None}
        for r in rows:
            if r.admitted_at is not None and r.flavour is not None and r.queue is not None:
                holders.append(Admitted(r.key, r.queue, r.flavour, r.gpus, r.priority, _epoch(r.admitted_at) or 0.0,
                                        _epoch(r.running_at) if r.state == WorkloadState.RUNNING.value else None,
                                        None, r.preempted_for))
            elif r.state != WorkloadState.PENDING.value:
                # Running before queues were configured (or before its queue existed): adopted, so what
                # it holds counts against its queue's quota.
                f = _adopt(config, r)
                if f is not None:
                    adopt.append((r, f))
                    holders.append(Admitted(r.key, f[0], f[1], r.gpus, r.priority, t,
                                            _epoch(r.running_at) if r.state == WorkloadState.RUNNING.value
                                            else None))
            elif r.state == WorkloadState.PENDING.value:
                waiting.append(Pending(r.key, queue_of(r, config), r.gpus, _models(r.spec),
                                       tuple((r.spec.get("spec") or {}).get("capacityType")
                                             or ("reserved", "on-demand")),
                                       _providers(r.spec), r.priority, _epoch(r.created_at) or 0.0,
                                       r.key in nominated, r.id))
        cyc = admit(config, holders, waiting, t)
        out.cycle = cyc
        if not fenced():
            log.warning("lost leadership before writing admissions; discarding them")
            return out
        stamp = utcnow()
        for r, (qn, fl) in adopt:
            r.queue, r.flavour, r.admitted_at = qn, fl, stamp
            audit.record(s, actor=actor, action="admitted", kind="workload", subject=r.name, team=r.team,
                         details={"queue": qn, "flavour": fl, "gpus": r.gpus, "adopted": True})
        for a in cyc.admitted:
            r = by_key[a.key]
            r.queue, r.flavour, r.admitted_at = a.queue, a.flavour, stamp
            r.preempted_for = r.preempt_requested_at = None   # a released victim admitted again
            r.wait_reason, r.queue_position = "", None
            r.message = f"admitted by queue {a.queue} on {a.flavour}" + (f" (borrowing {a.borrowed})" if a.borrowed
                                                                          else "")
            audit.record(s, actor=actor, action="admitted", kind="workload", subject=r.name, team=r.team,
                         details={"queue": a.queue, "flavour": a.flavour, "gpus": a.gpus, "borrowed": a.borrowed})
            out.admitted.append(a.key)
        for w in cyc.waiting.values():
            r = by_key[w.key]
            msg = f"waiting ({w.reason}): " + (f"#{w.position} in queue {w.queue}; " if w.position else "") + w.message
            if (r.queue, r.wait_reason, r.queue_position, r.message) != (w.queue, w.reason, w.position or None,
                                                                         msg[:1000]):
                r.queue, r.wait_reason, r.queue_position, r.message = w.queue, w.reason, w.position or None, msg[:1000]
        for p in cyc.preemptions:
            v, by = by_key[p.victim], by_key[p.preemptor]
            if v.preempted_for is not None:   # cannot happen (the engine skips them); never mark twice
                continue
            v.preempted_for, v.preempt_requested_at = p.preemptor, stamp
            details = {"victim": v.name, "victimTeam": v.team, "victimQueue": p.victim_queue,
                       "preemptor": by.name, "preemptorTeam": by.team, "preemptorQueue": p.preemptor_queue,
                       "reason": p.reason, "flavour": p.flavour, "gpus": p.gpus,
                       "lostGpuHours": round(p.lost_gpu_hours, 3), "gracePeriodS": config.grace_period_s}
            audit.record(s, actor=actor, action="preempted", kind="workload", subject=v.name, team=v.team,
                         details=details)
            audit.record(s, actor=actor, action="preempting", kind="workload", subject=by.name, team=by.team,
                         details=details)
            out.marked.append(p.victim)
        done = {a.key for a in cyc.admitted}
        for r in rows:   # nominations end once their preemptor is admitted or gone
            if r.preempted_for is not None and r.admitted_at is None and (
                    r.preempted_for in done or r.preempted_for not in cyc.waiting):
                r.preempted_for = None
    return out


def release_victims(db: Database, config: QueueConfig, *, fenced: Callable[[], bool], actor: str,
                    now: Callable[[], float] = time.time, keys: Sequence[str] | None = None) -> list[str]:
    """Requeue every marked victim whose grace period is over, each in its own transaction."""
    cutoff = datetime.fromtimestamp(now(), tz=utcnow().tzinfo) - timedelta(seconds=config.grace_period_s)
    with db.session() as s:
        ids = list(s.scalars(select(Workload.id).where(Workload.preempted_for.is_not(None),
                                                       Workload.admitted_at.is_not(None),
                                                       Workload.preempt_requested_at <= cutoff)))
    out: list[str] = []
    for wid in ids:
        with db.session() as s:
            r = s.scalars(select(Workload).where(Workload.id == wid).with_for_update()).first()
            if r is None or r.preempted_for is None or r.admitted_at is None or (keys is not None and r.key not in keys):
                continue
            if not fenced():
                return out
            by = r.preempted_for
            if r.state in HOLDING:
                old = [{"provider": a.provider, "region": a.region, "zone": a.zone, "gpus": a.gpus}
                       for a in r.assignments]
                r.assignments.clear()
                r.placement = None
                r.running_at = None
                r.state = WorkloadState.PENDING.value
                r.preemptions += 1
                # A run resumes through its checkpoint in its next incarnation; not a failure retry.
                cp = restarts.preempted(r)
                r.message = (f"preempted for {by}: requeued (it keeps its place by submission time)"
                             + (f"; resumes from checkpoint {cp}" if cp else ""))[:1000]
                details = {"preemptor": by, "from": old, "preemptions": r.preemptions}
                if cp:
                    details |= {"checkpoint": cp, "incarnation": r.restarts}
                audit.record(s, actor=actor, action="requeued", kind="workload", subject=r.name, team=r.team,
                             details=details)
            # ``preempted_for`` stays: it nominates the preemptor until admitted (see admit_pending).
            r.admitted_at, r.flavour, r.preempt_requested_at = None, None, None
            out.append(r.key)
    return out


def narrow(config: QueueConfig, flavour: str | None, w: GPUWorkload) -> GPUWorkload:
    """The workload as placement must see it: on the GPU model (and provider, capacity type) of the
    flavour whose quota it holds, so it is never placed on capacity another flavour's quota counts."""
    f = config.flavours.get(flavour or "")
    if f is None:
        return w
    spec = w.spec
    gpus = spec.gpus.model_copy(update={"model": [f.gpu_model]})
    update: dict[str, object] = {"gpus": gpus}
    if f.capacity_type is not None:
        update["capacity_type"] = [c for c in spec.capacity_type if c.value == f.capacity_type]
    if f.provider is not None:
        regions = [r for r in spec.location.regions or [] if r.startswith(f"{f.provider}:")] or [f"{f.provider}:*"]
        update["location"] = spec.location.model_copy(update={"regions": regions})
    return w.model_copy(update={"spec": spec.model_copy(update=update)})
