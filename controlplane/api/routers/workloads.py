"""/v1/workloads: submit (YAML or JSON), list, get, delete, placement and events."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from controlplane.api import gcguard, pages, schemas
from controlplane.api import workload_service as svc
from controlplane.api.body import request_body
from controlplane.api.context import ServiceContext, ctx
from controlplane.api.security import bearer_token, may_write, principal, valid, verify_in, writer
from controlplane.auth.tokens import Principal
from controlplane.model.workload import INT32_MAX
from controlplane.reconcile import wake
from controlplane.store import audit
from controlplane.store import workloads as repo
from controlplane.store.models import WorkloadState

router = APIRouter(prefix="/v1/workloads", tags=["workloads"])
_ERR: dict[int | str, dict[str, Any]] = {c: {"model": schemas.ErrorBody} for c in (401, 403, 404, 409, 422)}
_MAX_BODY = 1_000_000

_SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


@router.post("", status_code=201, response_model=schemas.SubmitResult,
             responses={**_ERR, 413: {"model": schemas.ErrorBody, "description": "too many documents or bytes"}},
             openapi_extra=_SUBMIT_BODY, summary="Submit GPUWorkload manifests (all or nothing)")
def submit(request: Request, body: bytes = Depends(request_body), token: str = Depends(bearer_token),
           c: ServiceContext = Depends(ctx)) -> Response:
    """A plain ``def``: FastAPI runs it in the thread pool, so parsing, validating and storing thousands of
    documents never holds the event loop (and /healthz, and every other request, with it). The body is read
    by the async dependency; the response is rendered here too, in the worker thread.

    The token is verified here, in the submit's own transaction (the refusals as the ``writer`` dependency's,
    in the same order: 401, 429, 403, then the body's): one connection and one transaction per submit, not
    a second of each (and a second thread hand-over) for the token alone. Its row is still read on every
    request, so a revoked or expired token is refused at once."""
    with c.db.session() as s:
        p = may_write(valid(verify_in(request, s, token)))
        if len(body) > _MAX_BODY:
            raise HTTPException(422, f"body: larger than {_MAX_BODY} bytes")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(422, "body: not UTF-8 text") from None
        # A large submit defers full garbage collections until its answer is rendered (gcguard says why).
        with gcguard.while_large(len(text)):
            if len(text) >= gcguard.LARGE_SUBMIT_CHARS:
                s.commit()      # no transaction (nor, on PostgreSQL, a connection) held over a long parse
            # Parsed and validated in a worker process when large (parsepool says why), then stored here.
            prepare = c.parsing.prepare if c.parsing is not None else svc.prepare
            items = prepare(p, text, "request body", c.policies.current, c.settings.max_submit_documents)
            result = svc.store_in(s, p, items)
            if result.created:      # committed: the loop places them now, not at its next pass
                wake.poke(c.settings.wake_socket)
            del items
            rendered = svc.render(result)
            del result      # freed here, while full collections are still deferred
    return Response(rendered, status_code=201, media_type="application/json")


# Names are unique per team; an admin names the team when a name is held by several (a member's team is
# its token's, whatever it passes).
_TEAM = Query(None, max_length=63, description="the workload's team (admins; names are unique per team)")


@router.get("", response_model=schemas.WorkloadList, responses=_ERR)
def list_workloads(state: WorkloadState | None = None, limit: int = Query(500, ge=1, le=5000),
                   offset: int = Query(0, ge=0, le=2**63 - 1), team: str | None = _TEAM,
                   cursor: str | None = Query(None, max_length=64, description="nextCursor of the previous page"),
                   p: Principal = Depends(principal), c: ServiceContext = Depends(ctx)) -> Response:
    """Oldest first, ``limit`` at a time: follow ``nextCursor`` (cheap at any depth) rather than ``offset``.
    ``total`` is exact up to 1,000 matching workloads and estimated above (``totalExact`` says which), so
    a page costs the same whatever the store holds."""
    after = pages.decode(cursor) if cursor else 0
    scope = team if p.is_admin else p.team
    states = [state.value] if state else None
    with c.db.session() as s:
        # light: the placement and explanation documents (the rows' largest columns) are not in the answer.
        rows = repo.list_(s, team=scope, states=states, limit=limit, offset=offset, after_id=after, light=True)
        total = repo.total(s, team=scope, states=states)
        nxt = pages.encode(rows[-1].id) if len(rows) == limit else None
        page = schemas.WorkloadList(items=[svc.to_out(r) for r in rows], total=total.value,
                                    totalExact=total.exact, nextCursor=nxt)
    # Rendered here: returning the model would have FastAPI validate it again against response_model
    # before rendering it (a second pass over every item of the page).
    return Response(page.model_dump_json(), media_type="application/json")


@router.get("/{name}", response_model=schemas.WorkloadOut, responses=_ERR)
def get_workload(name: str, team: str | None = _TEAM, p: Principal = Depends(principal),
                 c: ServiceContext = Depends(ctx)) -> schemas.WorkloadOut:
    return svc.to_out(svc.get(c.db, p, name, team))


@router.delete("/{name}", status_code=202, response_model=schemas.WorkloadOut, responses=_ERR)
def delete_workload(name: str, team: str | None = _TEAM, p: Principal = Depends(writer),
                    c: ServiceContext = Depends(ctx)) -> schemas.WorkloadOut:
    return svc.to_out(svc.delete(c.db, p, name, team))


@router.get("/{name}/placement", response_model=schemas.PlacementOut, responses=_ERR)
def get_placement(name: str, team: str | None = _TEAM, p: Principal = Depends(principal),
                  c: ServiceContext = Depends(ctx)) -> schemas.PlacementOut:
    row = svc.get(c.db, p, name, team)
    return schemas.PlacementOut(name=row.name, state=row.state, placement=row.placement,
                                explanation=row.explanation)


@router.get("/{name}/events", response_model=schemas.EventList, responses=_ERR)
def get_events(name: str, team: str | None = _TEAM, after: int = Query(0, ge=0, le=INT32_MAX),
               limit: int = Query(1000, ge=1, le=1000), p: Principal = Depends(principal),
               c: ServiceContext = Depends(ctx)) -> schemas.EventList:
    row = svc.get(c.db, p, name, team)
    with c.db.session() as s:
        evs = audit.events(s, kind="workload", subject=row.name, team=row.team, after_id=after, limit=limit)
        return schemas.EventList(items=[event_out(e) for e in evs],
                                 nextCursor=str(evs[-1].id) if len(evs) == limit else None)


def event_out(e) -> schemas.EventOut:  # type: ignore[no-untyped-def]
    return schemas.EventOut(id=e.id, at=e.at, actor=e.actor, team=e.team, action=e.action, kind=e.kind,
                            subject=e.subject, details=e.details or {})
