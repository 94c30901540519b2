"""Run the benchmark suites: every ``bench/<suite>/run.py`` that defines ``main(args) -> int``.

A suite may also define ``add_arguments(parser)`` to add its own options (they are namespaced by
convention: ``--placement-...``). Suites run in name order, one after the other, in this process.

    python -m bench                       # every suite, full size
    python -m bench --suite placement     # one suite
    python -m bench --quick               # tiny sizes (the smoke test uses this)
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType

BENCH_DIR = Path(__file__).resolve().parent


def discover() -> dict[str, ModuleType]:
    """suite name -> its imported run module, for every bench/<suite>/run.py."""
    suites: dict[str, ModuleType] = {}
    for run_py in sorted(BENCH_DIR.glob("*/run.py")):
        name = run_py.parent.name
        if name.startswith(("_", ".")):
            continue
        module = importlib.import_module(f"bench.{name}.run")
        if callable(getattr(module, "main", None)):
            suites[name] = module
    return suites


def build_parser(suites: dict[str, ModuleType]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description="Run Awan's benchmark suites.")
    p.add_argument("--suite", action="append", choices=sorted(suites), metavar="NAME",
                   help=f"run only this suite (repeatable; known: {', '.join(sorted(suites)) or 'none'})")
    p.add_argument("--quick", action="store_true", help="tiny sizes, for smoke tests; figures are not meaningful")
    p.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results",
                   help="where raw JSON results go (default: bench/results)")
    p.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU core")
    for name, module in suites.items():
        add = getattr(module, "add_arguments", None)
        if callable(add):
            add(p.add_argument_group(f"suite {name}"))
    return p


def main(argv: list[str] | None = None) -> int:
    suites = discover()
    args = build_parser(suites).parse_args(argv)
    chosen = args.suite or sorted(suites)
    if not chosen:
        print("no benchmark suites found under bench/", file=sys.stderr)
        return 2
    worst = 0
    for name in chosen:
        print(f"== bench suite: {name}{' (quick)' if args.quick else ''} ==", flush=True)
        rc = int(suites[name].main(args) or 0)
        worst = max(worst, rc)
    return worst


if __name__ == "__main__":
    sys.exit(main())
