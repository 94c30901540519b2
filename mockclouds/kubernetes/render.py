"""Wire format: Status objects, lists, server-side Tables (what ``kubectl get`` asks for) and watch lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Response

from mockclouds.kubernetes.errors import ApiError
from mockclouds.kubernetes.resources import NODEPOOLS, NODES, PODS, ResourceType
from mockclouds.kubernetes.store import Obj


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json",
                    headers=headers)


def status_object(e: ApiError) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": e.message, "reason": e.reason, "code": e.code}
    if e.details:
        body["details"] = e.details
    return body


def error_response(e: ApiError) -> Response:
    return json_response(status_object(e), e.code, e.headers)


def success_status(rt: ResourceType, obj: Obj) -> dict[str, Any]:
    details: dict[str, Any] = {"name": obj["metadata"]["name"], "kind": rt.plural, "uid": obj["metadata"]["uid"]}
    if rt.group:
        details["group"] = rt.group
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def object_list(rt: ResourceType, items: list[Obj], rv: int, cont: str = "",
                remaining: int | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if cont:
        meta["continue"] = cont
        if remaining is not None:
            meta["remainingItemCount"] = remaining
    return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items}


def watch_line(type_: str, obj: dict[str, Any]) -> bytes:
    return (json.dumps({"type": type_, "object": obj}, separators=(",", ":")) + "\n").encode()


# -- Tables --------------------------------------------------------------------------------------
def _age(obj: Obj) -> str:
    ts = obj.get("metadata", {}).get("creationTimestamp")
    if not ts:
        return "<unknown>"
    secs = int((datetime.now(UTC) - datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC))
               .total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{max(secs, 0)}s"


def _node_cells(o: Obj) -> list[Any]:
    ready: dict[str, Any] = next((c for c in (o.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {})
    return ["Ready" if ready.get("status") == "True" else "NotReady", "<none>", _age(o),
            (o.get("status") or {}).get("nodeInfo", {}).get("kubeletVersion", "")]


def _pool_cells(o: Obj) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    at: dict[str, Any] = next((c for c in st.get("conditions") or [] if c.get("type") == "AtTarget"), {})
    return [spec.get("instanceType", ""), spec.get("targetNodes", 0), st.get("currentNodes", 0),
            at.get("reason", ""), _age(o)]


_COLUMNS: dict[str, tuple[list[tuple[str, str]], Any]] = {
    NODES.plural: ([("Status", "string"), ("Roles", "string"), ("Age", "string"), ("Version", "string")],
                   _node_cells),
    NODEPOOLS.plural: ([("Instance Type", "string"), ("Target", "integer"), ("Current", "integer"),
                        ("Reason", "string"), ("Age", "string")], _pool_cells),
    PODS.plural: ([("Status", "string"), ("Age", "string")],
                  lambda o: [(o.get("status") or {}).get("phase", ""), _age(o)]),
}


def table(rt: ResourceType, items: list[Obj], rv: int, include_object: str = "PartialObjectMetadata") -> dict:
    cols, cells = _COLUMNS.get(rt.plural, ([("Age", "string")], lambda o: [_age(o)]))
    defs = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
    defs += [{"name": n, "type": t, "format": "", "description": n, "priority": 0} for n, t in cols]
    rows = []
    for o in items:
        if include_object == "Object":
            embedded: dict[str, Any] = o
        elif include_object == "None":
            embedded = {}
        else:
            embedded = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}
        row: dict[str, Any] = {"cells": [o["metadata"]["name"], *cells(o)]}
        if embedded:
            row["object"] = embedded
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": str(rv)},
            "columnDefinitions": defs, "rows": rows}
