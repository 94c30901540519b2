"""`python -m bench --suite stall --quick` end to end on this tree (no peer): `awan serve` with its loop on the
mock clouds (each in its own process), a submit with /healthz polled during it while burst clients submit
one-GPU workloads and a bare server's /healthz is polled beside it, then submit/list on a grown store served by the API alone (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from controlplane.settings import Settings


@pytest.mark.slow
def test_quick_stall_bench_runs_and_reports_every_cell(tmp_path: Path) -> None:
    rc = main(["--suite", "stall", "--quick", "--stall-peer", "", "--stall-documents", "50", "--stall-store", "60,120",
               "--stall-burst-rate", "4", "--stall-floor", "--results-dir", str(tmp_path)])
    assert rc == 0
    res = json.loads((tmp_path / "stall-latest.json").read_text())
    [tree] = res["trees"]
    assert tree["loop"] is True and tree["burst_rate"] == 4
    [run] = tree["stall"]
    assert run["submit_status"] == 201 and run["healthz_n"] >= 1
    assert run["burst_sent"] >= 1 and run["burst_accepted"] == run["burst_sent"]
    assert run["floor_p99_ms"] > 0 and "floor_p99_ms" in tree["median"]     # the bare server was polled too
    # each service process's CPU over the run, and its nice value (the controller's: AWAN_BACKGROUND_NICE)
    assert run["cpu"]["api"]["cpu_s"] > 0
    # (its default, 0 since the rate bench showed what 10 cost beside other busy programs)
    nice = Settings().background_nice
    assert run["cpu"]["controller"]["nice"] == min(19, run["cpu"]["api"]["nice"] + nice)
    assert {(g["stored"], g["op"]) for g in tree["growth"]} == {(n, op) for n in (60, 120) for op in ("submit", "list")}
    assert all(g["errors"] == 0 for g in tree["growth"])


@pytest.mark.slow
def test_quick_stall_bench_api_alone_without_burst(tmp_path: Path) -> None:
    rc = main(["--suite", "stall", "--quick", "--stall-peer", "", "--stall-documents", "50", "--stall-store", "",
               "--stall-no-loop", "--stall-burst-rate", "0", "--results-dir", str(tmp_path)])
    assert rc == 0
    [tree] = json.loads((tmp_path / "stall-latest.json").read_text())["trees"]
    [run] = tree["stall"]
    assert tree["loop"] is False and run["submit_status"] == 201 and "burst_sent" not in run
    assert tree["growth"] == []
