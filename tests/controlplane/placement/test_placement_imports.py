"""The placement package's imports form a tree (issue 14 item 3): no module imports, even lazily or only for
type checking, a module that imports it back. Walks every import statement of controlplane/placement with
``ast`` (module level, inside functions and under ``if TYPE_CHECKING``), builds the graph between the
package's modules and looks for a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import controlplane.placement

PKG = "controlplane.placement"
DIR = Path(controlplane.placement.__file__).parent


def _module(path: Path) -> str:
    return PKG if path.name == "__init__.py" else f"{PKG}.{path.stem}"


def imports_of(tree: ast.AST, modules: set[str]) -> set[str]:
    """The package modules a module's source imports (``from PKG import x`` counts x when it is a module)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out |= {n for n in names if n in modules}
    return out


def graph() -> dict[str, set[str]]:
    files = sorted(DIR.glob("*.py"))
    modules = {_module(f) for f in files}
    g = {_module(f): imports_of(ast.parse(f.read_text()), modules) for f in files}
    # the package's __init__ imports its modules: that is the package's public face, not a dependency of
    # a module on another (every module's import of ``controlplane.placement.x`` loads __init__ first, but
    # __init__ never imports back into a module that needs it half-done)
    for m in g:
        g[m].discard(PKG)
    return g


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}          # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(g.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                got = visit(n)
                if got:
                    return got
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(g):
        if m not in state:
            got = visit(m)
            if got:
                return got
    return None


def test_placement_imports_have_no_cycle():
    g = graph()
    assert len(g) >= 10 and f"{PKG}.views" in g
    cycle = find_cycle(g)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_walk_sees_lazy_and_type_checking_imports():
    """The checker itself: the two cycles issue 14 found (a function-level import of batch in engine, a
    TYPE_CHECKING import of candidates in rules) are cycles to it."""
    modules = {f"{PKG}.engine", f"{PKG}.batch", f"{PKG}.rules", f"{PKG}.candidates"}
    engine = ast.parse("def place():\n    from controlplane.placement.batch import solve\n")
    batch = ast.parse("from controlplane.placement.engine import Placer\n")
    rules = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from controlplane.placement.candidates import PoolView\n")
    candidates = ast.parse("from controlplane.placement import rules\n")
    g = {f"{PKG}.engine": imports_of(engine, modules), f"{PKG}.batch": imports_of(batch, modules),
         f"{PKG}.rules": imports_of(rules, modules), f"{PKG}.candidates": imports_of(candidates, modules)}
    assert find_cycle({k: v for k, v in g.items() if k.endswith(("engine", "batch"))}) is not None
    assert find_cycle({k: v for k, v in g.items() if k.endswith(("rules", "candidates"))}) is not None
    assert find_cycle({f"{PKG}.rules": g[f"{PKG}.rules"], f"{PKG}.candidates": set()}) is None


def test_placement_keeps_no_module_level_cache():
    """Placement is pure: no module-level mutable container holds state between calls (the caller owns the
    caches: placement/cache.py). Module-level names bound to a dict/list/set display or a call of
    dict/list/set/WeakKeyDictionary are what such caches look like; constants are tuples or frozen."""
    found = []
    for f in sorted(DIR.glob("*.py")):
        for node in ast.parse(f.read_text()).body:
            if isinstance(node, ast.FunctionDef):      # @cache / @lru_cache on a module function
                for d in node.decorator_list:
                    fn = d.func if isinstance(d, ast.Call) else d
                    called = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
                    if called in ("cache", "lru_cache"):
                        found.append(f"{f.name}: {node.name} (@{called})")
            value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
            if value is None:
                continue
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            name = target.id if isinstance(target, ast.Name) else "?"
            mutable = isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp))
            if isinstance(value, ast.Call):
                fn = value.func
                called = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
                mutable = called in ("dict", "list", "set", "WeakKeyDictionary", "WeakValueDictionary",
                                     "defaultdict", "OrderedDict", "lru_cache")
            if mutable and name != "__all__":
                found.append(f"{f.name}: {name}")
    assert found == [], found
