"""Custom rules as CEL expressions over ``workload`` and ``candidate`` maps, compiled once at load.

The engine is ``common-expression-language`` (Rust; ~10 us per evaluation). Evaluation is cached per
(rule, workload attributes, candidate attributes) by the placement core, so a bulk filter evaluates each
distinct combination once.

Run time is bounded before a rule is accepted. CEL has no loops, but its comprehension macros (``all``,
``exists``, ``map``...) nest: six nested ``.all`` over ten-element lists already take half a second, and
2,000 characters allow far worse. The runtime has no cost limit of its own, so ``estimated_iterations``
bounds the product of the ranges along every nesting path (a list literal counts its elements; anything
else counts as ``DATA_RANGE``, the most the workload and candidate maps hold: 64 labels at most).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from controlplane.policy.cel_engine import cel_module

MAX_EXPRESSION_CHARS = 2000
MAX_ITERATIONS = 10_000          # about 5 ms of the slowest comprehension body, measured
DATA_RANGE = 64                  # the largest list or map a rule can iterate over in its input
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
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
    iterations = estimated_iterations(expr)
    if iterations > MAX_ITERATIONS:
        raise CelCompileError(f"nested comprehensions may run about {iterations:,} iterations per evaluation, "
                              f"over the limit of {MAX_ITERATIONS:,}")
    try:
        program = cel_module().compile(expr)
    except Exception as e:  # noqa: BLE001 - the cel module raises ValueError with the parser's text
        text = str(e)
        m = _POSITION.search(text)
        if m:
            line, col, what = m.groups()
            raise CelCompileError(f"line {line} column {col}: {what.strip()}") from None
        raise CelCompileError(_first_line(text)) from None
    _check_on_sample(program)
    return CelRule(name=name, expr=expr, message=message, source=source, program=program)


# What the placement core hands a rule (controlplane/placement/candidates.py: WorkloadClass.cel_map and
# PoolView.cel_map; a test keeps these keys equal to theirs). The CEL module compiles without a type check,
# so a misspelt function or field, or an expression that is not a condition, would otherwise only show up
# at placement time as every candidate failing. Evaluating once on these values catches them at load.
SAMPLE_WORKLOAD: dict[str, Any] = {
    "team": "research", "labels": {}, "kind": "training", "gpus": 8, "count": 8, "perNode": 8,
    "models": ["H100"], "capacityTypes": ["on-demand"], "priority": 100, "replicas": 1, "topology": "none",
    "domainSize": 0, "gpuMemory": 0}
SAMPLE_CANDIDATE: dict[str, Any] = {
    "provider": "aws", "region": "us-east-1", "zone": "us-east-1a", "geo": "us", "country": "US",
    "instanceType": "p5.48xlarge", "gpuModel": "H100", "gpusPerNode": 8, "capacityType": "on-demand",
    "reserved": False, "reservation": "", "pricePerHour": 55.04, "pricePerGpuHour": 6.88, "fabric": "efa",
    "nvlinkDomainGpus": 8, "committed": False, "gpuMemory": 80.0}
_UNDEFINED = re.compile(r"Undefined variable or function: '([^']+)'")


def _check_on_sample(program: Any) -> None:
    """Reject what cannot be right for any workload: an unknown function, variable or field, or a result
    that is not a bool. Other runtime errors depend on the data (a label that is absent, say) and stay
    evaluation-time failures."""
    labels: dict[str, str] = {}
    for _ in range(8):   # a missing key may be a label the rule reads: add it and evaluate again
        try:
            out = program.execute({"workload": {**SAMPLE_WORKLOAD, "labels": labels}, "candidate": SAMPLE_CANDIDATE})
        except KeyError as e:
            key = str(e.args[0]) if e.args else ""
            if not key or key in labels:
                raise CelCompileError(f"no such field {key!r} on workload or candidate") from None
            labels[key] = "x"
            continue
        except Exception as e:  # noqa: BLE001 - see the docstring: only unknown names are load errors
            m = _UNDEFINED.search(str(e))
            if m:
                raise CelCompileError(f"undefined variable or function {m.group(1)!r} (rules see "
                                      "'workload' and 'candidate')") from None
            return
        if not isinstance(out, bool):
            raise CelCompileError(f"the expression gives {type(out).__name__}, not a bool (a rule is a "
                                  "condition that keeps a candidate when true)")
        return


_TOKEN = re.compile(r"""
    (?P<ws>\s+|//[^\n]*)                                     # whitespace and comments: between any tokens
  | (?P<str>(?:[rR][bB]?|[bB][rR]?)?(?:\"\"\"|\'\'\'|\"|\'))      # a string literal starts (prefix, quote)
  | (?P<num>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[uU]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>&&|\|\||==|!=|<=|>=|[-+*/%!<>?:.,()\[\]{}])
    """, re.VERBOSE)


def tokens(expr: str) -> list[tuple[str, str]]:
    """CEL's lexical tokens of ``expr`` as (kind, text), comments and whitespace dropped: the cost bound
    works on these, not on characters, so ``[..]. all (`` (spaces, comments, line breaks) is seen as the
    macro call it is. Unknown characters end the scan (the compiler rejects them)."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(expr)
    while i < n:
        m = _TOKEN.match(expr, i)
        if m is None:
            break
        kind = m.lastgroup or ""
        if kind == "str":
            lit = m.group()
            quote = lit[-3:] if lit.endswith(('"""', "'''")) else lit[-1]
            if "r" in lit[:2].lower():          # raw: no escapes, the first closing quote ends it
                close = expr.find(quote, m.end())
                j = n if close < 0 else close + len(quote)
            else:
                j = skip_string(expr, m.end() - len(quote))
            out.append(("str", expr[i:j]))
            i = j
            continue
        if kind != "ws":
            out.append((kind, m.group()))
        i = m.end()
    return out


def estimated_iterations(expr: str) -> int:
    """An upper estimate of comprehension iterations in one evaluation: the largest product of macro
    ranges along one nesting path, over the expression's tokens (``tokens``).

    A list literal ranges over its elements. Anything else (a field, a variable, a parenthesised or
    computed value) ranges over at most ``data_range(expr)``: the input maps hold at most DATA_RANGE
    entries, and a list computed inside the rule is at most all its list literals' elements, doubled by
    each ``+`` (concatenation is the only way CEL grows a list; its macros keep or shrink sizes)."""
    toks = tokens(expr)
    computed = data_range(toks)
    stack: list[tuple[str, int]] = []        # (bracket, range of the comprehension it opens or 1)
    commas: list[int] = []                   # top-level commas of each open '['
    last_range = 1                           # range of the value that just closed (list literal or macro)
    worst, skip_paren = 1, False
    for k, (kind, text) in enumerate(toks):
        if kind == "ident":
            is_method = k > 0 and toks[k - 1] == ("punct", ".")
            if is_method and text in _MACROS and k + 1 < len(toks) and toks[k + 1] == ("punct", "("):
                stack.append(("(", last_range if last_range > 1 else computed))
                worst = max(worst, _product(stack))
                last_range, skip_paren = 1, True
                continue
            last_range = computed
        elif kind == "str":
            last_range = computed
        elif text in ("(", "[", "{"):
            if skip_paren:                   # the macro's own parenthesis, pushed with its range above
                skip_paren = False
                continue
            stack.append((text, 1))
            if text == "[":
                commas.append(0)
            last_range = 1
        elif text in (")", "]", "}"):
            if not stack:
                return worst
            opened, rng = stack.pop()
            if opened == "[":
                n = commas.pop()
                last_range = max(1, 0 if toks[k - 1] == ("punct", "[") else n + 1)
            else:
                last_range = rng if rng > 1 else computed
        elif text == "," and stack and stack[-1][0] == "[":
            commas[-1] += 1
        elif text != ".":
            last_range = 1
    return worst


def data_range(toks: list[tuple[str, str]]) -> int:
    """The most elements a non-literal value of the expression can hold (see estimated_iterations)."""
    literal = 0
    depth_commas: list[int] = []
    for kind, text in toks:
        if text == "[" and kind == "punct":
            depth_commas.append(1)
        elif text == "," and kind == "punct" and depth_commas:
            depth_commas[-1] += 1
        elif text == "]" and kind == "punct" and depth_commas:
            literal += depth_commas.pop()
    plus = sum(1 for t in toks if t == ("punct", "+"))
    return max(DATA_RANGE, literal << min(plus, 64))


def _product(stack: list[tuple[str, int]]) -> int:
    out = 1
    for _b, r in stack:
        out *= r
    return out


def skip_string(expr: str, i: int) -> int:
    """Index just past the CEL string literal starting at ``i`` (triple quotes and escapes understood).
    Shared with the placement core's scan of the fields a rule reads (``controlplane.placement.celkeys``)."""
    q = expr[i]
    triple = expr.startswith(q * 3, i)
    end = q * 3 if triple else q
    j = i + len(end)
    while j < len(expr):
        if expr[j] == "\\":
            j += 2
            continue
        if expr.startswith(end, j):
            return j + len(end)
        j += 1
    return len(expr)
