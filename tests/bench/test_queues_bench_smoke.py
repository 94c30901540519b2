"""`python -m bench --suite queues --quick` end to end (no timing assertions: only that it runs and its
figures are consistent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main

pytestmark = pytest.mark.slow


def test_quick_queues_bench_runs_and_reports_consistent_figures(tmp_path: Path) -> None:
    rc = main(["--suite", "queues", "--quick", "--no-pin", "--results-dir", str(tmp_path)])
    assert rc == 0
    res = json.loads((tmp_path / "queues-latest.json").read_text())
    m = res["median"]
    assert 0 < m["cold_admitted"] < res["sizes"]["pending"]          # the fleet fills; the rest waits
    assert m["cold_decisions_per_s"] > 0 and m["full_decisions_per_s"] > 0
    assert m["admit_15k_admitted"] == min(15_000, res["sizes"]["loop_pending"])
    assert 1 <= m["settle_raise_cycles"] < 30 and 1 <= m["settle_cycles"] < 30   # settled, not cut off
    assert 0 < m["store_admitted"] <= res["sizes"]["store_pending"]
    assert res["peer"]["kueue_published_15k_admitted_s"] == 351.0
