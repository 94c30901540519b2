"""Bearer-token authentication and role checks as FastAPI dependencies.

401 without a valid token, 403 when the role may not do it. Workloads of another team are reported as
not found (404) by the workload service, so their names do not leak.

The dashboard signs in once and then holds the token in an HttpOnly, SameSite=Strict cookie (never in the
address bar or in script-readable storage). The cookie is accepted for reads only: a change always needs
the ``Authorization`` header, so a page on another site cannot make a signed-in browser change anything.
"""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from controlplane.api.context import ServiceContext, ctx
from controlplane.auth.tokens import Principal
from controlplane.auth.verifier import TokenVerifier, TooManyFailures

_bearer = HTTPBearer(auto_error=False, description="awan_<id>_<secret>, from `awan token create`")
SESSION_COOKIE = "awan_session"
_SAFE_METHODS = ("GET", "HEAD")


def authenticate(request: Request, token: str, c: ServiceContext) -> Principal | None:
    """The principal of ``token`` or None, in a transaction of its own. Raises 429 when its id has spent its
    budget of failed checks."""
    with c.db.session() as s:
        return verify_in(request, s, token)


def verify_in(request: Request, s: Session, token: str) -> Principal | None:
    """``authenticate`` in the caller's transaction ``s`` (the token row read there)."""
    verifier: TokenVerifier = request.app.state.token_cache
    try:
        return verifier.verify(s, token)
    except TooManyFailures as e:
        raise HTTPException(429, str(e), headers={"Retry-After": str(max(1, round(e.retry_after_s)))}) from None


async def bearer_token(request: Request, cred: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> str:
    """The token the request presents (the header; the session cookie for a read), not yet verified; 401
    when there is none. ``async``: it reads headers only."""
    token = cred.credentials if cred is not None and cred.scheme.lower() == "bearer" else ""
    if not token and request.method in _SAFE_METHODS:
        token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    return token


def valid(p: Principal | None) -> Principal:
    """401 unless a token was verified."""
    if p is None:
        raise HTTPException(401, "invalid, expired or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return p


def principal(request: Request, token: str = Depends(bearer_token), c: ServiceContext = Depends(ctx)) -> Principal:
    return valid(authenticate(request, token, c))


def may_write(p: Principal) -> Principal:
    if not p.can_write:
        raise HTTPException(403, f"role {p.role.value} cannot make changes")
    return p


# ``async``, like every dependency here that neither blocks nor reads the store: a plain ``def`` one would be
# run in FastAPI's thread pool, a hand-over to a worker thread and back on each request.
async def writer(p: Principal = Depends(principal)) -> Principal:
    return may_write(p)


async def admin(p: Principal = Depends(principal)) -> Principal:
    if not p.is_admin:
        raise HTTPException(403, "cluster-admin role required")
    return p


def new_cache() -> TokenVerifier:
    return TokenVerifier()
