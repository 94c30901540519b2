"""SkyPilot as a peer: the worker answers from the catalog we exported (slow: starts SkyPilot, and creates
.bench-venv the first time)."""

from __future__ import annotations

import pytest

from bench.placement.skypilot_peer import SkyWorker, ensure_bench_venv, make_requests
from providers.catalog import CapacityType, default_catalog

pytestmark = pytest.mark.slow


def _cheapest(provider: str, region: str, gpu: str, count: int, ct: CapacityType) -> float:
    cat = default_catalog()
    return min(o.price_per_hour for o in cat.for_provider(provider)
               if o.region == region and o.capacity_type == ct
               and cat.instance_type(provider, o.instance_type).gpu_model == gpu
               and cat.instance_type(provider, o.instance_type).gpus == count)


def test_skypilot_prices_our_catalog_and_refuses_what_it_lacks() -> None:
    cat = default_catalog()
    with SkyWorker(cat, ensure_bench_venv()) as sky:
        ok = sky.ask({"id": "a", "gpu": "H100", "count": 8, "spot": False, "infra": ["aws/us-east-1"]})
        assert ok["ok"], ok
        assert ok["cost_per_hour"] == pytest.approx(_cheapest("aws", "us-east-1", "H100", 8, CapacityType.ON_DEMAND))
        spot = sky.ask({"id": "b", "gpu": "L4", "count": 1, "spot": True, "infra": ["gcp/us-central1"]})
        assert spot["ok"] and spot["cost_per_hour"] == pytest.approx(
            _cheapest("gcp", "us-central1", "L4", 1, CapacityType.SPOT))
        # GB200 on AWS is sold only as reserved capacity blocks: not in SkyPilot's catalog.
        none = sky.ask({"id": "c", "gpu": "GB200", "count": 4, "spot": False, "infra": ["aws/us-east-1"]})
        assert not none["ok"]


def test_requests_are_deterministic_and_stay_on_skypilots_clouds() -> None:
    cat = default_catalog()
    a, b = make_requests(cat, 30), make_requests(cat, 30)
    assert a == b and len(a) == 30
    for r in a:
        assert r.regions is None or all(p in ("aws", "gcp", "azure") for p, _ in r.regions)
        regions = r.manifest()["spec"]["location"]["regions"]
        assert all(not x.startswith("coreweave") for x in regions)
