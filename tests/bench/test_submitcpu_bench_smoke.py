"""`python -m bench --suite submitcpu --quick` on this tree, SQLite only (no timing assertions): a served
uvicorn takes every submit and the server's CPU per submit is read and summarised as a median."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.submitcpu.cpu import manifest, process_cpu_s
from controlplane.model.manifest import load_documents, parse_documents


def test_the_manifest_is_the_rate_suites_one_gpu_workload() -> None:
    (w,) = parse_documents(load_documents(manifest("m-1"), "t"), "t")
    assert w.name == "m-1" and w.total_gpus == 1 and w.spec.template is None


def test_process_cpu_is_read_for_this_process() -> None:
    import os

    assert process_cpu_s(os.getpid()) > 0


@pytest.mark.slow   # a served process: ~30 s at load 12 on 2 cores
def test_quick_submitcpu_suite_serves_every_submit_and_reports_a_median(tmp_path: Path) -> None:
    rc = main(["--suite", "submitcpu", "--quick", "--submitcpu-dbs", "sqlite", "--submitcpu-n", "30",
               "--submitcpu-warmup", "5", "--no-pin", "--results-dir", str(tmp_path)])
    out = json.loads((tmp_path / "submitcpu-latest.json").read_text())
    assert rc == 0 and out["errors"] == {}
    (run,) = out["runs"]
    assert run["submits"] == 30 and run["errors"] == 0 and run["cpu_ms_per_submit"] > 0
    assert list(out["medians"].values()) == [run["cpu_ms_per_submit"]]
