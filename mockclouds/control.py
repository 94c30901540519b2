"""The control API every mock cloud serves under ``/_mock/``: reset, faults, capacity, preemption,
revocation and an inventory of what exists (compared with Awan's store by the resilience suite).

    GET    /_mock/health                   -> {"ok": true}
    POST   /_mock/reset                    -> forget every resource, refill capacity, clear faults
    GET    /_mock/faults | POST {Fault} | DELETE [?id=N]
    POST   /_mock/capacity  {"free": 0, "region"?, "zone"?, "instanceType"?}   -> {"pools": n}
    POST   /_mock/preempt   {"region"?, "zone"?, "instanceType"?}              -> {"nodes": [ids]}  (spot only)
    POST   /_mock/revoke    {"region"?, "zone"?, "instanceType"?}              -> {"nodes": [ids]}  (any node)
    GET    /_mock/inventory                -> {"resources": [{kind, id, region, zone, instanceType, state, tags}]}
    GET    /_mock/clock                    -> {"now": iso}
    POST   /_mock/clock     {"advanceSeconds": n} | {"now": iso}              -> {"now": iso}
    GET    /_mock/events                   -> {"events": [EventBridge-shaped events the cloud emitted]}
    GET    /_mock/calls                    -> {"calls": {operation: n}}   (API calls answered since the reset)
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

from werkzeug.wrappers import Request, Response

from mockclouds.capacity import CapacityLedger
from mockclouds.clock import MockClock
from mockclouds.faults import FaultBook
from mockclouds.requestlog import RequestLog


class MockBackend(Protocol):
    ledger: CapacityLedger
    faults: FaultBook
    clock: MockClock
    requests: RequestLog

    def reset(self) -> None: ...
    def events(self) -> list[dict[str, Any]]: ...
    def inventory(self) -> list[dict[str, Any]]: ...
    def preempt(self, region: str | None, zone: str | None, instance_type: str | None,
                spot_only: bool = True) -> list[str]: ...


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def handle_control(request: Request, backend: MockBackend) -> Response | None:
    """Answer a ``/_mock/...`` request, or return None for any other path."""
    path = request.path
    if not path.startswith("/_mock/"):
        return None
    what = path[len("/_mock/"):].strip("/")
    try:
        body = request.get_json(silent=True) or {}
        if not isinstance(body, dict):
            return _json({"error": "body must be a JSON object"}, 400)
        if what == "health":
            return _json({"ok": True})
        if what == "reset" and request.method == "POST":
            backend.reset()
            return _json({"ok": True})
        if what == "faults":
            if request.method == "GET":
                return _json({"faults": backend.faults.list()})
            if request.method == "POST":
                f = backend.faults.add_dict(body)
                return _json({"id": f.id}, 201)
            if request.method == "DELETE":
                fid = request.args.get("id")
                backend.faults.clear(int(fid) if fid else None)
                return _json({"ok": True})
        if what == "capacity" and request.method == "POST":
            if "free" not in body or not isinstance(body["free"], int) or body["free"] < 0:
                return _json({"error": "free: a non-negative integer is required"}, 400)
            n = backend.ledger.set_free(body["free"], zone=body.get("zone"),
                                        instance_type=body.get("instanceType"), region=body.get("region"))
            return _json({"pools": n})
        if what in ("preempt", "revoke") and request.method == "POST":
            ids = backend.preempt(body.get("region"), body.get("zone"), body.get("instanceType"),
                                  spot_only=(what == "preempt"))
            return _json({"nodes": ids})
        if what == "clock":
            if request.method == "POST":
                if "advanceSeconds" in body:
                    step = body["advanceSeconds"]
                    if not isinstance(step, (int, float)) or isinstance(step, bool):
                        return _json({"error": "advanceSeconds: a number of seconds is required"}, 400)
                    backend.clock.advance(float(step))
                elif isinstance(body.get("now"), str):
                    backend.clock.set(datetime.fromisoformat(body["now"].replace("Z", "+00:00")))
                else:
                    return _json({"error": "advanceSeconds or now: one is required"}, 400)
            return _json({"now": backend.clock.now().isoformat()})
        if what == "events" and request.method == "GET":
            return _json({"events": backend.events()})
        if what == "calls" and request.method == "GET":
            # Counted here, in the mock's process: a benchmark reads how many calls a run cost.
            counts: dict[str, int] = {}
            for c in backend.requests.entries():
                counts[c.operation] = counts.get(c.operation, 0) + 1
            return _json({"calls": dict(sorted(counts.items()))})
        if what == "inventory" and request.method == "GET":
            return _json({"resources": backend.inventory()})
    except (ValueError, TypeError) as e:
        return _json({"error": str(e)}, 400)
    return _json({"error": f"no such control endpoint: {request.method} {path}"}, 404)
