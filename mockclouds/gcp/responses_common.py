"""JSON plumbing shared by the compute and TPU renderers: bodies, Google error bodies, faults."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Request, Response

from mockclouds.faults import FaultHit
from mockclouds.gcp.errors import CANONICAL, GoogleApiError

_FAULT_REASON = {"throttle": "rateLimitExceeded", "outage": "backendError", "error": "invalid"}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers or {})


def body_of(request: Request) -> dict:
    body = request.get_json(silent=True)
    if body is None and request.get_data():
        raise GoogleApiError(400, "parseError", "Invalid JSON payload received.")
    return body if isinstance(body, dict) else {}


def error_response(e: GoogleApiError) -> Response:
    status_text = CANONICAL.get(e.status, "UNKNOWN")
    body = {"error": {"code": e.status, "message": e.message, "status": status_text,
                      "errors": [{"message": e.message, "domain": "global", "reason": e.reason}]}}
    headers = {"Retry-After": f"{e.retry_after:g}"} if e.retry_after is not None else {}
    return json_response(body, e.status, headers)


def fault_error(hit: FaultHit) -> GoogleApiError:
    """A FaultBook hit as the error Google would send: 429 RESOURCE_EXHAUSTED, 503 UNAVAILABLE, or as asked."""
    reason = hit.code or _FAULT_REASON.get(hit.kind, "invalid")
    retry = hit.retry_after if hit.kind == "throttle" or hit.status in (429, 503) else None
    return GoogleApiError(hit.status, reason, hit.message, retry)


def flag(request: Request, name: str) -> bool:
    return request.args.get(name, "").lower() in ("1", "true")


def api_base(request: Request) -> str:
    return request.host_url + "compute/v1/"
