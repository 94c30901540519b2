"""OCI in `awan offerings` and `awan plan` (catalog capacity and live capacity through the adapter and the
OCI mock): the fifth provider answers like the others."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from controlplane.cli.main import app

runner = CliRunner()
POLICIES = Path(__file__).resolve().parents[3] / "policies"


def _manifest(tmp_path: Path, name: str, model: str, gpus: int, per_node: int, kind: str = "training") -> str:
    p = tmp_path / f"{name}.yaml"
    p.write_text(f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {name}, team: research}}\n"
                 f"spec:\n  kind: {kind}\n  gpus: {{model: [{model}], count: {gpus}, perNode: {per_node}}}\n"
                 f"  capacityType: [on-demand]\n  location: {{regions: ['oci:*']}}\n")
    return str(p)


def _config(tmp_path: Path, mock_oci) -> str:
    p = tmp_path / "awan.yaml"
    p.write_text(yaml.safe_dump(mock_oci.config_dict()))
    return str(p)


def test_offerings_lists_oci_shapes_with_list_prices_and_live_free_hosts(mock_oci, tmp_path: Path) -> None:
    mock_oci.backend("oci").ledger.set_free(5, zone="US-CHICAGO-AD-1", instance_type="BM.GPU.B200.8")
    r = runner.invoke(app, ["offerings", "-p", "oci", "-o", "json", "--config", _config(tmp_path, mock_oci)])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["offerings"]
    assert {x["instanceType"] for x in rows} == {"BM.GPU.H100.8", "BM.GPU.H200.8", "BM.GPU.B200.8", "BM.GPU.GB200.4"}
    b200 = [x for x in rows if x["zone"] == "US-CHICAGO-AD-1" and x["instanceType"] == "BM.GPU.B200.8"
            and x["capacityType"] == "on-demand"]
    assert [(x["pricePerGpuHour"], x["availableNodes"]) for x in b200] == [(14.0, 5)]


def test_plan_from_the_catalog_places_a_gb200_rack_on_oci(tmp_path: Path) -> None:
    f = _manifest(tmp_path, "rack-oci", "GB200", 72, 4)
    r = runner.invoke(app, ["plan", "-f", f, "--policies", str(POLICIES), "--capacity", "catalog", "-o", "json"])
    assert r.exit_code == 0, r.output
    (p,) = json.loads(r.stdout)["placements"]
    assert p["placed"] and p["provider"] == "oci" and p["instanceType"] == "BM.GPU.GB200.4"
    assert p["gpus"] == 72 and p["region"] in ("us-chicago-1", "us-phoenix-1")


def test_plan_live_follows_the_mock_capacity(mock_oci, tmp_path: Path) -> None:
    cfg = _config(tmp_path, mock_oci)
    f = _manifest(tmp_path, "h200-oci", "H200", 16, 8)
    for zone in ("US-ASHBURN-AD-1", "EU-FRANKFURT-AD-1"):
        mock_oci.backend("oci").ledger.set_free(0, zone=zone, instance_type="BM.GPU.H200.8")
    r = runner.invoke(app, ["plan", "-f", f, "--policies", str(POLICIES), "-o", "json", "--config", cfg])
    assert r.exit_code == 0, r.output
    (p,) = json.loads(r.stdout)["placements"]
    assert p["placed"] and (p["provider"], p["zone"]) == ("oci", "US-CHICAGO-AD-1")
    mock_oci.backend("oci").ledger.set_free(0, instance_type="BM.GPU.H200.8")
    r = runner.invoke(app, ["plan", "-f", f, "--policies", str(POLICIES), "-o", "json", "--config", cfg])
    assert r.exit_code == 0, r.output
    (p,) = json.loads(r.stdout)["placements"]
    assert not p["placed"]
