"""Scenario tests: each directory holds workloads.yaml, policies/*.yaml, expected.yaml and optionally
fleet.yaml (explicit pools and quotas; otherwise capacity is seeded from the catalog)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from controlplane.model import parse_manifests
from controlplane.placement import FleetSnapshot, place
from controlplane.policy import load_policies
from providers.catalog import CapacityType, default_catalog
from providers.model import CapacityPool, Quota

HERE = Path(__file__).parent
SCENARIOS = sorted(p.name for p in HERE.iterdir() if (p / "expected.yaml").exists())
AT = datetime(2026, 10, 1, tzinfo=UTC)


def _snapshot(d: Path) -> FleetSnapshot:
    if not (d / "fleet.yaml").exists():
        return FleetSnapshot.from_catalog(default_catalog(), taken_at=AT)
    f = yaml.safe_load((d / "fleet.yaml").read_text())
    pools = tuple(CapacityPool(provider=p["provider"], region=p["region"], zone=p["zone"],
                               instance_type=p["instanceType"], capacity_type=CapacityType(p["capacityType"]),
                               available_nodes=p["nodes"], reservation_id=p.get("reservation", ""))
                  for p in f.get("pools", []))
    quotas = tuple(Quota(q["provider"], q["region"], q["name"], q["unit"], q["limit"], q.get("used", 0))
                   for q in f.get("quotas", []))
    return FleetSnapshot(catalog=default_catalog(), pools=pools, quotas=quotas, taken_at=AT)


def _check(name: str, got: dict, want: dict) -> None:
    where = f"{name}: "
    rows = got["assignments"]
    for key, val in want.items():
        if key == "placed":
            assert got["placed"] is val, where + str(got["reasons"])
        elif key == "provider":
            assert {a["provider"] for a in rows} == {val}, where + str(rows)
        elif key == "providers":
            assert sorted({a["provider"] for a in rows}) == sorted(val), where + str(rows)
        elif key == "geo":
            cat = default_catalog()
            assert {cat.region(a["provider"], a["region"]).geo for a in rows} == {val}, where + str(rows)
        elif key == "capacityType":
            assert {a["capacityType"] for a in rows} == {val}, where + str(rows)
        elif key == "commitment":
            assert {a["commitment"] for a in rows} == {val}, where + str(rows)
        elif key == "nodes":
            assert got["nodes"] == val, where + str(rows)
        elif key == "pools":
            assert len(rows) == val, where + str(rows)
        elif key == "unplacedReason":
            assert got.get("unplacedReason") == val, where + str(got["reasons"])
        elif key == "reasonContains":
            assert any(val in r for r in got["reasons"]), where + str(got["reasons"])
        elif key == "rejection":
            for region, text in val.items():
                assert text in got["rejections"].get(region, ""), where + str(got["rejections"].get(region))
        else:
            raise AssertionError(f"{name}: unknown expectation {key!r}")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(scenario: str) -> None:
    d = HERE / scenario
    workloads = parse_manifests((d / "workloads.yaml").read_text(), str(d / "workloads.yaml"))
    result = place(workloads, _snapshot(d), load_policies(d / "policies"))
    expected = yaml.safe_load((d / "expected.yaml").read_text())
    out = {p["workload"]: p for p in result.to_json()["placements"]}
    for name, want in expected.get("placements", {}).items():
        _check(name, out[name], want)
    summary = result.summary()
    for name, want in expected.get("commitments", {}).items():
        assert summary["commitments"][name]["used"] == want["used"], summary["commitments"]
    if "maxProviderShare" in expected:
        total = summary["gpusPlaced"]
        assert total > 0
        assert max(summary["gpusByProvider"].values()) / total <= expected["maxProviderShare"] + 1e-9
    if "placedCount" in expected:
        assert summary["placed"] == expected["placedCount"]
