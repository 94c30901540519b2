"""The rate benchmark at a tiny size (no timing assertions): `awan serve` with its loop on mock clouds in
their own processes, two open-loop submitter processes on one schedule, every accepted workload seen Placed
and timed from its due moment; the submitter's manifest is a valid one-GPU workload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.rate.submitter import manifest
from controlplane.model.manifest import load_documents, parse_documents


@pytest.mark.slow   # mock clouds and a service started in their own processes, a warm-up placement
def test_quick_rate_bench_places_every_accepted_submission(tmp_path: Path) -> None:
    rc = main(["--suite", "rate", "--quick", "--rate-db", "sqlite", "--rate-rates", "4", "--rate-seconds", "2",
               "--rate-drain-s", "600", "--results-dir", str(tmp_path)])
    assert rc == 0
    [cell] = json.loads((tmp_path / "rate-latest.json").read_text())["cells"]
    assert cell["db"] == "sqlite" and cell["offered_rate"] == 4
    assert cell["requests"] == 8 and cell["accepted"] == 8 and cell["errors"] == 0, cell["first_error"]
    assert cell["placed"] == 8                        # every accepted workload reached Placed
    assert cell["placed_p50_s"] > 0 and cell["placed_max_s"] >= cell["placed_p99_s"] >= cell["placed_p50_s"]


def test_the_submitted_manifest_is_one_gpu_inference_on_aws_or_gcp() -> None:
    [w] = parse_documents(load_documents(manifest("r-1"), "t"), "t")
    assert w.name == "r-1" and w.total_gpus == 1 and w.spec.kind.value == "inference"
