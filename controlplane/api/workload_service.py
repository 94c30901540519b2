"""Workload use cases between the router and the store: visibility by team, submit all-or-nothing,
delete as a request to the loop, and the audit record of each change in the same transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.api import schemas
from controlplane.auth.tokens import Principal
from controlplane.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge, Unavailable
from controlplane.model.manifest import ManifestError, load_documents, parse_documents
from controlplane.model.workload import GPUWorkload
from controlplane.reconcile.restarts import retries
from controlplane.store import audit
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.models import Workload

if TYPE_CHECKING:
    from controlplane.policy.model import PolicySet


def to_out(row: Workload) -> schemas.WorkloadOut:
    return schemas.WorkloadOut(
        name=row.name, team=row.team, state=row.state, message=row.message, gpus=row.gpus,
        priority=row.priority, generation=row.generation, createdAt=row.created_at, updatedAt=row.updated_at,
        placedAt=row.placed_at, runningAt=row.running_at, spec=row.spec,
        assignments=[schemas.AssignmentOut(
            pool=a.pool, provider=a.provider, region=a.region, zone=a.zone, instanceType=a.instance_type,
            nodes=a.nodes, gpus=a.gpus, gpuModel=a.gpu_model, capacityType=a.capacity_type,
            reservation=a.reservation, pricePerHour=a.price_per_hour) for a in row.assignments],
        capacityOnly=not is_run(row.spec), restarts=row.restarts or 0,
        retries=retries(row.restarts, row.preemptions), preemptions=row.preemptions or 0, exitCode=row.exit_code,
        reason=row.reason or "", finishedAt=row.finished_at, releasedAt=row.released_at)


def is_run(spec: dict[str, Any]) -> bool:
    """Whether a stored manifest says what to run (else it is a capacity reservation)."""
    return bool((spec.get("spec") or {}).get("template"))


CAPACITY_ONLY_NOTE = ("no spec.template: a capacity reservation; its nodes are provisioned and held, "
                      "nothing runs on them")


def _scope(p: Principal, team: str | None = None) -> str | None:
    """The team whose workloads ``p`` may address: its own, or for an admin the one asked for (None: any)."""
    if p.is_admin:
        return team
    return p.team


def _own(w: GPUWorkload, p: Principal, explicit_team: bool) -> GPUWorkload:
    """A member submits for its own team; a manifest without a team gets the token's team."""
    if not explicit_team:
        return w.model_copy(update={"metadata": w.metadata.model_copy(update={"team": p.team})})
    if w.team != p.team and not p.is_admin:
        raise Forbidden(f"metadata.team: a token of team {p.team!r} cannot submit for team {w.team!r}")
    return w


def _explicit_team(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("metadata"), dict) and "team" in doc["metadata"]


def _admit(items: list[GPUWorkload], source: str, policies: Callable[[], PolicySet] | None) -> None:
    """Fail closed (controlplane.policy.admission): an unknown data class, region or geography is a 422
    naming the field, before anything is stored."""
    from controlplane.policy.admission import first_error, needs_policies
    from controlplane.policy.model import PolicySet
    from providers.catalog import default_catalog

    ps = PolicySet.default()
    if policies is not None and needs_policies(items):
        try:
            ps = policies()
        except Exception as e:  # a stored policy that cannot be read: refuse rather than drop residency
            raise Unavailable(f"policies: not available to check the data-class label: {e}") from None
    why = first_error(items, default_catalog(), ps)
    if why:
        raise Invalid(source, why)


class TooManyDocuments(TooLarge):
    """More documents than one submit may hold (``Settings.max_submit_documents``)."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"body: {count} documents, more than the {limit} one submit may hold "
                              f"(AWAN_MAX_SUBMIT_DOCUMENTS); split them over several submits")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A submitted document parsed, validated, owned and admitted: what the store step writes. Plain data
    (picklable): a large body is prepared in a worker process (controlplane.api.parsepool)."""

    row: repo.NewWorkload
    capacity_only: bool


def prepare(p: Principal, text: str, source: str, policies: Callable[[], PolicySet] | None = None,
            max_documents: int | None = None) -> list[Prepared]:
    """Parse, validate, own (the token's team) and admit every document; raises a ServiceError naming the
    field for the first one refused. CPU only: touches the store only through ``policies``."""
    try:
        docs = load_documents(text, source)
        if max_documents is not None and len(docs) > max_documents:
            raise TooManyDocuments(len(docs), max_documents)
        parsed = parse_documents(docs, source)
    except ManifestError as e:
        raise Invalid.from_message(str(e)) from None
    items = [_own(w, p, _explicit_team(d)) for w, d in zip(parsed, docs, strict=True)]
    _admit(items, source, policies)
    return [Prepared(repo.NewWorkload(name=w.name, team=w.team, spec=w.to_manifest(), priority=w.spec.priority,
                                      gpus=w.total_gpus), w.spec.template is None) for w in items]


def submit(db: Database, p: Principal, text: str, source: str, policies: Callable[[], PolicySet] | None = None,
           max_documents: int | None = None) -> schemas.SubmitResult:
    """All or nothing, in one short transaction. Blocking (parsing, validation, the store): callers on an
    event loop run it in a worker thread."""
    return store(db, p, prepare(p, text, source, policies, max_documents))


def store(db: Database, p: Principal, items: list[Prepared]) -> schemas.SubmitResult:
    """Write what ``prepare`` returned, all or nothing, in a transaction of its own."""
    with db.session() as s:
        return store_in(s, p, items)


def store_in(s: Session, p: Principal, items: list[Prepared]) -> schemas.SubmitResult:
    """``store`` in the caller's session ``s`` (what it read so far, the token, stays in the same
    transaction), committed here: the workloads, their change-feed rows and audit records, or nothing."""
    try:
        rows = _write(s, p, items)
        s.commit()
    except IntegrityError:
        # A concurrent submit of the same (team, name) inserted first: run again, now it is seen.
        s.rollback()
        try:
            rows = _write(s, p, items)
            s.commit()
        except IntegrityError:
            s.rollback()
            raise Conflict("metadata.name: submitted concurrently by another request; retry") from None
    # Rendered after the commit: the write lock is held for the INSERTs only.
    return _result(items, rows)


def _new_out(v: dict[str, Any]) -> schemas.WorkloadOut:
    """The response for a workload inserted just now, from the values inserted."""
    return schemas.WorkloadOut(name=v["name"], team=v["team"], state=v["state"], message=v["message"], gpus=v["gpus"],
                               priority=v["priority"], generation=v["generation"], createdAt=v["created_at"],
                               updatedAt=v["updated_at"], spec=v["spec"],
                               capacityOnly=not is_run(v["spec"]))


def _write(s: Session, p: Principal, items: list[Prepared]) -> list[tuple[Workload | dict[str, Any], bool]]:
    new = [i.row for i in items]
    # New names (the common submit) are inserted in one statement with their change-feed rows; only the
    # names already stored (none, usually) take the locked lookup that decides unchanged, conflict or reuse.
    fresh = repo.insert_fresh(s, new)
    if fresh is None:
        fresh = [None] * len(new)
    rest = [w for w, v in zip(new, fresh, strict=True) if v is None]
    plan = None
    if rest:
        try:
            plan = repo.plan_submit(s, rest)
        except repo.ConflictError as e:
            raise Conflict(str(e)) from None
    planned = iter(plan.items if plan is not None else ())
    rows: list[tuple[Workload | dict[str, Any], bool]] = [(v, True) if v is not None else next(planned)
                                                         for v in fresh]
    events = audit.rows([
        {"actor": p.actor, "action": "submitted", "kind": "workload", "subject": w.name, "team": w.team,
         "details": {"gpus": w.gpus, "generation": row["generation"] if isinstance(row, dict) else row.generation}}
        for w, (row, is_new) in zip(new, rows, strict=True) if is_new])
    if plan is not None:
        repo.write_submit(s, plan)
    audit.insert_many(s, events)
    return rows


def _result(items: list[Prepared], rows: list[tuple[Workload | dict[str, Any], bool]]) -> schemas.SubmitResult:
    names = [i.row.name for i in items]
    capacity_only = [i.row.name for i in items if i.capacity_only]
    created = [n for n, (_, is_new) in zip(names, rows, strict=True) if is_new]
    unchanged = [n for n, (_, is_new) in zip(names, rows, strict=True) if not is_new]
    result = [_new_out(r) if isinstance(r, dict) else to_out(r) for r, _ in rows]
    notes = [f"workload/{n}: {CAPACITY_ONLY_NOTE}" for n in capacity_only]
    return schemas.SubmitResult(items=result, created=created, unchanged=unchanged, capacityOnly=capacity_only,
                                notes=notes)


def render(result: schemas.SubmitResult) -> bytes:
    """``result.model_dump_json()`` one item at a time: the same JSON, but a 10,000-item answer never holds
    the GIL for the whole of its rendering (about a second on a busy machine), so the event loop thread
    keeps answering other requests in between."""
    items = b",".join(i.model_dump_json().encode() for i in result.items)
    # The other fields from the model itself, so a field added to SubmitResult is never left out here.
    rest = result.model_dump_json(exclude={"items"}).encode()
    return b'{"items":[' + items + b"]" + (b"," + rest[1:] if rest != b"{}" else b"}")


def _find(s: Session, p: Principal, name: str, team: str | None) -> Workload:
    try:
        row = repo.get(s, name, _scope(p, team))
    except repo.AmbiguousName as e:
        raise Conflict(str(e)) from None
    if row is None:
        raise NotFound(f"workload {name!r} not found")
    return row


def get(db: Database, p: Principal, name: str, team: str | None = None) -> Workload:
    with db.session() as s:
        return _find(s, p, name, team)


def delete(db: Database, p: Principal, name: str, team: str | None = None) -> Workload:
    with db.session() as s:
        row = _find(s, p, name, team)
        if repo.request_delete(s, row):
            audit.record(s, actor=p.actor, action="delete-requested", kind="workload", subject=name, team=row.team)
        s.flush()
        return row
