"""The e2e benchmark at a tiny size (no timing assertions): two workloads submitted through ``submit()`` go
through placement, provisioning and dispatch by the real Controller and their pods are seen Running by the
pod watch; the summary is the median of the runs; the dispatch rate needs enough stamps to mean anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.e2e.run import E2E_KEYS, summarise
from bench.e2e.worker import manifests, measure, steady_rate
from controlplane.model.manifest import load_documents, parse_documents


@pytest.mark.slow   # ~12 s at load 6 on 2 cores (mock start, real loop passes)
def test_two_workloads_are_submitted_placed_provisioned_and_running() -> None:
    out = measure(2, timeout_s=600.0)
    assert out["ok"] and out["running"] == 2
    assert len(out["latencies_s"]) == 2 and all(x > 0 for x in out["latencies_s"])
    assert out["passes"] >= 2            # placement and provisioning first, the pods in a later pass
    assert out["first_dispatch_s"] is not None and out["first_dispatch_s"] > 0
    assert out["all_running_s"] >= max(out["latencies_s"]) - 1e-6
    assert out["dispatch_per_s"] is None  # under 10 stamps: no steady part to measure


def test_the_manifests_are_one_node_batch_workloads_with_a_template() -> None:
    wls = parse_documents(load_documents(manifests(3, "t"), "t"), "t")
    assert [w.metadata.name for w in wls] == ["t-00000", "t-00001", "t-00002"]
    assert all(w.spec.kind == "batch" and w.spec.gpus.count == w.spec.gpus.per_node == 8 for w in wls)
    assert all(w.spec.template is not None for w in wls)


def test_the_steady_rate_leaves_out_the_ramps() -> None:
    assert steady_rate([0.0] * 5) is None
    stamps = [float(i) for i in range(100)]          # one a second
    assert steady_rate(stamps) == 1.0
    # A slow start and a long tail (the first and last tenth) do not move it.
    assert steady_rate([0.0] * 10 + stamps[10:90] + [1000.0] * 10) == 1.0


def test_the_summary_is_the_median_of_the_runs() -> None:
    runs = [{"ok": True, "p50_s": p, "p99_s": 2 * p, "all_running_s": 1.0, "first_dispatch_s": 0.5,
             "dispatch_per_s": None, "submit_s": 0.01, "passes": 2} for p in (0.3, 0.1, 0.2)]
    s = summarise(runs, E2E_KEYS)
    assert s["p50_s"] == 0.2 and s["p99_s"] == 0.4 and s["runs"] == 3 and s["ok"]
    assert s["dispatch_per_s"] is None


@pytest.mark.slow
def test_the_suite_runs_quick_and_writes_its_results(tmp_path: Path) -> None:
    assert main(["--suite", "e2e", "--quick", "--results-dir", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "e2e-latest.json").read_text())
    assert res["e2e"]["2"]["ok"] and res["e2e"]["2"]["runs"] == 1 and res["dispatch_only"] == {}
    assert len(res["load_before"]) == 3 and len(res["load_after"]) == 3
