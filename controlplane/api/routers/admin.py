"""Policies (admin), stacks and the audit event stream."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import select

from controlplane.api import schemas
from controlplane.api.context import ServiceContext, ctx
from controlplane.api.routers.workloads import event_out
from controlplane.api.security import admin, principal
from controlplane.auth.tokens import Principal
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
        parse_document(text)   # validated (CEL compiled) before anything is stored
    except PolicyUnavailable as e:
        raise HTTPException(503, str(e)) from None
    except ValueError as e:
        raise HTTPException(422, str(e).replace("policy.yaml", "body", 1)) from None
    with c.db.session() as s:
        policy_store.put_document(s, text, p.actor)
        audit.record(s, actor=p.actor, action="policies-updated", kind="policy", subject="current",
                     details={"bytes": len(text)})
    return _policy_out(c)


@router.get("/stacks", response_model=schemas.StackList, responses=_ERR)
def stacks(_: Principal = Depends(principal), c: ServiceContext = Depends(ctx)) -> schemas.StackList:
    with c.db.session() as s:
        rows = s.scalars(select(Stack).order_by(Stack.name)).all()
        return schemas.StackList(items=[schemas.StackOut(
            name=r.name, status=r.status, message=r.message, attempts=r.attempts,
            pools=len((r.spec or {}).get("pools", [])), appliedAt=r.applied_at, hasState=r.state is not None)
            for r in rows])


@router.get("/events", response_model=schemas.EventList, responses=_ERR)
def events(team: str | None = None, after: int = Query(0, ge=0, le=2**63 - 1), limit: int = Query(100, ge=1, le=1000),
           p: Principal = Depends(principal), c: ServiceContext = Depends(ctx)) -> schemas.EventList:
    """The audit stream, oldest first after ``after``. Non-admins see only their team's events."""
    if not p.is_admin:
        if team is not None and team != p.team:
            raise HTTPException(403, f"team: a token of team {p.team!r} cannot read team {team!r}")
        team = p.team
    with c.db.session() as s:
        return schemas.EventList(items=[event_out(e) for e in audit.events(s, team=team, after_id=after,
                                                                            limit=limit)])
