"""The dispatch benchmark at tiny sizes (no timing assertions): every workload's pods reach Running, the
objects counted are those rendered, and the suite's summary is the median of its runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.dispatch.run import summarise
from bench.dispatch.worker import measure


def test_one_measurement_sees_every_workload_running() -> None:
    out = measure(2, 1)
    assert out["ok"] and out["running"] == 2
    assert out["objects"] == 4                  # a headless Service and an Indexed Job per training workload
    assert len(out["latencies_s"]) == 2 and all(x >= 0 for x in out["latencies_s"])
    assert out["all_running_s"] >= max(out["latencies_s"]) - 1e-6


def test_the_summary_is_the_median_of_the_runs() -> None:
    runs = [{"ok": True, "objects": 4, "p50_s": p, "p99_s": p * 2, "all_running_s": 1.0, "dispatch_s": 0.5,
             "objects_per_s": 8.0} for p in (0.3, 0.1, 0.2)]
    s = summarise(runs)
    assert s["p50_s"] == 0.2 and s["p99_s"] == 0.4 and s["runs"] == 3 and s["ok"]


@pytest.mark.slow
def test_the_suite_runs_quick_and_writes_its_results(tmp_path: Path) -> None:
    assert main(["--suite", "dispatch", "--quick", "--results-dir", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "dispatch-latest.json").read_text())
    assert res["this"]["2"]["ok"] and res["this"]["2"]["objects"] == 4 and res["peer"] == {}
    assert len(res["load_before"]) == 3
