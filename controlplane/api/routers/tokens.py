"""/v1/tokens: list, create and revoke API tokens. A cluster-admin manages every team's tokens; a team
admin only its own team's, and cannot mint a cluster-admin. Secrets are shown once, at creation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request

from controlplane.api import schemas
from controlplane.api.context import ServiceContext, ctx
from controlplane.api.security import principal
from controlplane.auth.tokens import (
    Principal,
    TokenError,
    TokenNotFound,
    create_token,
    expiry_from,
    list_tokens,
    revoke_token,
)
from controlplane.store import audit
from controlplane.store.models import Role, Token

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])
_ERR: dict[int | str, dict[str, Any]] = {c: {"model": schemas.ErrorBody} for c in (401, 403, 404, 422)}


def token_out(t: Token) -> schemas.TokenOut:
    return schemas.TokenOut(id=t.id, team=t.team, role=t.role, description=t.description, createdAt=t.created_at,
                            expiresAt=t.expires_at, lastUsedAt=t.last_used_at, revokedAt=t.revoked_at)


def _token_admin(p: Principal = Depends(principal)) -> Principal:
    if p.role not in (Role.CLUSTER_ADMIN, Role.ADMIN):
        raise HTTPException(403, f"role {p.role.value} cannot manage tokens (admin of the team or cluster-admin)")
    return p


@router.get("", response_model=schemas.TokenList, responses=_ERR)
def list_(team: str | None = None, revoked: bool = False, p: Principal = Depends(_token_admin),
          c: ServiceContext = Depends(ctx)) -> schemas.TokenList:
    """Tokens (never their secrets) with expiry and last use. A team admin sees its own team's."""
    if not p.is_admin:
        if team is not None and team != p.team:
            raise HTTPException(403, f"team: an admin of team {p.team!r} cannot read team {team!r}")
        team = p.team
    with c.db.session() as s:
        return schemas.TokenList(items=[token_out(t) for t in list_tokens(s, team, include_revoked=revoked)])


@router.post("", status_code=201, response_model=schemas.TokenCreated,
             responses={**_ERR, 400: {"model": schemas.ErrorBody, "description": "body is not JSON"}})
def create(body: schemas.TokenCreate, p: Principal = Depends(_token_admin),
           c: ServiceContext = Depends(ctx)) -> schemas.TokenCreated:
    if not p.can_manage_tokens_of(body.team):
        raise HTTPException(403, f"team: an admin of team {p.team!r} cannot create tokens for team {body.team!r}")
    if body.role == Role.CLUSTER_ADMIN.value and not p.is_admin:
        raise HTTPException(403, "role: only a cluster-admin can create a cluster-admin token")
    try:
        expires = expiry_from(body.expires) if body.expires else None
        with c.db.session() as s:
            clear, _ = create_token(s, body.team, body.role, body.description, expires)
            row = s.get(Token, clear.split("_")[1])
            assert row is not None
            audit.record(s, actor=p.actor, action="token-created", kind="token", subject=row.id, team=row.team,
                         details={"role": row.role, "expiresAt": str(expires) if expires else None})
            out = token_out(row)
    except TokenError as e:
        raise HTTPException(422, str(e)) from None
    return schemas.TokenCreated(**out.model_dump(), token=clear)


@router.delete("/{token_id}", response_model=schemas.TokenOut, responses=_ERR)
def revoke(token_id: str, request: Request, p: Principal = Depends(_token_admin),
           c: ServiceContext = Depends(ctx)) -> schemas.TokenOut:
    """Revoke at once, on every replica (each request reads the token row; only the hash is cached)."""
    try:
        with c.db.session() as s:
            row = revoke_token(s, token_id, team=None if p.is_admin else p.team)
            audit.record(s, actor=p.actor, action="token-revoked", kind="token", subject=row.id, team=row.team)
            out = token_out(row)
    except TokenNotFound:
        raise                       # a service NotFound: the app maps it (404)
    except TokenError as e:
        raise HTTPException(422, str(e)) from None
    request.app.state.token_cache.forget(token_id)
    return out
