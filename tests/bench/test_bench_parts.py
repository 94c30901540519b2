"""The benchmark's own parts, without the placement engine: runner discovery, stream, catalog export, LP."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from bench.__main__ import build_parser, discover
from bench.machine import percentile
from bench.placement.lp_bound import lp_bound
from bench.placement.sky_catalog import export_sky_catalog
from bench.placement.stream import SIZE_MIX, workload_stream
from providers.catalog import CapacityType, default_catalog
from providers.model import CapacityPool


def test_runner_discovers_placement_suite_and_its_options() -> None:
    suites = discover()
    assert "placement" in suites
    args = build_parser(suites).parse_args(["--suite", "placement", "--quick", "--placement-workloads", "7"])
    assert args.quick and args.suite == ["placement"] and args.placement_workloads == 7


def test_runner_refuses_unknown_suite() -> None:
    with pytest.raises(SystemExit):
        build_parser(discover()).parse_args(["--suite", "no-such-suite"])


def test_stream_is_deterministic_and_has_every_size() -> None:
    a = [(i.shape, i.workload.name, i.workload.total_gpus) for i in workload_stream(3000, seed=1)]
    b = [(i.shape, i.workload.name, i.workload.total_gpus) for i in workload_stream(3000, seed=1)]
    c = [(i.shape, i.workload.name) for i in workload_stream(3000, seed=2)]
    assert a == b
    assert [x[:2] for x in a] != c
    sizes = {str(g) for _, _, g in a}
    assert set(SIZE_MIX) <= sizes | {"1024"} and {"1", "8", "72"} <= sizes


def test_stream_gangs_are_whole_nvlink_or_training_gangs() -> None:
    for item in workload_stream(5000, seed=3):
        spec = item.workload.spec
        if item.size == "72":
            assert spec.topology.domain == "nvlink" and spec.topology.domain_size == 72
            assert set(spec.gpus.model) <= {"GB200", "GB300"}
        assert item.workload.total_gpus == int(item.size)


def test_percentile_nearest_rank() -> None:
    xs = [float(i) for i in range(1, 101)]
    assert percentile(xs, 50) == 50.0 and percentile(xs, 99) == 99.0 and percentile(xs, 100) == 100.0
    assert math.isnan(percentile([], 50))


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_sky_catalog_export_keeps_our_prices_and_never_downloads(tmp_path: Path) -> None:
    cat = default_catalog()
    counts = export_sky_catalog(cat, tmp_path)
    root = tmp_path / ".sky" / "catalogs" / "v8"
    assert not list(root.rglob(".meta")), "an md5 beside a file would let SkyPilot replace it"
    aws = _rows(root / "aws" / "vms.csv")
    assert len(aws) == counts["aws/vms.csv"] > 0
    # Every AWS row is one of our on-demand offerings, at our price, in our zone.
    ours = {(o.instance_type, o.zone): o.price_per_hour for o in cat.for_provider("aws")
            if o.capacity_type == CapacityType.ON_DEMAND}
    for r in aws:
        assert float(r["Price"]) == pytest.approx(ours[(r["InstanceType"], r["AvailabilityZone"])])
    # No reserved-only type (P6e-GB200 capacity blocks) and no TPU reaches SkyPilot.
    assert all(r["InstanceType"] != "p6e-gb200.36xlarge" for r in aws)
    gcp = _rows(root / "gcp" / "vms.csv")
    assert not any("tpu" in r["InstanceType"] for r in gcp)
    # GCP: host row priced 0, accelerator row carries the whole node price.
    a3 = {(o.zone): o.price_per_hour for o in cat.for_provider("gcp")
          if o.instance_type == "a3-highgpu-8g" and o.capacity_type == CapacityType.ON_DEMAND}
    acc = [r for r in gcp if r["AcceleratorName"] == "H100" and r["AcceleratorCount"] == "8"]
    assert acc and all(float(r["Price"]) == pytest.approx(a3[r["AvailabilityZone"]]) for r in acc)
    common = _rows(root / "common" / "accelerators.csv")
    assert {"H100", "L4", "MI300X"} <= {r["AcceleratorName"] for r in common}


def _pool(zone: str, itype: str, nodes: int, price: float, provider: str = "aws", region: str = "us-east-1",
          ct: CapacityType = CapacityType.ON_DEMAND) -> CapacityPool:
    return CapacityPool(provider, region, zone, itype, ct, nodes, price_per_hour=price)


def _wl(name: str, count: int, per_node: int | None = 8, models: tuple[str, ...] = ("H100",)):
    from controlplane.model import GPUWorkload
    gpus: dict = {"model": list(models), "count": count}
    if per_node:
        gpus["perNode"] = per_node
    return GPUWorkload.model_validate({"metadata": {"name": name}, "spec": {"gpus": gpus, "capacityType": ["on-demand"]}})


def test_lp_bound_finds_the_known_optimum_under_contention() -> None:
    cat = default_catalog()
    cheap = _pool("us-east-1a", "p5.48xlarge", 2, 10.0)
    dear = _pool("us-east-1b", "p5.48xlarge", 5, 30.0)
    wls = [_wl(f"w{i}", 8) for i in range(3)]
    # Whatever the engine did (here: all on the dear pool), the bound is 2 x 10 + 1 x 30.
    placed = [(w, [dear]) for w in wls]
    r = lp_bound(placed, [cheap, dear], cat)
    assert r.status == "Optimal" and r.lp_bound == pytest.approx(50.0) and r.milp_cost == pytest.approx(50.0)
    assert r.mismatches == 0 and r.classes == 1


def test_lp_bound_counts_whole_nodes_and_respects_provider_cap() -> None:
    cat = default_catalog()
    aws = _pool("us-east-1a", "p5.48xlarge", 10, 10.0)
    gcp = _pool("us-central1-a", "a3-highgpu-8g", 10, 40.0, provider="gcp", region="us-central1")
    wls = [_wl(f"g{i}", 16) for i in range(2)]     # two 2-node gangs
    placed = [(w, [aws]) for w in wls]
    assert lp_bound(placed, [aws, gcp], cat).lp_bound == pytest.approx(40.0)
    # At most half the GPUs on one provider: one gang each side.
    capped = lp_bound(placed, [aws, gcp], cat, provider_cap=0.5)
    assert capped.lp_bound == pytest.approx(2 * 10.0 + 2 * 40.0)


def test_lp_bound_adds_the_engines_pool_when_its_model_disagrees() -> None:
    cat = default_catalog()
    a100 = _pool("us-east-1a", "p4d.24xlarge", 4, 20.0)
    placed = [(_wl("w", 8), [a100])]                # H100 asked for, A100 pool used: a disagreement
    r = lp_bound(placed, [a100], cat)
    assert r.mismatches == 1 and r.lp_bound == pytest.approx(20.0)
