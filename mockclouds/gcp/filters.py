"""The subset of GCE list ``filter`` syntax the fake understands.

Terms joined by ``AND`` or written as parenthesised groups, each ``field = "value"``,
``field != "value"``, ``field eq 'regex'`` / ``field ne 'regex'`` (RE2, whole field) or ``field:*``
(present) / ``field:"value"``. Fields: ``labels.<key>``, ``name``,
``status``. Anything else is refused with 400, as GCE does for a filter it cannot parse.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from mockclouds.gcp.errors import invalid

_TERM = re.compile(r'^\s*([A-Za-z][\w.-]*)\s*(!=|=|:|\beq\b|\bne\b)\s*(.+?)\s*$')
_SPLIT = re.compile(r'\)\s*(?:AND\s*)?\(|\s+AND\s+')

Predicate = Callable[[Mapping[str, str]], bool]


def _unquote(v: str) -> str:
    return v[1:-1] if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'" else v


def _term(text: str) -> Predicate:
    m = _TERM.match(text)
    if not m:
        raise invalid(f"Invalid list filter expression: {text!r}")
    field, op, raw = m.group(1), m.group(2), m.group(3)
    if field not in ("name", "status") and not field.startswith("labels."):
        raise invalid(f"Invalid field name in list filter: {field!r}")
    value = _unquote(raw)
    if op == ":":
        return (lambda f: field in f) if value == "*" else (lambda f: f.get(field) == value)
    if op in ("eq", "ne"):
        # GCE reads the eq/ne form's literal as an RE2 regular expression that must match the whole field.
        try:
            pattern = re.compile(value)
        except re.error:
            raise invalid(f"Invalid regular expression in list filter: {value!r}") from None
        if op == "eq":
            return lambda f: (v := f.get(field)) is not None and pattern.fullmatch(v) is not None
        return lambda f: (v := f.get(field)) is None or pattern.fullmatch(v) is None
    if op == "!=":
        return lambda f: f.get(field) != value
    return lambda f: f.get(field) == value


def parse_filter(expr: str | None) -> Predicate:
    """Compile a filter to a predicate over flattened fields ({'name':…, 'status':…, 'labels.k':…})."""
    if not expr or not expr.strip():
        return lambda f: True
    text = expr.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    terms = [_term(t) for t in _SPLIT.split(text) if t.strip()]
    if len(terms) == 1:
        return terms[0]

    def every(f: Mapping[str, str]) -> bool:
        for t in terms:  # noqa: SIM110 - a loop, not all(genexpr): a zone's list runs this per instance
            if not t(f):
                return False
        return True
    return every
