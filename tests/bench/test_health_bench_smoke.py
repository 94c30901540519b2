"""`python -m bench --suite health --quick` end to end on this tree (no peer): the mock clouds in their own
process, one fresh process probing every cloud's regions, and the report (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main

CLOUDS = {"aws", "azure", "coreweave", "gcp", "oci"}


@pytest.mark.slow
def test_quick_health_bench_probes_every_cloud_and_reports_it(tmp_path: Path) -> None:
    rc = main(["--suite", "health", "--quick", "--health-peer", "", "--results-dir", str(tmp_path)])
    assert rc == 0
    res = json.loads((tmp_path / "health-latest.json").read_text())
    [(label, runs)] = res["runs"].items()
    assert label == "this" and len(runs) == 1 and set(runs[0]) == CLOUDS
    medians = res["medians"]["this"]
    for cloud in CLOUDS - {"coreweave"}:   # CoreWeave's one cluster API has no regions to report
        assert medians[cloud]["regions"] > 0 and medians[cloud]["probe_s"] > 0 and medians[cloud]["capacity_s"] > 0
        assert 0 <= medians[cloud]["impaired"] <= medians[cloud]["regions"]
