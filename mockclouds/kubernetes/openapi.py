"""A minimal OpenAPI v3 surface: just enough for kubectl to see that the server validates fields
itself (``fieldValidation`` on PATCH), so a plain ``kubectl apply -f`` needs no client-side schema."""

from __future__ import annotations

from typing import Any

from mockclouds.kubernetes.resources import ResourceType, group_versions

_HASH = "awanmockcks0001"
_QUERY = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")


def _key(gv: str) -> str:
    return "api/v1" if gv == "v1" else f"apis/{gv}"


def index() -> dict[str, Any]:
    return {"paths": {_key(gv): {"serverRelativeURL": f"/openapi/v3/{_key(gv)}?hash={_HASH}"}
                      for gv in group_versions()}}


def _op(rt: ResourceType, action: str) -> dict[str, Any]:
    return {"operationId": f"{action}{rt.kind}", "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
            "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}} for n in _QUERY],
            "responses": {"200": {"description": "OK"}}}


def spec(path: str) -> dict[str, Any] | None:
    """The document for ``api/v1`` or ``apis/<group>/<version>``, or None."""
    gv = "v1" if path == "api/v1" else path.removeprefix("apis/")
    rts = group_versions().get(gv)
    if not rts or _key(gv) != path:
        return None
    base = f"/{_key(gv)}"
    paths: dict[str, Any] = {}
    for rt in rts:
        coll = f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
        paths[coll] = {"get": _op(rt, "list"), "post": _op(rt, "post")}
        paths[f"{coll}/{{name}}"] = {"get": _op(rt, "get"), "put": _op(rt, "put"), "patch": _op(rt, "patch"),
                                     "delete": _op(rt, "delete")}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.4"}, "paths": paths,
            "components": {"schemas": {}}}
