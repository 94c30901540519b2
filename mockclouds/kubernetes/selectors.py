"""Label and field selectors with the apiserver's grammar.

Label: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``, comma-separated (AND).
Field: ``metadata.name``, ``metadata.namespace`` (every kind) and ``spec.nodeName``/``status.phase`` (pods),
with ``=``, ``==`` and ``!=``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mockclouds.kubernetes.errors import ApiError, bad_request

_TOKEN = re.compile(r"\s*(==|!=|=|\(|\)|,|!|[A-Za-z0-9][-A-Za-z0-9_./]*|)\s*")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str                      # = != in notin exists !exists
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        v = labels.get(self.key)
        if self.op == "exists":
            return has
        if self.op == "!exists":
            return not has
        if self.op in ("=", "in"):
            return has and v in self.values
        # != and notin match objects without the key too, as in Kubernetes
        return not has or v not in self.values


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise bad_request(f"unable to parse requirement: invalid label selector {text!r}")
        if m.group(1):
            out.append(m.group(1))
        pos = m.end()
    return out


def parse_label_selector(text: str | None) -> list[Requirement]:
    if not text or not text.strip():
        return []
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def fail() -> ApiError:
        return bad_request(f"unable to parse requirement: invalid label selector {text!r}")

    while i < len(toks):
        if toks[i] == "!":
            if i + 1 >= len(toks):
                raise fail()
            reqs.append(Requirement(toks[i + 1], "!exists"))
            i += 2
        else:
            key = toks[i]
            i += 1
            if i >= len(toks) or toks[i] == ",":
                reqs.append(Requirement(key, "exists"))
            elif toks[i] in ("=", "==", "!="):
                if i + 1 >= len(toks) or toks[i + 1] in (",", "(", ")"):
                    # k= (empty value) is legal and means the empty string
                    reqs.append(Requirement(key, "!=" if toks[i] == "!=" else "=", ("",)))
                    i += 1
                else:
                    reqs.append(Requirement(key, "!=" if toks[i] == "!=" else "=", (toks[i + 1],)))
                    i += 2
            elif toks[i] in ("in", "notin"):
                op = toks[i]
                if i + 1 >= len(toks) or toks[i + 1] != "(":
                    raise fail()
                i += 2
                vals: list[str] = []
                while i < len(toks) and toks[i] != ")":
                    if toks[i] != ",":
                        vals.append(toks[i])
                    i += 1
                if i >= len(toks):
                    raise fail()
                i += 1
                reqs.append(Requirement(key, op, tuple(vals)))
            else:
                raise fail()
        if i < len(toks):
            if toks[i] != ",":
                raise fail()
            i += 1
    return reqs


def labels_match(reqs: list[Requirement], labels: dict[str, str] | None) -> bool:
    lab = labels or {}
    return all(r.matches(lab) for r in reqs)


_FIELDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "metadata.name": lambda o: o.get("metadata", {}).get("name", ""),
    "metadata.namespace": lambda o: o.get("metadata", {}).get("namespace", ""),
    "spec.nodeName": lambda o: (o.get("spec") or {}).get("nodeName", ""),
    "status.phase": lambda o: (o.get("status") or {}).get("phase", ""),
}
_POD_ONLY = {"spec.nodeName", "status.phase"}
# What ``kubectl describe`` and ``kubectl events --for`` select Events by.


def _involved(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda o: (o.get("involvedObject") or {}).get(key, "")


def _top(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda o: o.get(key, "")


_EVENT_FIELDS = {f"involvedObject.{k}": _involved(k)
                 for k in ("kind", "name", "namespace", "uid", "apiVersion", "resourceVersion", "fieldPath")}
_EVENT_FIELDS.update({k: _top(k) for k in ("reason", "type", "source")})
_FIELDS.update(_EVENT_FIELDS)


def parse_field_selector(text: str | None, kind: str) -> list[tuple[str, str, str]]:
    if not text or not text.strip():
        return []
    out = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*([A-Za-z.]+)\s*(==|!=|=)\s*(.*?)\s*", part)
        if not m:
            raise bad_request(f"invalid field selector: {part!r}")
        field_, op, value = m.groups()
        if field_ not in _FIELDS or (field_ in _POD_ONLY and kind != "Pod") or (
                field_ in _EVENT_FIELDS and kind != "Event"):
            raise bad_request(f'field label not supported: "{field_}"')
        out.append((field_, "!=" if op == "!=" else "=", value))
    return out


def fields_match(reqs: list[tuple[str, str, str]], obj: dict[str, Any]) -> bool:
    for field_, op, value in reqs:
        actual = _FIELDS[field_](obj)
        if (actual == value) != (op == "="):
            return False
    return True
