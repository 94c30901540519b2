"""Wire format: Status objects, lists, server-side Tables (what ``kubectl get`` asks for) and watch lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Response

from mockclouds.kubernetes.errors import ApiError
from mockclouds.kubernetes.resources import (
    DEPLOYMENTS,
    EVENTS,
    JOBS,
    NODEPOOLS,
    NODES,
    PODS,
    REPLICASETS,
    SERVICES,
    ResourceType,
)
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


def _duration(start: str | None, end: str | None) -> str:
    if not start:
        return ""
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    t0 = datetime.strptime(start, fmt).replace(tzinfo=UTC)
    t1 = datetime.strptime(end, fmt).replace(tzinfo=UTC) if end else datetime.now(UTC)
    secs = max(0, int((t1 - t0).total_seconds()))
    return f"{secs // 60}m{secs % 60}s" if secs >= 60 else f"{secs}s"


def _node_cells(o: Obj) -> list[Any]:
    ready: dict[str, Any] = next((c for c in (o.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {})
    return ["Ready" if ready.get("status") == "True" else "NotReady", "<none>", _age(o),
            (o.get("status") or {}).get("nodeInfo", {}).get("kubeletVersion", "")]


def _pool_cells(o: Obj) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    at: dict[str, Any] = next((c for c in st.get("conditions") or [] if c.get("type") == "AtTarget"), {})
    return [spec.get("instanceType", ""), spec.get("targetNodes", 0), st.get("currentNodes", 0),
            at.get("reason", ""), _age(o)]


def _pod_status(o: Obj) -> str:
    """kubectl's STATUS: the pod's reason, else a waiting/terminated container reason, else the phase."""
    st = o.get("status") or {}
    if st.get("reason"):
        return str(st["reason"])
    for cs in st.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            return str(state["waiting"]["reason"])
        if (state.get("terminated") or {}).get("reason"):
            return str(state["terminated"]["reason"])
    return str(st.get("phase", ""))


def _pod_cells(o: Obj) -> list[Any]:
    st, spec = o.get("status") or {}, o.get("spec") or {}
    css = st.get("containerStatuses") or []
    ready = sum(1 for c in css if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in css)
    return [f"{ready}/{len(spec.get('containers') or [])}", _pod_status(o), restarts, _age(o),
            st.get("podIP") or "<none>", spec.get("nodeName") or "<none>"]


def _job_status(o: Obj) -> str:
    conds = {c.get("type"): c.get("status") for c in (o.get("status") or {}).get("conditions") or []}
    if conds.get("Complete") == "True":
        return "Complete"
    if conds.get("Failed") == "True":
        return "Failed"
    if conds.get("Suspended") == "True":
        return "Suspended"
    return "Running"


def _job_cells(o: Obj) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    comp = spec.get("completions")
    done = f"{st.get('succeeded', 0)}/{comp}" if comp is not None else f"{st.get('succeeded', 0)}/1 of " \
        f"{spec.get('parallelism', 1)}"
    return [_job_status(o), done, _duration(st.get("startTime"), st.get("completionTime")), _age(o)]


def _deploy_cells(o: Obj) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    return [f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 1)}", st.get("updatedReplicas", 0),
            st.get("availableReplicas", 0), _age(o)]


def _rs_cells(o: Obj) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    return [spec.get("replicas", 0), st.get("replicas", 0), st.get("readyReplicas", 0), _age(o)]


def _svc_cells(o: Obj) -> list[Any]:
    spec = o.get("spec") or {}
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []) or "<none>"
    return [spec.get("type", "ClusterIP"), spec.get("clusterIP", ""), "<none>", ports, _age(o)]


def _event_cells(o: Obj) -> list[Any]:
    inv = o.get("involvedObject") or {}
    return [_age(o), o.get("type", ""), o.get("reason", ""), f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}",
            o.get("message", "")]


_COLUMNS: dict[str, tuple[list[tuple[Any, ...]], Any]] = {
    NODES.plural: ([("Status", "string"), ("Roles", "string"), ("Age", "string"), ("Version", "string")],
                   _node_cells),
    NODEPOOLS.plural: ([("Instance Type", "string"), ("Target", "integer"), ("Current", "integer"),
                        ("Reason", "string"), ("Age", "string")], _pool_cells),
    PODS.plural: ([("Ready", "string"), ("Status", "string"), ("Restarts", "integer"), ("Age", "string"),
                   ("IP", "string", 1), ("Node", "string", 1)], _pod_cells),
    JOBS.plural: ([("Status", "string"), ("Completions", "string"), ("Duration", "string"), ("Age", "string")],
                  _job_cells),
    DEPLOYMENTS.plural: ([("Ready", "string"), ("Up-to-date", "integer"), ("Available", "integer"),
                          ("Age", "string")], _deploy_cells),
    REPLICASETS.plural: ([("Desired", "integer"), ("Current", "integer"), ("Ready", "integer"), ("Age", "string")],
                         _rs_cells),
    SERVICES.plural: ([("Type", "string"), ("Cluster-IP", "string"), ("External-IP", "string"),
                       ("Port(s)", "string"), ("Age", "string")], _svc_cells),
    EVENTS.plural: ([("Last Seen", "string"), ("Type", "string"), ("Reason", "string"), ("Object", "string"),
                     ("Message", "string")], _event_cells),
}


def table(rt: ResourceType, items: list[Obj], rv: int, include_object: str = "PartialObjectMetadata") -> dict:
    cols, cells = _COLUMNS.get(rt.plural, ([("Age", "string")], lambda o: [_age(o)]))
    defs = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
    defs += [{"name": c[0], "type": c[1], "format": "", "description": c[0], "priority": c[2] if len(c) > 2 else 0}
             for c in cols]
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
