"""`python -m bench --suite provisioning --quick` end to end on the five mock clouds through the local
engine (no timing assertions: that it converges, that the second up changes nothing, that destroy
leaves nothing behind, and that the figures agree with each other)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.provisioning.pools import node_pools
from bench.provisioning.run import fit_exponent
from providers.catalog import default_catalog


def test_pools_spread_over_every_provider_and_several_regions() -> None:
    pools = node_pools(24, default_catalog(), regions_per_provider=3)
    assert len({p.pool for p in pools}) == 24
    assert {p.provider for p in pools} == {"aws", "azure", "coreweave", "gcp", "oci"}
    assert len({(p.provider, p.region) for p in pools}) == 15
    assert all(p.nodes == 1 and not p.instance_type.startswith("tpu-") for p in pools)


def test_fit_exponent_recovers_a_power_law() -> None:
    assert fit_exponent([(10, 2.0), (100, 200.0), (1000, 20000.0)]) == pytest.approx(2.0)
    assert fit_exponent([(10, 1.0)]) is None


@pytest.mark.slow
def test_quick_provisioning_bench_converges_and_reports_a_noop_second_up(tmp_path: Path) -> None:
    rc = main(["--suite", "provisioning", "--quick", "--no-pin", "--provisioning-sizes", "8",
               "--results-dir", str(tmp_path)])
    res = json.loads((tmp_path / "provisioning-latest.json").read_text())
    assert res["errors"] == {}, res["errors"]
    assert rc == 0
    [run] = res["runs"]
    assert run["pools"] == 8 and run["cloud_nodes_after_up"] == 8 and run["cloud_nodes_after_destroy"] == 0
    assert run["first_up"]["counts"]["create"] == run["resources"] > run["pools"]
    assert run["noop_ok"] is True
    assert run["second_up"]["counts"]["same"] == run["resources"]
    assert len(run["destroy"]["errors"]) == 0 and run["destroy"]["counts"]["delete"] == run["resources"]
