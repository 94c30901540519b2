"""Workload rows: created by the API, advanced only by the reconcile loop, which claims them with lock
tokens (dstack's pattern): claim in one short transaction, do the slow work outside it, then apply the
result only if the token is still ours."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import Select, Table, Text, bindparam, delete, func, or_, select, tuple_, update
from sqlalchemy import cast as sa_cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, defer, selectinload

from controlplane.model.identity import workload_key
from controlplane.store import changes
from controlplane.store.coltypes import utcnow
from controlplane.store.models import Assignment, RunLog, Workload, WorkloadState


class ConflictError(Exception):
    """The change contradicts what is stored (a name taken by a different workload)."""


class AmbiguousName(ConflictError):  # noqa: N818 - the condition, as LookupError's subclasses are named
    """A name held by workloads of several teams, asked for without a team (admins only)."""


def get(s: Session, name: str, team: str | None = None) -> Workload | None:
    """``team`` None means any team (admins, the loop); another team's workload is simply not found.
    Names are unique per team: without a team a name held in several teams raises AmbiguousName."""
    q = select(Workload).where(Workload.name == name).options(selectinload(Workload.assignments))
    if team is not None:
        q = q.where(Workload.team == team)
    rows = s.scalars(q.order_by(Workload.id).limit(2)).all()
    if len(rows) > 1:
        raise AmbiguousName(f"workload {name!r} exists in several teams: name the team (?team=)")
    return rows[0] if rows else None


_Q = TypeVar("_Q", bound=Select[Any])


def _filtered(q: _Q, team: str | None, states: Sequence[str] | None, include_deleted: bool) -> _Q:
    if team is not None:
        q = q.where(Workload.team == team)
    if states:
        q = q.where(Workload.state.in_(list(states)))
    elif not include_deleted:
        q = q.where(Workload.state != WorkloadState.DELETED.value)
    return q


def list_(s: Session, *, team: str | None = None, states: Sequence[str] | None = None,
          limit: int = 500, offset: int = 0, include_deleted: bool = False,
          light: bool = False, after_id: int = 0) -> Sequence[Workload]:
    """Oldest first. ``after_id``: a keyset cursor (the last id of the previous page), which stays as cheap
    on page 200 as on page 1, where ``offset`` walks every row before it. ``light``: leave out the placement
    document and the explanation (the largest JSON columns, which the reconcile loop's per-pass scans never
    read); they load on first access if one does."""
    q = select(Workload).options(selectinload(Workload.assignments))
    if light:
        q = q.options(defer(Workload.placement), defer(Workload.explanation))
    q = _filtered(q, team, states, include_deleted)
    if after_id:
        q = q.where(Workload.id > after_id)
    return s.scalars(q.order_by(Workload.id).limit(limit).offset(offset)).all()


def by_ids(s: Session, ids: Sequence[int], *, light: bool = True) -> list[Workload]:
    """The rows of ``ids`` (those that exist), in id order: what the loop re-reads for the workloads the
    change feed names, in chunks of ids well under the databases' bound-parameter limits. The explanation
    (placement's reasoning, the largest column, read by the API only) is never loaded; ``light``: nor the
    placement record."""
    out: list[Workload] = []
    uniq = sorted(set(ids))
    for i in range(0, len(uniq), _LOOKUP_CHUNK):
        q = select(Workload).options(selectinload(Workload.assignments), defer(Workload.explanation)).where(
            Workload.id.in_(uniq[i:i + _LOOKUP_CHUNK]))
        if light:
            q = q.options(defer(Workload.placement))
        out.extend(s.scalars(q.order_by(Workload.id)))
    return out


@dataclass(frozen=True, slots=True)
class AssignmentColumns:
    """An assignment row's values (what ``pools_for`` and ``usage_of`` read), not an ORM object."""

    pool: str
    provider: str
    region: str
    zone: str
    instance_type: str
    nodes: int
    gpus: int
    gpu_model: str
    capacity_type: str
    reservation: str
    price_per_hour: float


@dataclass(frozen=True, slots=True)
class WorkloadColumns:
    """A workload row's values the loop's index keeps (informer.py), with its assignments in id order."""

    id: int
    name: str
    team: str
    state: str
    spec: dict[str, Any]
    placement: dict[str, Any] | None
    deleted_at: datetime | None
    assignments: list[AssignmentColumns]

    @property
    def key(self) -> str:
        return workload_key(self.team, self.name)


# What the pools and the usage of a workload are made from: its ORM row or its columns.
StoredWorkload = Workload | WorkloadColumns
StoredAssignment = Assignment | AssignmentColumns


_W_COLUMNS = (Workload.id, Workload.name, Workload.team, Workload.state, Workload.spec, Workload.placement,
              Workload.deleted_at)
_A_COLUMNS = (Assignment.workload_id, Assignment.pool, Assignment.provider, Assignment.region, Assignment.zone,
              Assignment.instance_type, Assignment.nodes, Assignment.gpus, Assignment.gpu_model,
              Assignment.capacity_type, Assignment.reservation, Assignment.price_per_hour)


def columns_of(s: Session, ids: Sequence[int]) -> list[WorkloadColumns]:
    """``by_ids(light=False)``'s rows as plain values, in id order: two statements of columns a chunk, no ORM
    object, identity map or collection (most of the CPU of the loop's re-read of the rows the change feed
    names, thousands a second during a burst)."""
    out: list[WorkloadColumns] = []
    uniq = sorted(set(ids))
    for i in range(0, len(uniq), _LOOKUP_CHUNK):
        chunk = uniq[i:i + _LOOKUP_CHUNK]
        # The rows, then their assignments (as selectinload reads them)
        rows = s.execute(select(*_W_COLUMNS).where(Workload.id.in_(chunk)).order_by(Workload.id)).all()
        out.extend(_joined(rows, s.execute(select(*_A_COLUMNS).where(
            Assignment.workload_id.in_([r[0] for r in rows])).order_by(Assignment.workload_id, Assignment.id))))
    return out


def columns_in(s: Session, states: Sequence[str]) -> list[WorkloadColumns]:
    """``columns_of`` every row in ``states`` (the index's full list, at each resync)."""
    rows = s.execute(select(*_W_COLUMNS).where(Workload.state.in_(list(states))).order_by(Workload.id)).all()
    q = (select(*_A_COLUMNS).join(Workload, Workload.id == Assignment.workload_id)
         .where(Workload.state.in_(list(states))).order_by(Assignment.workload_id, Assignment.id))
    return _joined(rows, s.execute(q))


def _joined(rows: Iterable[Sequence[Any]], assigned: Iterable[Sequence[Any]]) -> list[WorkloadColumns]:
    """Rows of ``_W_COLUMNS`` with their assignments (rows of ``_A_COLUMNS``, in assignment id order)."""
    held: dict[int, list[AssignmentColumns]] = {}
    for wid, *a in assigned:
        held.setdefault(wid, []).append(AssignmentColumns(*a))
    return [WorkloadColumns(wid, name, team, state, spec, placement, deleted_at, held.get(wid, []))
            for wid, name, team, state, spec, placement, deleted_at in rows]


def heads(s: Session, states: Sequence[str], ids: Sequence[int] | None = None) -> list[tuple[int, str, str, str, str]]:
    """(id, state, team, name, message) of the rows in ``states`` (among ``ids``; None: every one), in id
    order: columns only, no JSON and no ORM object, for a caller that decides from them which rows it must
    load whole (observation: the Placed rows no node of which is seen yet, thousands during a burst)."""
    q = select(Workload.id, Workload.state, Workload.team, Workload.name, Workload.message).where(
        Workload.state.in_(list(states)))
    if ids is None:
        return [(k, st, t, n, m or "") for k, st, t, n, m in s.execute(q.order_by(Workload.id))]
    out: list[tuple[int, str, str, str, str]] = []
    uniq = sorted(set(ids))
    for i in range(0, len(uniq), _LOOKUP_CHUNK):
        chunk = q.where(Workload.id.in_(uniq[i:i + _LOOKUP_CHUNK])).order_by(Workload.id)
        out.extend((k, st, t, n, m or "") for k, st, t, n, m in s.execute(chunk))
    return out


def placed_of(s: Session, keyed: Iterable[tuple[str, str]]) -> list[Workload]:
    """The Placed rows among the workloads given as (team, key) (``Workload.key``, a pool's ``workload``):
    looked up by (team, name) where the key is ``team_name``, and only for a key shortened to a digest by the
    team's Placed rows. What a stack run that applied marks Provisioning: it read every Placed row of the
    store, thousands during a burst, once per stack run. Without the assignments, placement and explanation."""
    keyed = list(keyed)
    pairs: set[tuple[str, str]] = set()
    hashed: set[str] = set()
    for team, key in keyed:
        name = key[len(team) + 1:] if key.startswith(f"{team}_") else ""
        if name and workload_key(team, name) == key:
            pairs.add((team, name))
        if not name or _DIGESTED.search(key):   # a digest's key may also read as a name: look for both
            hashed.add(team)
    light = (defer(Workload.placement), defer(Workload.explanation))   # assignments: not loaded (lazy)
    placed = Workload.state == WorkloadState.PLACED.value
    out: dict[int, Workload] = {}
    uniq = sorted(pairs)
    for i in range(0, len(uniq), _LOOKUP_CHUNK // 2):
        chunk = uniq[i:i + _LOOKUP_CHUNK // 2]
        q = select(Workload).options(*light).where(placed, tuple_(Workload.team, Workload.name).in_(chunk))
        out.update((w.id, w) for w in s.scalars(q))
    if hashed:
        q = select(Workload).options(*light).where(placed, Workload.team.in_(sorted(hashed)))
        out.update((w.id, w) for w in s.scalars(q))
    keys = {key for _, key in keyed}
    return [out[i] for i in sorted(out) if out[i].key in keys]


def count(s: Session, *, team: str | None = None, states: Sequence[str] | None = None,
          include_deleted: bool = False) -> int:
    """How many workloads ``list_`` would page through with the same filters."""
    return int(s.scalar(_filtered(select(func.count()).select_from(Workload), team, states, include_deleted)) or 0)


# Above this many matching rows a list's total is estimated (``total``).
EXACT_TOTAL_UP_TO = 1_000


@dataclass(frozen=True, slots=True)
class Total:
    value: int
    exact: bool


def total(s: Session, *, team: str | None = None, states: Sequence[str] | None = None,
          include_deleted: bool = False, exact_up_to: int | None = None) -> Total:
    """``count`` at a cost that does not grow with the store: exact while at most ``exact_up_to`` rows
    (default ``EXACT_TOTAL_UP_TO``) match, else an estimate. An exact count reads every matching index
    entry (at 10,000 matching rows a quarter of the CPU of a page of 100; at 100,000 more than the page
    itself, on every page), so it is bounded: the first ``exact_up_to + 1``
    matching ids in id order (the same index range the page reads), and past that the matching rows'
    density over those ids extrapolated to the last matching id (two more index probes). Exact when the
    matching rows are spread evenly over ids; a filter whose rows cluster (the newest mostly Running, say)
    is over- or under-estimated, never below ``exact_up_to + 1``."""
    if exact_up_to is None:
        exact_up_to = EXACT_TOTAL_UP_TO
    ids = _filtered(select(Workload.id), team, states, include_deleted).order_by(Workload.id)
    head = ids.limit(exact_up_to + 1).subquery()
    n, first, kth = s.execute(select(func.count(), func.min(head.c.id), func.max(head.c.id))).one()
    if n <= exact_up_to:
        return Total(int(n), True)
    last = s.scalar(_filtered(select(Workload.id), team, states, include_deleted)
                    .order_by(Workload.id.desc()).limit(1))
    span = max(int(kth) - int(first) + 1, 1)
    estimate = round(int(n) * (int(last or kth) - int(first) + 1) / span)
    return Total(max(estimate, int(n)), False)


def submit(s: Session, *, name: str, team: str, spec: dict[str, Any], priority: int, gpus: int) -> tuple[Workload, bool]:
    """Create the workload, or return the stored one when the same spec is submitted again (apply is
    idempotent). A Deleted workload's name can be reused. Names are unique per team: another team's
    workload of the same name is neither seen nor touched. Returns (row, created)."""
    row = s.scalars(select(Workload).where(Workload.team == team, Workload.name == name)
                    .with_for_update()).first()
    if row is not None and row.state != WorkloadState.DELETED.value:
        if row.spec == spec:
            return row, False
        raise ConflictError(f"metadata.name: workload {name!r} already exists with a different spec "
                            "(delete it first)")
    if row is None:
        row = Workload(name=name, team=team, spec=spec, priority=priority, gpus=gpus)
        s.add(row)
    else:  # reuse the tombstone of a deleted workload
        _reuse(s, row, NewWorkload(name=name, team=team, spec=spec, priority=priority, gpus=gpus), utcnow())
    s.flush()
    return row, True


@dataclass(frozen=True, slots=True)
class NewWorkload:
    name: str
    team: str
    spec: dict[str, Any]
    priority: int
    gpus: int


# Names per IN (...) lookup: well under SQLite's 32,766 bound parameters and PostgreSQL's 65,535.
_LOOKUP_CHUNK = 500
_DIGESTED = re.compile(r"_[0-9a-f]{9}$")   # how identity.workload_key ends a key shortened to a digest
_INSERT_CHUNK = 1000


_TABLE = cast(Table, Workload.__table__)   # a mapped class's Table (typed as its base, FromClause)
_INSERT = _TABLE.insert()       # built once: a statement's construction is paid per call, not cached
# New names, the common submit: INSERT every row whose (team, name) is not stored, in one statement (an
# executemany that SQLAlchemy sends as multi-row VALUES) where a locked lookup of the names and then the
# INSERTs were two or more. The unique key decides, so a concurrent submit of the same name is waited for
# (PostgreSQL) or found, not raced. RETURNING names the rows inserted (its order is not the rows' order on
# either store). Built once per dialect.
_INSERT_NEW = {
    "postgresql": pg_insert(_TABLE).on_conflict_do_nothing(index_elements=["team", "name"])
    .returning(_TABLE.c.team, _TABLE.c.name),
    "sqlite": sqlite_insert(_TABLE).on_conflict_do_nothing(index_elements=["team", "name"])
    .returning(_TABLE.c.team, _TABLE.c.name),
}


def _fresh(w: NewWorkload, now: datetime) -> dict[str, Any]:
    """The row of a new workload, as inserted."""
    return {"name": w.name, "team": w.team, "spec": w.spec, "priority": w.priority, "gpus": w.gpus,
            "state": WorkloadState.PENDING.value, "message": "", "generation": 1,
            "observed_generation": 0, "created_at": now, "updated_at": now}


def insert_new(s: Session, w: NewWorkload) -> dict[str, Any] | None:
    """``insert_fresh`` of one workload: the values inserted, or None with nothing written."""
    got = insert_fresh(s, [w])
    return got[0] if got is not None else None


def insert_fresh(s: Session, items: Sequence[NewWorkload]) -> list[dict[str, Any] | None] | None:
    """Insert, in one statement, each of ``items`` whose (team, name) is not stored, with its change-feed
    row: per item the values inserted, or None where the name is stored in any state (``plan_submit`` then
    decides for those: the same spec, a conflict, a tombstone to reuse). None, with nothing written, when
    the store has no INSERT ... ON CONFLICT, ``items`` name a (team, name) twice (``plan_submit`` decides
    for the whole body, as before: the second of a name is not silently the first's "unchanged"), or they
    are several on PostgreSQL (below)."""
    conn = s.connection()
    stmt = _INSERT_NEW.get(conn.dialect.name)
    keys = [(w.team, w.name) for w in items]
    if stmt is None or not items or len(set(keys)) < len(keys):
        return None
    if conn.dialect.name == "postgresql" and len(items) > 1:
        # psycopg converts a statement of more than 50 parameters afresh on every call (its query cache
        # stops there), and the multi-row VALUES of ten workloads has 110: measured, more API CPU per
        # workload than the locked lookup and plain executemany it replaces (BENCHMARKS.md, rate,
        # 2026-12-01 09:45). One document stays one statement there.
        return None
    now = utcnow()
    values = [_fresh(w, now) for w in items]
    inserted: set[tuple[str, str]] = set()
    for i in range(0, len(values), _INSERT_CHUNK):
        inserted.update((t, n) for t, n in conn.execute(stmt, values[i:i + _INSERT_CHUNK]))
    out = [v if k in inserted else None for k, v in zip(keys, values, strict=True)]
    changes.record(s, [changes.Change("workload", None, workload_key(t, n)) for t, n in keys if (t, n) in inserted])
    return out


def _existing(s: Session, items: Sequence[NewWorkload]) -> dict[tuple[str, str], Workload]:
    """The stored rows of ``items``' (team, name) pairs, locked for update, in a few chunked queries."""
    by_team: dict[str, list[str]] = {}
    for w in items:
        by_team.setdefault(w.team, []).append(w.name)
    out: dict[tuple[str, str], Workload] = {}
    for team, names in by_team.items():
        for i in range(0, len(names), _LOOKUP_CHUNK):
            q = (select(Workload).where(Workload.team == team, Workload.name.in_(names[i:i + _LOOKUP_CHUNK]))
                 .options(selectinload(Workload.assignments)).with_for_update())
            out.update({(r.team, r.name): r for r in s.scalars(q)})
    return out


@dataclass
class SubmitPlan:
    """What a submit will write, worked out before the first write: per item the stored row (existing) or
    the values to insert (new), and whether it is created."""
    items: list[tuple[Workload | dict[str, Any], bool]]
    fresh: list[dict[str, Any]]


def plan_submit(s: Session, items: Sequence[NewWorkload]) -> SubmitPlan:
    """``submit`` for many workloads at the cost of a few statements, not several per workload: a locked
    lookup per chunk of names here, then ``write_submit``'s batched INSERTs of plain rows (no ORM objects).
    Everything is computed before the first write, so the store's write lock (SQLite's is database-wide) is
    held for the INSERTs alone, not for the whole request, and the leader's lease renewal is not kept
    waiting. Tombstones of deleted workloads are reused (changed in the session, written at flush). Raises
    ConflictError naming the first clash."""
    stored = _existing(s, items)
    now = utcnow()
    plan = SubmitPlan([], [])
    for w in items:
        row = stored.get((w.team, w.name))
        if row is not None and row.state != WorkloadState.DELETED.value:
            if row.spec != w.spec:
                raise ConflictError(f"metadata.name: workload {w.name!r} already exists with a different spec "
                                    "(delete it first)")
            plan.items.append((row, False))
        elif row is None:
            values = _fresh(w, now)
            plan.fresh.append(values)
            plan.items.append((values, True))
        else:
            _reuse(s, row, w, now)
            plan.items.append((row, True))
    return plan


def write_submit(s: Session, plan: SubmitPlan) -> None:
    s.flush()   # the reused tombstones
    for i in range(0, len(plan.fresh), _INSERT_CHUNK):
        s.execute(_INSERT, plan.fresh[i:i + _INSERT_CHUNK])
    # A bulk INSERT bypasses the unit of work, and with it the change feed's recording.
    changes.record(s, [changes.Change("workload", None, workload_key(v["team"], v["name"])) for v in plan.fresh])


def _reuse(s: Session, row: Workload, w: NewWorkload, now: datetime) -> None:
    """Reuse the tombstone of a deleted workload for a new submit of its name: nothing of the old run,
    queue place or preemption carries over (nor its creation time: queues admit by arrival)."""
    row.created_at = now
    row.team, row.spec, row.priority, row.gpus = w.team, w.spec, w.priority, w.gpus
    row.state, row.message = WorkloadState.PENDING.value, ""
    row.generation += 1
    row.placement = row.explanation = None
    row.placed_at = row.running_at = row.deleted_at = None
    row.restarts, row.preemptions, row.exit_code, row.reason = 0, 0, None, ""
    row.dispatched_at = row.finished_at = row.released_at = None
    row.queue = row.flavour = row.preempted_for = None
    row.admitted_at = row.preempt_requested_at = None
    row.wait_reason, row.queue_position = "", None
    row.assignments.clear()
    s.execute(delete(RunLog).where(RunLog.workload_id == row.id))   # the old run's logs


def request_delete(s: Session, row: Workload) -> bool:
    """Ask the loop to deprovision. Returns False when it is already going or gone."""
    if row.state in (WorkloadState.DELETING.value, WorkloadState.DELETED.value):
        return False
    row.state = WorkloadState.DELETING.value
    row.generation += 1
    row.message = "deletion requested"
    return True


@dataclass(frozen=True, slots=True)
class Claimed:
    """What placement reads of a claimed row (no ORM object: the pass never changes it through one)."""
    id: int
    key: str
    flavour: str | None
    spec: dict[str, Any]


def claim_specs(s: Session, states: Sequence[str], *, ttl_s: float, limit: int = 1000,
                order_by_priority: bool = False, admitted_only: bool = False) -> tuple[str, list[Claimed]]:
    """Lock up to ``limit`` unlocked (or expired) rows in ``states`` with a fresh token, in one statement
    (UPDATE ... WHERE id IN (the selection) RETURNING what placement reads: the spec and the admitted
    flavour), not a selection, an UPDATE and a read-back of ORM rows with their assignments."""
    now = utcnow()
    token = secrets.token_hex(8)
    free = or_(Workload.lock_token.is_(None), Workload.lock_expires_at < now)
    q = select(Workload.id).where(Workload.state.in_(list(states)), free)
    if admitted_only:   # queues in force: only admitted workloads go on to placement
        q = q.where(Workload.admitted_at.is_not(None))
    q = q.order_by(Workload.priority.desc(), Workload.id) if order_by_priority else q.order_by(Workload.id)
    # The lock condition again in the UPDATE: a row another claim locked since the selection is not taken.
    c = _TABLE.c   # a Core statement: no ORM session synchronisation to set up for rows never loaded
    rows = list(s.execute(update(_TABLE).where(c.id.in_(q.limit(limit).scalar_subquery()), free)
                          .values(lock_token=token, lock_expires_at=now + timedelta(seconds=ttl_s), heartbeat_at=now)
                          .returning(c.id, c.priority, c.team, c.name, c.flavour, c.spec)))
    rows.sort(key=(lambda r: (-r[1], r[0])) if order_by_priority else (lambda r: r[0]))
    return token, [Claimed(i, workload_key(team, name), flavour, spec) for i, _, team, name, flavour, spec in rows]


@dataclass(frozen=True, slots=True)
class Held:
    """A row still locked by a pass's token, as its decision is written: what the write compares with."""
    id: int
    name: str
    team: str
    state: str
    message: str
    generation: int
    explanation: dict[str, Any] | None

    @property
    def key(self) -> str:
        return workload_key(self.team, self.name)


def locked_rows(s: Session, token: str) -> list[Held]:
    """The rows still locked by ``token`` as plain rows (the columns a placement write reads), locked for
    update (an API delete waits, then wins next pass), in id order."""
    rows = s.execute(select(Workload.id, Workload.name, Workload.team, Workload.state, Workload.message,
                            Workload.generation, Workload.explanation)
                     .where(Workload.lock_token == token).with_for_update().order_by(Workload.id))
    return [Held(*r) for r in rows]


_A_TABLE = cast(Table, Assignment.__table__)
_A_INSERT = _A_TABLE.insert()
# Built once. Every decision's row is written with the same columns, so each is one executemany.


def _placed_update(postgresql: bool) -> Any:
    # The decision's document is both the placement and the explanation: encoded once (``_doc`` as JSON text,
    # cast to JSONB on PostgreSQL), not once per column by the JSON type (the encoding was most of the write).
    doc: Any = bindparam("_doc", type_=Text)
    if postgresql:
        doc = sa_cast(doc, JSONB)
    return (update(_TABLE).where(_TABLE.c.id == bindparam("_id"))
            .values(state=bindparam("_state"), placement=doc, explanation=doc,
                    placed_at=bindparam("_now"), message=bindparam("_message"),
                    observed_generation=bindparam("_generation"), updated_at=bindparam("_now")))


_PLACED = {False: _placed_update(False), True: _placed_update(True)}
_UNPLACED = (update(_TABLE).where(_TABLE.c.id == bindparam("_id"))
             .values(explanation=bindparam("_doc"), message=bindparam("_message"), updated_at=bindparam("_now")))


def write_placements(s: Session, *, placed: Sequence[dict[str, Any]], assignments: Sequence[dict[str, Any]],
                     unplaced: Sequence[dict[str, Any]], changed: Sequence[changes.Change]) -> None:
    """A placing pass's decisions in a few batched statements (not an ORM object and flush per workload):
    ``placed`` rows (``_id``, ``_state``, ``_doc``, ``_now``, ``_message``, ``_generation``) get their
    placement, their old assignment rows replaced by ``assignments`` (in order: the first of a workload is
    its pool 0); ``unplaced`` rows (``_id``, ``_doc``, ``_message``, ``_now``) their explanation and message.
    Bulk statements bypass the unit of work and with it the change feed: ``changed`` is recorded here, in
    the same transaction."""
    if placed:
        ids = [p["_id"] for p in placed]
        for i in range(0, len(ids), _LOOKUP_CHUNK):
            s.execute(delete(Assignment).where(Assignment.workload_id.in_(ids[i:i + _LOOKUP_CHUNK]))
                      .execution_options(synchronize_session=False))
        conn = s.connection()
        conn.execute(_PLACED[conn.dialect.name == "postgresql"], [{**p, "_doc": json.dumps(p["_doc"])} for p in placed])
    for i in range(0, len(assignments), _INSERT_CHUNK):
        s.connection().execute(_A_INSERT, list(assignments[i:i + _INSERT_CHUNK]))
    if unplaced:
        s.connection().execute(_UNPLACED, list(unplaced))
    changes.record(s, changed)


def release(s: Session, token: str) -> None:
    s.execute(update(Workload).where(Workload.lock_token == token)
              .values(lock_token=None, lock_expires_at=None)
              .execution_options(synchronize_session=False))
