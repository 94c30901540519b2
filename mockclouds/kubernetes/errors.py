"""Kubernetes API errors as data; ``render`` turns them into ``Status`` objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ApiError(Exception):
    code: int
    reason: str           # NotFound, AlreadyExists, Conflict, Invalid, BadRequest, ...
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"


def _details(kind: str, name: str, group: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "kind": kind}
    if group:
        d["group"] = group
    return d


def not_found(plural: str, group: str, name: str) -> ApiError:
    res = f"{plural}.{group}" if group else plural
    return ApiError(404, "NotFound", f'{res} "{name}" not found', _details(plural, name, group))


def already_exists(plural: str, group: str, name: str) -> ApiError:
    res = f"{plural}.{group}" if group else plural
    return ApiError(409, "AlreadyExists", f'{res} "{name}" already exists', _details(plural, name, group))


def conflict(plural: str, group: str, name: str) -> ApiError:
    res = f"{plural}.{group}" if group else plural
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res} "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                    _details(plural, name, group))


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 with one cause per (field, message), as the apiserver's field validation reports them."""
    text = "; ".join(f"{f}: {m}" for f, m in causes)
    d = _details(kind, name, group)
    d["causes"] = [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes]
    return ApiError(422, "Invalid", f'{kind}.{group or "core"} "{name}" is invalid: {text}', d)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)
