"""Bearer-token authentication and role checks as FastAPI dependencies.

401 without a valid token, 403 when the role may not do it. Workloads of another team are reported as
not found (404) by the workload service, so their names do not leak.
"""

from __future__ import annotations

import hashlib
import threading
import time

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controlplane.api.context import ServiceContext, ctx
from controlplane.auth.tokens import Principal, verify_token

_bearer = HTTPBearer(auto_error=False, description="awan_<id>_<secret>, from `awan token create`")
# scrypt is deliberately slow; a verified token is trusted for this long in this process.
_CACHE_S = 30.0


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
        with self._lock:
            if len(self._d) > 10_000:
                self._d.clear()
            self._d[key] = (time.monotonic() + _CACHE_S, p)


def principal(request: Request, cred: HTTPAuthorizationCredentials | None = Depends(_bearer),
              c: ServiceContext = Depends(ctx)) -> Principal:
    if cred is None or cred.scheme.lower() != "bearer" or not cred.credentials:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    cache: _Cache = request.app.state.token_cache
    key = hashlib.sha256(cred.credentials.encode()).hexdigest()
    p = cache.get(key)
    if p is None:
        with c.db.session() as s:
            p = verify_token(s, cred.credentials)
        if p is None:
            raise HTTPException(401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
        cache.put(key, p)
    return p


def writer(p: Principal = Depends(principal)) -> Principal:
    if not p.can_write:
        raise HTTPException(403, f"role {p.role.value} cannot make changes")
    return p


def admin(p: Principal = Depends(principal)) -> Principal:
    if not p.is_admin:
        raise HTTPException(403, "admin role required")
    return p


def new_cache() -> _Cache:
    return _Cache()
