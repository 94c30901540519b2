"""`awan offerings` / `awan providers` through the real adapters against the mock clouds."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import yaml
from typer.testing import CliRunner

from controlplane.cli.main import app

runner = CliRunner()


def _write(tmp_path: Path, cfg: dict) -> str:
    p = tmp_path / "awan.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return str(p)


def test_offerings_h100_json_has_every_provider_with_price_and_capacity(mockclouds, tmp_path: Path) -> None:
    cfg = _write(tmp_path, mockclouds.config_dict())
    r = runner.invoke(app, ["offerings", "--gpu", "H100", "-o", "json", "--config", cfg])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    rows = data["offerings"]
    assert {row["provider"] for row in rows} == {"aws", "gcp", "azure", "coreweave", "oci"}
    assert all(row["gpuModel"] == "H100" for row in rows)
    assert all(row["pricePerHour"] > 0 for row in rows)
    assert any(row["availableNodes"] for row in rows)
    prices = [row["pricePerGpuHour"] for row in rows]
    assert prices == sorted(prices), "cheapest first"


def test_offerings_follow_live_quota(mockclouds, tmp_path: Path) -> None:
    """GCE has no free-capacity API: the bound comes from the region's GPU quota, read live."""
    cfg = _write(tmp_path, mockclouds.config_dict())

    def us_central1_h100() -> int:
        r = runner.invoke(app, ["offerings", "-p", "gcp", "--gpu", "H100", "-o", "json", "--config", cfg])
        assert r.exit_code == 0, r.output
        rows = [x for x in json.loads(r.stdout)["offerings"]
                if x["region"] == "us-central1" and x["capacityType"] == "on-demand"
                and x["instanceType"].startswith("a3-highgpu")]
        assert rows
        return sum(x["availableNodes"] or 0 for x in rows)

    before = us_central1_h100()
    assert before > 0
    import httpx
    httpx.post(mockclouds.urls["gcp"] + "/_mock/quotas",
               json={"region": "us-central1", "metric": "NVIDIA_H100_GPUS", "limit": 0}).raise_for_status()
    assert us_central1_h100() == 0


def test_providers_shows_health_of_each(mockclouds, tmp_path: Path) -> None:
    cfg = _write(tmp_path, mockclouds.config_dict())
    r = runner.invoke(app, ["providers", "-o", "json", "--config", cfg])
    assert r.exit_code == 0, r.output
    rows = {p["provider"]: p for p in json.loads(r.stdout)["providers"]}
    assert set(rows) == {"aws", "gcp", "azure", "coreweave", "oci"}
    for p in rows.values():
        # Healthy mocks: ok, unless a loaded machine made a region answer slower than the 2 s at which the
        # adapters call it degraded (latency is the only thing that differs then; nothing is down).
        assert p["status"] == "ok" or (p["status"] == "degraded" and p["latencyMs"] > 2000 and not p["message"]), p


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_clear_line(output: str) -> str:
    assert "Traceback" not in output
    lines = [ln for ln in output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, output
    return lines[0]


def test_unknown_provider_is_one_clear_line(mockclouds, tmp_path: Path) -> None:
    cfg = _write(tmp_path, mockclouds.config_dict())
    r = runner.invoke(app, ["offerings", "-p", "oracle", "--config", cfg])
    assert r.exit_code != 0
    assert "unknown provider 'oracle'" in _one_clear_line(r.output)


def test_unreachable_endpoint_names_provider_and_endpoint(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    cfg = _write(tmp_path, {"providers": {"azure": {"endpoint": url, "subscription": "s", "max_attempts": 1,
                                                    "credentials": {"token": "t"}}}})
    r = runner.invoke(app, ["offerings", "--config", cfg])
    assert r.exit_code != 0
    line = _one_clear_line(r.output)
    assert "no provider answered" in line
    assert "azure" in r.output and url in r.output


def test_bad_credentials_name_provider_and_endpoint(mockclouds, tmp_path: Path) -> None:
    cfg = mockclouds.config_dict()
    only = {"coreweave": dict(cfg["providers"]["coreweave"], credentials={"token": "wrong"})}
    path = _write(tmp_path, {"providers": only})
    r = runner.invoke(app, ["providers", "--config", path])
    assert r.exit_code != 0
    assert "Traceback" not in r.output
    assert "coreweave" in r.output and mockclouds.urls["coreweave"] in r.output


def test_bad_config_file_is_one_clear_line(tmp_path: Path) -> None:
    path = _write(tmp_path, {"providers": {"aws": {"endpoint": 3}}})
    r = runner.invoke(app, ["offerings", "--config", path])
    assert r.exit_code != 0
    assert "providers.aws.endpoint" in _one_clear_line(r.output)
