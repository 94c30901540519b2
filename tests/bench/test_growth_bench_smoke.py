"""`python -m bench --suite growth --quick` end to end on this tree, SQLite, both modes (served app; app in
the measuring process): every cell reported, no errors (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main

_OPS = {"submit", "list", "list-deep", "list-state", "list-state-deep"}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["http", "cpu"])
def test_quick_growth_bench_reports_every_cell(tmp_path: Path, mode: str) -> None:
    rc = main(["--suite", "growth", "--quick", "--growth-db", "sqlite", "--growth-sizes", "50,120",
               "--growth-requests", "3", "--growth-mode", mode, "--results-dir", str(tmp_path)])
    assert rc == 0
    res = json.loads((tmp_path / "growth-latest.json").read_text())
    assert {(c["stored"], c["op"]) for c in res["cells"]} == {(n, op) for n in (50, 120) for op in _OPS}
    assert all(c["requests"] == 3 and c["errors"] == 0 for c in res["cells"]) if mode == "http" else \
        all(c["cpu_ms"] > 0 for c in res["cells"])
    assert {m["tree"] for m in res["median"]} == {"this"}
