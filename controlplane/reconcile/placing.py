"""Step 1: place pending workloads (as one batch, priority first) and record placement, explanation
and an audit event in one transaction, only while we still hold the leader epoch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from controlplane.logs import get_logger
from controlplane.model.workload import GPUWorkload
from controlplane.reconcile.desired import pool_name
from controlplane.reconcile.metrics import LoopMetrics
from controlplane.store import audit, changes
from controlplane.store import workloads as repo
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import Assignment, Workload, WorkloadState

log = get_logger("awan.placing")
# Pending workloads claimed by one placing pass: a burst beyond it is placed by the passes that follow at
# once (``more``), not one batch per interval pass.
PLACE_BATCH = 500
PlaceFn = Callable[[Sequence[GPUWorkload], Any, Any], Any]   # (workloads, snapshot, policies) -> result


def default_place(workloads: Sequence[GPUWorkload], snapshot: Any, policies: Any) -> Any:
    # the engine's batch, plus spec.schedule: a scheduled workload may wait for capacity that starts later
    from controlplane.timeline.placing import timed_place

    return timed_place(workloads, snapshot, policies)


class CachedPlace:
    """The loop's PlaceFn: default_place with an index cache the controller owns (placement keeps nothing
    between calls), so a pass over an unchanged fleet rebases the last index instead of building one
    (about 70 ms of CPU per pass without it, 1 ms with it, by the placement helper's measurement)."""

    def __init__(self) -> None:
        from controlplane.placement.cache import IndexCache

        self.cache = IndexCache()

    def __call__(self, workloads: Sequence[GPUWorkload], snapshot: Any, policies: Any) -> Any:
        from controlplane.timeline.placing import timed_place

        return timed_place(workloads, snapshot, policies, cache=self.cache)


def _value(x: Any) -> str:
    return str(getattr(x, "value", x))


def _assignment_values(decision: Any) -> list[dict[str, Any]]:
    return [{"provider": a.provider, "region": a.region, "zone": a.zone, "instance_type": a.instance_type,
             "nodes": a.nodes, "gpus": a.gpus, "gpu_model": a.gpu_model, "capacity_type": _value(a.capacity_type),
             "reservation": a.reservation or "", "price_per_hour": float(a.price_per_hour or 0.0),
             "replica_group": a.replica_group}
            for a in decision.assignments]


def _assignments(decision: Any) -> list[Assignment]:
    """A decision's assignments as (unsaved) rows: what a placed workload's rows look like (tests build
    workloads with them)."""
    return [Assignment(pool="", **v) for v in _assignment_values(decision)]


def _where(a: dict[str, Any]) -> str:
    return "/".join((a["provider"], a["region"], a["zone"], a["instance_type"], a["capacity_type"], a["reservation"]))


def place_pending(db: Database, *, snapshot: Callable[[], Any], policies: Callable[[], Any], place: PlaceFn,
                  fenced: Callable[[], bool], actor: str, metrics: LoopMetrics, ttl_s: float,
                  skip: Callable[[str], bool] = lambda _n: False, batch: int | None = None,
                  admission: Callable[[str | None, GPUWorkload], GPUWorkload] | None = None,
                  more: Callable[[], None] | None = None) -> list[str]:
    """Returns the keys (``Workload.key``) of workloads that stayed unplaced (the caller backs them off);
    ``skip`` is asked by key too. ``admission`` (queues in force): only admitted workloads are placed,
    each as that function narrows it to the flavour it was admitted on. ``batch``: at most this many claimed
    (default ``PLACE_BATCH``). ``more`` is called when the pass
    claimed a whole batch and placed some of it: more may wait, and placing them need not wait for the next
    interval pass (none placed: they wait for capacity, and asking again at once would only spin)."""
    batch = batch if batch is not None else PLACE_BATCH
    with db.session() as s:
        token, rows = repo.claim_specs(s, [WorkloadState.PENDING.value], ttl_s=ttl_s, limit=batch,
                                       order_by_priority=True, admitted_only=admission is not None)
    if not rows:
        return []
    released = False
    try:
        specs = [(r.key, r.spec) for r in rows if not skip(r.key)]
        if not specs:
            return []
        flavours = {r.key: r.flavour for r in rows}
        workloads = _unique_names([GPUWorkload.model_validate(spec) for _, spec in specs], [k for k, _ in specs])
        if admission is not None:
            workloads = [admission(flavours[k], w) for (k, _), w in zip(specs, workloads, strict=True)]
        result = place(workloads, snapshot(), policies())
        keys = {w.name: key for (key, _), w in zip(specs, workloads, strict=True)}
        by_key = {keys[d.workload]: d for d in result.decisions if d.workload in keys}
        with db.session() as s:
            if not fenced():
                log.warning("lost leadership before writing placements; discarding them")
                return []
            writes = _Writes(actor, utcnow())
            for row in repo.locked_rows(s, token):
                d = by_key.get(row.key)
                if d is None or row.state != WorkloadState.PENDING.value:  # deleted meanwhile
                    continue
                writes.add(row, d, metrics)
            writes.write(s)
            # The locks go in the same transaction as the decisions (one commit a pass, not two).
            repo.release(s, token)
            released = True
        if more is not None and len(rows) >= batch and writes.placed:
            more()
        return writes.unplaced
    finally:
        if not released:
            with db.session() as s:
                repo.release(s, token)


class _Writes:
    """A pass's decisions as rows for batched statements (``repo.write_placements``, ``audit.insert_many``):
    per workload its row, its assignment rows, an audit record and a change-feed row, at the cost of a few
    statements per pass rather than ORM objects and a unit of work per workload (which was half the CPU of
    a woken pass of 100)."""

    def __init__(self, actor: str, now: datetime) -> None:
        self.actor, self.now = actor, now
        self.placed: list[dict[str, Any]] = []
        self.assignments: list[dict[str, Any]] = []
        self.not_placed: list[dict[str, Any]] = []
        self.audit: list[dict[str, Any]] = []
        self.changed: list[changes.Change] = []
        self.unplaced: list[str] = []

    def add(self, row: repo.Held, decision: Any, metrics: LoopMetrics) -> None:
        doc = decision.to_json()
        if decision.placed:
            for i, a in enumerate(_assignment_values(decision)):
                # The incarnation (generation) is in the hash: after delete and resubmit the pools, and so
                # every URN and idempotency key under them, are new, and no cloud replays the old requests.
                # So is where the pool is: after a failover the old pool may still exist while its stack
                # deletes it, and a pool of the same name elsewhere would collide with it (a CoreWeave NodePool
                # is refused as Immutable; a cluster-scoped name may be shared by several regions' stacks).
                a["pool"] = pool_name(row.name, i, f"{row.key}#{row.generation}@{_where(a)}")
                a["workload_id"] = row.id
                self.assignments.append(a)
            self.placed.append({"_id": row.id, "_state": WorkloadState.PLACED.value, "_doc": doc, "_now": self.now,
                                "_message": "; ".join(decision.reasons)[:1000], "_generation": row.generation})
            self.changed.append(changes.Change("workload", row.id, row.key))
            metrics.placements.labels("placed").inc()
            self.audit.append({"actor": self.actor, "action": "placed", "kind": "workload", "subject": row.name,
                               "team": row.team,
                               "details": {"assignments": doc.get("assignments", []), "score": doc.get("score")}})
            return
        message = "; ".join(decision.reasons)[:1000] or "not placed"
        metrics.placements.labels("unplaced").inc()
        self.unplaced.append(row.key)
        if message != row.message:  # audit the change of reason, not every retry
            self.audit.append({"actor": self.actor, "action": "unplaceable", "kind": "workload",
                               "subject": row.name, "team": row.team,
                               "details": {"reasons": list(decision.reasons),
                                           "rejections": doc.get("rejections", {})}})
        # As the unit of work would: nothing written (nor in the change feed) when nothing changed.
        if message != row.message or doc != row.explanation:
            self.not_placed.append({"_id": row.id, "_doc": doc, "_message": message, "_now": self.now})
            self.changed.append(changes.Change("workload", row.id, row.key))

    def write(self, s: Session) -> None:
        repo.write_placements(s, placed=self.placed, assignments=self.assignments, unplaced=self.not_placed,
                              changed=self.changed)
        if self.audit:
            audit.insert_many(s, audit.rows(self.audit))


def _unique_names(workloads: list[GPUWorkload], keys: list[str]) -> list[GPUWorkload]:
    """Placement names its decisions by workload name, and names are unique only per team: a workload
    whose name another team's workload in the batch shares is placed under its key instead."""
    seen: dict[str, int] = {}
    for w in workloads:
        seen[w.name] = seen.get(w.name, 0) + 1
    return [w if seen[w.name] == 1 else
            w.model_copy(update={"metadata": w.metadata.model_copy(update={"name": k})})
            for w, k in zip(workloads, keys, strict=True)]


def release_stale_locks(db: Database) -> int:
    """Clear every row lock token (only the leader takes them; call when a new term starts)."""
    from sqlalchemy import update

    with db.session() as s:
        res = s.execute(update(Workload).where(Workload.lock_token.is_not(None))
                        .values(lock_token=None, lock_expires_at=None).execution_options(synchronize_session=False))
        return int(res.rowcount or 0)  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult
