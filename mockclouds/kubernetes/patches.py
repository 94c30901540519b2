"""The patch formats the apiserver accepts: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and
strategic merge patch, which this fake applies as a merge patch after dropping its ``$`` directives
(for the flat maps of NodePools and Nodes the outcome is the same)."""

from __future__ import annotations

import copy
from typing import Any

from mockclouds.kubernetes.errors import ApiError, bad_request


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def strip_directives(patch: Any) -> Any:
    if isinstance(patch, dict):
        return {k: strip_directives(v) for k, v in patch.items() if not k.startswith("$")}
    if isinstance(patch, list):
        return [strip_directives(v) for v in patch if not (isinstance(v, dict) and "$patch" in v)]
    return patch


def _unescape(tok: str) -> str:
    return tok.replace("~1", "/").replace("~0", "~")


def _parent(doc: Any, path: str) -> tuple[Any, str]:
    if not path.startswith("/"):
        raise bad_request(f"json patch: invalid path {path!r}")
    parts = [_unescape(p) for p in path[1:].split("/")]
    cur = doc
    for p in parts[:-1]:
        try:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        except (KeyError, IndexError, ValueError, TypeError):
            raise bad_request(f"json patch: path {path!r} does not exist") from None
    return cur, parts[-1]


def _get(doc: Any, path: str) -> Any:
    parent, key = _parent(doc, path)
    try:
        return parent[int(key)] if isinstance(parent, list) else parent[key]
    except (KeyError, IndexError, ValueError, TypeError):
        raise bad_request(f"json patch: path {path!r} does not exist") from None


def _remove(doc: Any, path: str) -> Any:
    parent, key = _parent(doc, path)
    try:
        return parent.pop(int(key)) if isinstance(parent, list) else parent.pop(key)
    except (KeyError, IndexError, ValueError, TypeError):
        raise bad_request(f"json patch: cannot remove {path!r}: it does not exist") from None


def _add(doc: Any, path: str, value: Any) -> None:
    parent, key = _parent(doc, path)
    if isinstance(parent, list):
        if key == "-":
            parent.append(value)
        else:
            parent.insert(int(key), value)
    elif isinstance(parent, dict):
        parent[key] = value
    else:
        raise bad_request(f"json patch: cannot add at {path!r}")


def json_patch(target: dict[str, Any], ops: Any) -> dict[str, Any]:
    if not isinstance(ops, list):
        raise bad_request("json patch: the body must be a JSON array of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request("json patch: every operation needs op and path")
        kind, path = op["op"], op["path"]
        if kind == "add":
            _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _remove(doc, path)
            _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "move":
            _add(doc, path, _remove(doc, op.get("from", "")))
        elif kind == "copy":
            _add(doc, path, copy.deepcopy(_get(doc, op.get("from", ""))))
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise ApiError(422, "Invalid", f"json patch: test failed at {path!r}")
        else:
            raise bad_request(f"json patch: unknown op {kind!r}")
    return doc
