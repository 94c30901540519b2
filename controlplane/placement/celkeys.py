"""What a CEL rule reads of its two inputs, so that its result can be shared between inputs that agree on it.

A rule is evaluated once per (rule, workload class, pool) when candidates are built, and one evaluation
costs tens of microseconds (the activation maps are converted on every call), so a cold class on a
1,000-pool fleet spent most of its build time in CEL. Most rules read a few fields, though
(``candidate.capacityType``, ``workload.kind``): two pools that agree on those fields get the same result.

``rule_fields`` scans an expression for ``workload.<field>`` and ``candidate.<field>`` and returns the fields,
or None when a map is used any other way (indexed, passed to a function, iterated, a field called like a
method, a variable of a comprehension with the same name, a leading-dot name...): then nothing is shared
and every input is evaluated, as before. The scan may over-approximate what is read, never under-approximate:
anything it does not follow for sure (a backslash, which raw and escaped strings read differently; ``//``,
which starts a comment) also gives None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controlplane.policy.cel_rules import IDENT, skip_string

_MAPS = ("workload", "candidate")
_MISSING = object()


def _skip_space(expr: str, i: int) -> int:
    while i < len(expr) and expr[i].isspace():
        i += 1
    return i


def _back(expr: str, i: int) -> int:
    """Index of the last non-space character at or before ``i`` (-1 if none)."""
    while i >= 0 and expr[i].isspace():
        i -= 1
    return i


def _after_operand(expr: str, i: int) -> bool:
    """Whether the text up to ``i`` ends with an operand (a name other than the operator ``in``, a closing
    bracket or a string), so that a "." after it selects a field."""
    i = _back(expr, i)
    if i < 0:
        return False
    if expr[i] in ")]}\"'":
        return True
    start = i
    while start >= 0 and (expr[start].isalnum() or expr[start] == "_"):
        start -= 1
    return start < i and expr[start + 1:i + 1] != "in"


def rule_fields(expr: str) -> dict[str, tuple[str, ...]] | None:
    """{"workload": fields, "candidate": fields} the expression selects, or None if it reads either map in
    any way other than ``<map>.<field>`` (see the module docstring)."""
    if "\\" in expr or "//" in expr:
        return None
    found: dict[str, set[str]] = {m: set() for m in _MAPS}
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'":
            i = skip_string(expr, i)
            continue
        m = IDENT.match(expr, i)
        if m is None:
            i += 1
            continue
        name, i = m.group(), m.end()
        if name not in found:
            continue
        back = _back(expr, m.start() - 1)
        if back >= 0 and expr[back] == ".":
            if _after_operand(expr, back - 1):
                continue        # a field of something else (``x.candidate``), not the variable
            return None         # ``.candidate``: the variable by its root-scope name
        if back >= 0 and (expr[back].isalnum() or expr[back] == "_"):
            return None         # ``1candidate``: not something to second-guess
        k = _skip_space(expr, i)
        if k < n and expr[k] == ".":
            f = IDENT.match(expr, _skip_space(expr, k + 1))
            if f is not None:
                after = _skip_space(expr, f.end())
                if not (after < n and expr[after] == "("):
                    found[name].add(f.group())
                    i = f.end()
                    continue
        return None
    return {k: tuple(sorted(v)) for k, v in found.items()}


def _frozen(v: Any) -> Any:
    """A hashable stand-in for a map value that keeps apart what CEL keeps apart (types included: CEL does
    not equate 1, 1.0 and true the way Python does)."""
    if isinstance(v, Mapping):
        return (dict, tuple(sorted((str(k), _frozen(x)) for k, x in v.items())))
    if isinstance(v, (list, tuple)):
        return (list, tuple(_frozen(x) for x in v))
    return (type(v), v)


def project(values: Mapping[str, Any], fields: tuple[str, ...]) -> tuple[Any, ...]:
    """The part of one input map a rule reads, hashable (an absent field stands as itself)."""
    return tuple(_frozen(values[f]) if f in values else (None, _MISSING) for f in fields)
