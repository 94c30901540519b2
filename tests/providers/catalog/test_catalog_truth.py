"""The catalog's truth (issue 17): shapes the clouds sell, how each family is sold, Local Zones left out by
rule, and shipped examples that place or say why not."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controlplane.cli.main import app
from providers.catalog import CapacityType, default_catalog
from providers.catalog.model import PURCHASE_OPTIONS

REPO = Path(__file__).resolve().parents[3]
CAT = default_catalog()


def _offered(provider: str, it: str) -> set[CapacityType]:
    return {o.capacity_type for o in CAT.for_provider(provider) if o.instance_type == it}


@pytest.mark.parametrize("provider, it, gpus, model, memory", [
    ("gcp", "a3-highgpu-2g", 2, "H100", 80),
    ("gcp", "a2-highgpu-1g", 1, "A100", 40),
    ("gcp", "a2-ultragpu-8g", 8, "A100", 80),
    ("azure", "Standard_NC24ads_A100_v4", 1, "A100", 80),
    ("aws", "p4de.24xlarge", 8, "A100", 80),
])
def test_shapes_the_clouds_sell_are_in_the_catalog(provider, it, gpus, model, memory):
    t = CAT.instance_type(provider, it)
    assert (t.gpus, t.gpu_model, t.gpu_memory_gib) == (gpus, model, memory)
    assert CapacityType.ON_DEMAND in _offered(provider, it)


def test_a3_high_is_priced_per_gpu():
    one = {o.zone: o.price_per_hour for o in CAT.for_provider("gcp")
           if o.instance_type == "a3-highgpu-1g" and o.capacity_type == CapacityType.ON_DEMAND}
    two = {o.zone: o.price_per_hour for o in CAT.for_provider("gcp")
           if o.instance_type == "a3-highgpu-2g" and o.capacity_type == CapacityType.ON_DEMAND}
    assert one and one.keys() == two.keys()
    assert all(abs(two[z] - 2 * one[z]) < 1e-3 for z in one)


@pytest.mark.parametrize("provider, it", sorted(PURCHASE_OPTIONS))
def test_families_are_sold_only_as_the_cloud_sells_them(provider, it):
    """GCP sells A3 Ultra and A4 by reservation, flex-start and spot, not on-demand; placement picked one."""
    got = _offered(provider, it)
    assert got and got <= PURCHASE_OPTIONS[(provider, it)]
    assert CapacityType.ON_DEMAND not in got


def test_two_h100_on_demand_get_the_two_gpu_shape():
    """SkyPilot's choice for 2 x H100 on GCP was a3-highgpu-2g; without it placement paid 30% more."""
    from controlplane.model import parse_manifests
    from controlplane.placement import FleetSnapshot, place_one
    from controlplane.policy import PolicySet

    w = parse_manifests("metadata: {name: w}\nspec: {gpus: {model: H100, count: 2}, capacityType: [on-demand],"
                        " location: {regions: ['gcp:us-central1']}}\n")[0]
    d = place_one(w, FleetSnapshot.from_catalog(CAT), PolicySet.default())
    assert d.placed and d.assignments[0].instance_type == "a3-highgpu-2g" and d.surplus_gpus == 0


def test_aws_local_zones_are_left_out_by_rule():
    """Local Zones (us-west-2-lax-1a) sell no P instances; the build keeps only <region><letter> zones."""
    from providers.catalog.build import _aws_zone

    assert _aws_zone("us-west-2", "usw2-lax1-az1") is None and _aws_zone("us-east-1", "use1-az2") == "us-east-1b"
    assert all(re.fullmatch(re.escape(o.region) + "[a-z]", o.zone) for o in CAT.for_provider("aws"))


@pytest.mark.parametrize("example", sorted((REPO / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_each_shipped_example_places_or_says_why_it_stays_pending(example):
    r = CliRunner().invoke(app, ["plan", "-f", str(example), "--policies", str(REPO / "policies"),
                                 "--capacity", "catalog", "-o", "json"])
    assert r.exit_code == 0, r.output
    text = example.read_text()
    for p in json.loads(r.stdout)["placements"]:
        if not p["placed"]:
            m = re.search(r"#.*stays pending.*\((\S+)\)", text)
            assert m, f"{example.name}: {p['workload']} is not placed and its comment does not say why"
            assert m.group(1) == p["unplacedReason"], (m.group(1), p["reasons"][:2])


def test_nvlink_racks_and_efa_devices_come_from_the_catalog() -> None:
    """Issue 14: NVLink-rack and EFA facts are catalog lookups (read by placement, reconcile and infra)."""
    from providers.catalog.fabric import efa_devices, is_nvlink_rack, pool_placement, ultraserver_type

    cat = default_catalog()
    racks = {(it.provider, it.name) for it in cat.instance_types.values() if is_nvlink_rack(it)}
    assert ("aws", "p6e-gb200.36xlarge") in racks and ("coreweave", "gb300-4x") in racks
    assert all(cat.instance_type(*k).gpu_model in ("GB200", "GB300") for k in racks)
    assert {ultraserver_type(cat.instance_type(*k)) for k in racks} == {"u-p6e-gb200x72", ""}
    assert ultraserver_type(cat.instance_type("aws", "p5.48xlarge")) == ""
    assert pool_placement("training", "any", True, 1) == "nvlink"
    assert pool_placement("inference", "any", True, 1) == "none"
    # every AWS EFA instance type the catalog sells has its EFA card count; other clouds have none
    aws_efa = [it.name for it in cat.instance_types.values() if it.provider == "aws" and it.fabric == "efa"]
    assert aws_efa and all(efa_devices(n) > 0 for n in aws_efa)
    assert efa_devices("a3-megagpu-8g") == 0
