"""One placement record end to end (issue 14): a GB200 training gang placed on AWS provisions with the
UltraServer type the catalog sells its NVLink domain as, by the loop (stored rows -> pools_for) and by
`awan deploy --plan` (plan JSON -> pools_from_plan) alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from controlplane.model import parse_manifests
from controlplane.placement import FleetSnapshot, place
from controlplane.policy import PolicySet
from controlplane.reconcile.desired import pools_from_plan
from controlplane.reconcile.placing import _assignments
from controlplane.reconcile.pools import pools_for
from controlplane.store.models import Workload
from providers.catalog import CapacityType, default_catalog
from providers.model import CapacityPool

GB200 = "p6e-gb200.36xlarge"
MANIFEST = ("metadata: {name: gang, team: t}\n"
            "spec: {kind: training, gpus: {model: GB200, count: 72, perNode: 4}}\n")


def _placed():
    snap = FleetSnapshot(catalog=default_catalog(), taken_at=datetime(2026, 10, 1, tzinfo=UTC), pools=(
        CapacityPool(provider="aws", region="us-east-1", zone="us-east-1a", instance_type=GB200,
                     capacity_type=CapacityType.RESERVED, available_nodes=36, reservation_id="cb-1"),))
    [w] = parse_manifests(MANIFEST)
    result = place([w], snap, PolicySet.default())
    [d] = result.decisions
    assert d.placed and {a.instance_type for a in d.assignments} == {GB200}
    return w, result


def _catalog_ultraserver() -> str:
    ultra = default_catalog().instance_type("aws", GB200).ultraserver
    assert ultra                      # the catalog sells this type's NVLink domain by UltraServer
    return ultra


def test_the_placement_record_carries_the_catalogs_ultraserver_type():
    _, result = _placed()
    assert {a.ultraserver_type for a in result.assignments()} == {_catalog_ultraserver()}
    assert {r["ultraserverType"] for p in result.to_json()["placements"] for r in p["assignments"]} == \
        {_catalog_ultraserver()}


def test_loop_path_stored_rows_to_pools_keep_the_ultraserver_type():
    w, result = _placed()
    row = Workload(name=w.name, team="t", spec={"spec": {"kind": "training"}},
                   assignments=_assignments(result.decisions[0]))
    for i, a in enumerate(row.assignments):
        a.pool = f"gang-{i}"
    pools = pools_for([row])
    assert pools and {(p.ultraserver_type, p.placement) for p in pools} == {(_catalog_ultraserver(), "nvlink")}


def test_deploy_plan_path_keeps_the_ultraserver_type():
    _, result = _placed()
    plan = json.loads(json.dumps(result.to_json()))          # what `awan plan -o json` writes
    pools = pools_from_plan(plan)
    assert pools and {(p.ultraserver_type, p.placement) for p in pools} == {(_catalog_ultraserver(), "nvlink")}


def test_a_plan_without_ultraserver_type_gets_it_from_the_catalog():
    _, result = _placed()
    plan = result.to_json()
    for p in plan["placements"]:
        for r in p["assignments"]:
            del r["ultraserverType"]
    assert {p.ultraserver_type for p in pools_from_plan(plan)} == {_catalog_ultraserver()}


def test_types_without_an_ultraserver_get_none():
    plan = {"placements": [{"workload": "w", "placed": True, "assignments": [{
        "provider": "aws", "region": "us-east-1", "zone": "us-east-1a", "instanceType": "p5.48xlarge",
        "nodes": 2, "gpus": 16, "gpuModel": "H100", "capacityType": "on-demand"}]}]}
    [p] = pools_from_plan(plan)
    assert (p.ultraserver_type, p.placement) == ("", "cluster")
