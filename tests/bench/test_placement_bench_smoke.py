"""`python -m bench --suite placement --quick` end to end against the real placement engine (no timing
assertions: only that it runs and its figures are internally consistent)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.__main__ import main


def test_quick_placement_bench_runs_and_reports_consistent_figures(tmp_path: Path) -> None:
    rc = main(["--suite", "placement", "--quick", "--no-pin", "--placement-no-peer", "--results-dir", str(tmp_path)])
    res = json.loads((tmp_path / "placement-latest.json").read_text())
    assert res["errors"] == {} and res["pending"] == [], (res["errors"], res["pending"])
    assert rc == 0
    s = res["stream"]
    assert s["workloads_decided"] == res["sizes"]["workloads"]
    assert sum(v["decisions"] for v in s["per_size"].values()) == s["workloads_decided"]
    assert 0.0 < s["fraction_placed"] <= 1.0
    assert s["single_node_placements_per_s"] > 0
    assert s["fleet"]["gpus"] > 0.9 * res["sizes"]["fleet"]
    b = res["batch"]
    assert 0 < b["placed"] <= b["workloads"]
    # The LP is a lower bound on the cost of placing the same set: never above what the engine paid.
    assert b["lp"]["lp_bound"] is not None
    assert b["lp"]["lp_bound"] <= b["our_cost_per_hour"] * (1 + 1e-9)
    assert set(res["targets"]) == {"single_node_placements_per_s", "gang1024_p99_ms", "batch_vs_lp"}
