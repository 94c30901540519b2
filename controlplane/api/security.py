"""Bearer-token authentication and role checks as FastAPI dependencies.

401 without a valid token, 403 when the role may not do it. Workloads of another team are reported as
not found (404) by the workload service, so their names do not leak.

The dashboard signs in once and then holds the token in an HttpOnly, SameSite=Strict cookie (never in the
address bar or in script-readable storage). The cookie is accepted for reads only: a change always needs
the ``Authorization`` header, so a page on another site cannot make a signed-in browser change anything.
"""

from __future__ import annotations

import hashlib
import threading
import time

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controlplane.api.context import ServiceContext, ctx
from controlplane.auth.tokens import Principal, verify_token
from controlplane.store.coltypes import utcnow

_bearer = HTTPBearer(auto_error=False, description="awan_<id>_<secret>, from `awan token create`")
# scrypt is deliberately slow; a verified token is trusted for this long in this process.
_CACHE_S = 30.0
SESSION_COOKIE = "awan_session"
_SAFE_METHODS = ("GET", "HEAD")


class _Cache:
    def __init__(self) -> None:
        self._d: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Principal | None:
        with self._lock:
            hit = self._d.get(key)
            if hit and hit[0] > time.monotonic():
                return hit[1]
            return None

    def put(self, key: str, p: Principal) -> None:
        ttl = _CACHE_S
        if p.expires_at is not None:   # an expiring token must not outlive its expiry in the cache
            ttl = min(ttl, (p.expires_at - utcnow()).total_seconds())
        with self._lock:
            if len(self._d) > 10_000:
                self._d.clear()
            self._d[key] = (time.monotonic() + ttl, p)

    def forget(self, token_id: str) -> None:
        with self._lock:
            for k in [k for k, (_, p) in self._d.items() if p.token_id == token_id]:
                del self._d[k]


def authenticate(request: Request, token: str, c: ServiceContext) -> Principal | None:
    cache: _Cache = request.app.state.token_cache
    key = hashlib.sha256(token.encode()).hexdigest()
    p = cache.get(key)
    if p is None:
        with c.db.session() as s:
            p = verify_token(s, token)
        if p is None:
            return None
        cache.put(key, p)
    return p


def principal(request: Request, cred: HTTPAuthorizationCredentials | None = Depends(_bearer),
              c: ServiceContext = Depends(ctx)) -> Principal:
    token = cred.credentials if cred is not None and cred.scheme.lower() == "bearer" else ""
    if not token and request.method in _SAFE_METHODS:
        token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    p = authenticate(request, token, c)
    if p is None:
        raise HTTPException(401, "invalid, expired or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return p


def writer(p: Principal = Depends(principal)) -> Principal:
    if not p.can_write:
        raise HTTPException(403, f"role {p.role.value} cannot make changes")
    return p


def admin(p: Principal = Depends(principal)) -> Principal:
    if not p.is_admin:
        raise HTTPException(403, "cluster-admin role required")
    return p


def new_cache() -> _Cache:
    return _Cache()
