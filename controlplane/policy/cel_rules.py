"""Custom rules as CEL expressions over ``workload`` and ``candidate`` maps, compiled once at load.

The engine is ``common-expression-language`` (Rust; ~10 us per evaluation). Evaluation is cached per
(rule, workload attributes, candidate attributes) by the placement core, so a bulk filter evaluates each
distinct combination once. Long-running expressions are guarded by a limit on the expression's size (CEL
has no loops, so run time is bounded by the text and the data).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import cel

MAX_EXPRESSION_CHARS = 2000
_POSITION = re.compile(r"<input>:(\d+):(\d+):\s*(.*)")


class CelCompileError(ValueError):
    """Raised by compile_rule; the loader wraps it into a PolicyError naming the file."""


@dataclass(frozen=True, slots=True)
class CelRule:
    """``expr`` must be true for a candidate to stay in. ``message`` is what explanations print."""

    name: str
    expr: str
    message: str = ""
    source: str = ""
    program: Any = field(default=None, compare=False, repr=False)

    def evaluate(self, activation: dict[str, Any]) -> tuple[bool, str]:
        """(passed, why not). Errors count as failure and keep CEL's message."""
        try:
            out = self.program.execute(activation)
        except KeyError as e:
            return False, f"rule {self.name}: evaluation error: no such key {e.args[0]!r}"
        except Exception as e:  # noqa: BLE001 - every CEL runtime error is a rule failure, by design
            return False, f"rule {self.name}: evaluation error: {_first_line(str(e))}"
        if out is True:
            return True, ""
        if out is False:
            return False, f"rule {self.name}: {self.message or self.expr}"
        return False, f"rule {self.name}: expression returned {type(out).__name__}, not a bool"


def _first_line(s: str) -> str:
    return s.strip().splitlines()[0] if s.strip() else s


def compile_rule(name: str, expr: str, message: str = "", source: str = "") -> CelRule:
    if not expr.strip():
        raise CelCompileError("expression is empty")
    if len(expr) > MAX_EXPRESSION_CHARS:
        raise CelCompileError(f"expression is {len(expr)} characters, over the limit of {MAX_EXPRESSION_CHARS}")
    try:
        program = cel.compile(expr)
    except Exception as e:  # noqa: BLE001 - the cel module raises ValueError with the parser's text
        text = str(e)
        m = _POSITION.search(text)
        if m:
            line, col, what = m.groups()
            raise CelCompileError(f"line {line} column {col}: {what.strip()}") from None
        raise CelCompileError(_first_line(text)) from None
    return CelRule(name=name, expr=expr, message=message, source=source, program=program)
