"""Policies (admin), stacks and the audit event stream."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from controlplane.api import schemas
from controlplane.api.context import ServiceContext, ctx
from controlplane.api.routers.workloads import event_out
from controlplane.api.security import admin, principal
from controlplane.auth.tokens import Principal
from controlplane.model.workload import INT32_MAX  # ids are 32-bit INTEGER columns
from controlplane.purchasing import parse_purchasing_text
from controlplane.queues import parse_queue_text
from controlplane.reconcile.policy_source import PolicyUnavailable, parse_document
from controlplane.store import audit
from controlplane.store import policies as policy_store
from controlplane.store.models import Stack

router = APIRouter(prefix="/v1", tags=["admin"])
_ERR: dict[int | str, dict[str, Any]] = {cd: {"model": schemas.ErrorBody} for cd in (401, 403, 422, 503)}


def _policy_out(c: ServiceContext) -> schemas.PolicyOut:
    text, by = c.policies.document()
    try:
        sources = list(c.policies.current().sources)
    except Exception as e:
        sources = [f"invalid: {e}"]
    return schemas.PolicyOut(document=text, updatedBy=by, sources=sources)


@router.get("/policies", response_model=schemas.PolicyOut, responses=_ERR)
def get_policies(_: Principal = Depends(admin), c: ServiceContext = Depends(ctx)) -> schemas.PolicyOut:
    return _policy_out(c)


@router.put("/policies", response_model=schemas.PolicyOut, responses=_ERR,
            openapi_extra={"requestBody": {"required": True,
                                           "content": {"application/yaml": {"schema": {"type": "string"}}}}})
async def put_policies(request: Request, p: Principal = Depends(admin),
                       c: ServiceContext = Depends(ctx)) -> schemas.PolicyOut:
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(422, "body: not UTF-8 text") from None
    try:
        # Validated (CEL compiled and checked once) before anything is stored; off the event loop, so a
        # slow document never holds up /healthz or other requests.
        await run_in_threadpool(parse_document, text, "body")
        await run_in_threadpool(parse_queue_text, text, "body")   # QueuePolicy documents in the same body
        await run_in_threadpool(parse_purchasing_text, text, "body")   # and a PurchasingPolicy
    except PolicyUnavailable as e:
        raise HTTPException(503, str(e)) from None
    except ValueError as e:
        raise HTTPException(422, str(e)) from None
    await run_in_threadpool(_store_policies, c, text, p)   # the store blocks: not on the event loop
    return await run_in_threadpool(_policy_out, c)


def _store_policies(c: ServiceContext, text: str, p: Principal) -> None:
    with c.db.session() as s:
        policy_store.put_document(s, text, p.actor)
        audit.record(s, actor=p.actor, action="policies-updated", kind="policy", subject="current",
                     details={"bytes": len(text)})


@router.get("/stacks", response_model=schemas.StackList, responses=_ERR)
def stacks(p: Principal = Depends(principal), c: ServiceContext = Depends(ctx)) -> schemas.StackList:
    """Every stack for admins. Others see only the stacks that hold their team's pools, counting only
    those, and no stack message (it may name any team's pools)."""
    with c.db.session() as s:
        rows = s.scalars(select(Stack).order_by(Stack.name)).all()
        items = []
        for r in rows:
            pools = (r.spec or {}).get("pools", [])
            if not p.is_admin:
                pools = [x for x in pools if x.get("team") == p.team]
                if not pools:
                    continue
            items.append(schemas.StackOut(
                name=r.name, status=r.status, message=r.message if p.is_admin else "", attempts=r.attempts,
                pools=len(pools), appliedAt=r.applied_at, hasState=r.state is not None))
        return schemas.StackList(items=items)


@router.get("/events", response_model=schemas.EventList, responses=_ERR)
def events(team: str | None = None, after: int = Query(0, ge=0, le=INT32_MAX), limit: int = Query(100, ge=1, le=1000),
           p: Principal = Depends(principal), c: ServiceContext = Depends(ctx)) -> schemas.EventList:
    """The audit stream, oldest first after ``after``. Non-admins see only their team's events."""
    if not p.is_admin:
        if team is not None and team != p.team:
            raise HTTPException(403, f"team: a token of team {p.team!r} cannot read team {team!r}")
        team = p.team
    with c.db.session() as s:
        evs = audit.events(s, team=team, after_id=after, limit=limit)
        return schemas.EventList(items=[event_out(e) for e in evs],
                                 nextCursor=str(evs[-1].id) if len(evs) == limit else None)
