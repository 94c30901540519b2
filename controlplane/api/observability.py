"""The access log and the HTTP metrics: one ASGI middleware times every request, writes one ``http
request`` event (method, route, status, duration, client) and feeds ``awan_http_requests_total`` and
``awan_http_request_duration_seconds``. Routes are labelled by their template (``/v1/workloads/{name}``),
never the raw path, so a client cannot grow the label set; unmatched paths share one label."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controlplane.logs import get_logger

log = get_logger("awan.access")
UNMATCHED = "<unmatched>"
# Probes and scrapes would drown the log: they are counted in the metrics and logged only when they fail.
_QUIET = ("/healthz", "/readyz", "/metrics")


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("awan_http_requests", "HTTP requests served", ["method", "route", "status"],
                                registry=registry)
        self.duration = Histogram("awan_http_request_duration_seconds", "HTTP request latency",
                                  ["method", "route"], registry=registry,
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    if scope.get("path", "").startswith(("/dashboard/static/", "/static/")):
        return "/static"
    return UNMATCHED


class AccessLog:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = int(msg["status"])
            await send(msg)

        try:
            await self.app(scope, receive, send_status)
        finally:
            took = time.perf_counter() - start
            method, route = scope.get("method", "?"), _route(scope)
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.duration.labels(method, route).observe(took)
            if scope.get("path") not in _QUIET or status >= 400:
                client = scope.get("client") or ("", 0)
                log.info("http request", method=method, path=scope.get("path"), route=route, status=status,
                         duration_ms=round(took * 1000, 2), client=client[0])
