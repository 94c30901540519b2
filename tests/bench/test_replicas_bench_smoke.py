"""`python -m bench --suite replicas --quick` end to end: real `awan serve` replicas on PostgreSQL against
the AWS mock with injected latency. No timing assertions: every workload runs, the stacks were run by both
replicas (the work is shared), and the figures agree with each other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.replicas.run import REGIONS, WARM_REGIONS, manifest


def test_measured_and_warm_up_regions_are_apart_and_workloads_pinned_round_robin() -> None:
    assert not set(REGIONS) & set(WARM_REGIONS)
    assert "aws:us-east-2" in manifest(1, REGIONS) and "aws:us-east-1" in manifest(len(REGIONS), REGIONS)


@pytest.mark.slow
@pytest.mark.postgres
def test_quick_replicas_bench_shares_the_stacks_and_converges(tmp_path: Path) -> None:
    rc = main(["--suite", "replicas", "--quick", "--no-pin", "--replicas-counts", "1,2",
               "--results-dir", str(tmp_path)])
    res = json.loads((tmp_path / "replicas-latest.json").read_text())
    assert rc == 0
    assert [r["replicas"] for r in res["runs"]] == [1, 2]
    for r in res["runs"]:
        assert r["complete"] and r["states"] == {"Running": res["workloads"]}
        assert sum(r["provisioned_by"].values()) == res["workloads"]       # each moved to Provisioning once
        assert len(r["provisioned_by"]) <= r["replicas"]
    assert len(res["runs"][1]["provisioned_by"]) == 2, "the second replica ran no stack"
    assert res["speedup"]["1"] == 1.0 and res["median"]["2"] == res["runs"][1]["workloads_per_s"]
