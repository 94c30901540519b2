"""Security headers on every response. ``Referrer-Policy: no-referrer`` keeps any URL of this service out of
other sites' logs; the dashboard pages also get a Content-Security-Policy that allows only this origin's
scripts (its chart library is served from the package), and may not be framed."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ALL = [(b"referrer-policy", b"no-referrer"), (b"x-content-type-options", b"nosniff")]
_DASHBOARD = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
     b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        extra = _ALL + (_DASHBOARD if path == "/dashboard" or (path.startswith("/dashboard/")
                                                               and not path.startswith("/dashboard/static/"))
                        else [])

        async def add_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                have = {k.lower() for k, _ in msg.get("headers", [])}
                msg["headers"] = [*msg.get("headers", []), *[(k, v) for k, v in extra if k not in have]]
            await send(msg)

        await self.app(scope, receive, add_headers)
