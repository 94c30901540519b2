"""`python -m bench --suite stall --quick` end to end on this tree (no peer): a real uvicorn subprocess, a
submit with /healthz polled during it, then submit/list on a grown store (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main


@pytest.mark.slow
def test_quick_stall_bench_runs_and_reports_every_cell(tmp_path: Path) -> None:
    rc = main(["--suite", "stall", "--quick", "--stall-peer", "", "--stall-documents", "50", "--stall-store", "60,120",
               "--results-dir", str(tmp_path)])
    assert rc == 0
    res = json.loads((tmp_path / "stall-latest.json").read_text())
    [tree] = res["trees"]
    [run] = tree["stall"]
    assert run["submit_status"] == 201 and run["healthz_n"] >= 1
    assert {(g["stored"], g["op"]) for g in tree["growth"]} == {(n, op) for n in (60, 120) for op in ("submit", "list")}
    assert all(g["errors"] == 0 for g in tree["growth"])
