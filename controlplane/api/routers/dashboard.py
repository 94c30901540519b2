"""The dashboard's pages and its sign-in. ``/dashboard?token=...`` (the link `make run` prints) trades the
token for an HttpOnly, SameSite=Strict cookie and redirects to the same page without it, so the token
stays neither in the address bar, nor in the history, nor in a Referer header. The sign-in form posts the
token the same way; nothing keeps it where a script could read it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response

from controlplane.api.context import ServiceContext, ctx
from controlplane.api.security import SESSION_COOKIE, authenticate
from controlplane.auth.tokens import Principal
from controlplane.store.coltypes import utcnow

STATIC = Path(__file__).resolve().parent.parent.parent / "dashboard" / "static"
router = APIRouter(include_in_schema=False)
# A sign-in lasts a working day at most (less when the token expires sooner).
SESSION_S = 12 * 3600


def _signed_in(request: Request, resp: Response, token: str, p: Principal) -> Response:
    max_age = SESSION_S
    if p.expires_at is not None:
        max_age = max(1, min(max_age, int((p.expires_at - utcnow()).total_seconds())))
    secure = request.url.scheme == "https" or request.app.state.ctx.settings.cookie_secure
    resp.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="strict", secure=secure,
                    path="/")
    return resp


@router.get("/dashboard")
def page(request: Request, c: ServiceContext = Depends(ctx)) -> Response:
    token = request.query_params.get("token")
    if token is None:
        return FileResponse(STATIC / "index.html")
    rest = "&".join(f"{k}={v}" for k, v in request.query_params.multi_items() if k != "token")
    to = "/dashboard" + (f"?{rest}" if rest else "")
    p = authenticate(request, token, c)
    resp = RedirectResponse(to + ("" if p else "#signin=failed"), status_code=303)
    return _signed_in(request, resp, token, p) if p else resp


@router.post("/dashboard/session")
async def sign_in(request: Request, c: ServiceContext = Depends(ctx)) -> Response:
    """The sign-in form (application/x-www-form-urlencoded, one field ``token``)."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=4)
    token = (form.get("token") or [""])[0][:200]
    # Verifying a token may hash it (scrypt) and reads the store: in a worker thread, not on the event loop.
    p = await run_in_threadpool(authenticate, request, token.strip(), c)
    if p is None:
        return RedirectResponse("/dashboard#signin=failed", status_code=303)
    return _signed_in(request, RedirectResponse("/dashboard", status_code=303), token.strip(), p)


@router.post("/dashboard/signout")
def sign_out() -> Response:
    resp = RedirectResponse("/dashboard", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp
