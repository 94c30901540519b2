"""Per-cloud extras: each cloud's SDK and Pulumi provider are an extra (`awan[aws]`...), `make` installs them
all (dev pulls `all`), and a configured provider whose extra is missing is one line naming the extra."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from providers.config import ConfigError, ProviderConfig
from providers.registry import ADAPTERS, build_provider

REPO = Path(__file__).resolve().parents[2]
SDKS = {"aws": ["boto3", "pulumi-aws"], "gcp": ["google-cloud-compute", "google-cloud-tpu", "pulumi-gcp"],
        "azure": ["azure-mgmt-compute", "pulumi-azure-native"], "coreweave": ["pulumi-kubernetes", "pulumi-coreweave"], "oci": ["oci", "pulumi-oci"]}


def _name(req: str) -> str:
    return req.split(">")[0].split("=")[0].split("[")[0].strip()


def test_each_cloud_is_an_extra_and_dev_installs_all() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = {_name(r) for r in project["dependencies"]}
    extras = project["optional-dependencies"]
    assert set(ADAPTERS) <= set(extras)
    for cloud, pkgs in SDKS.items():
        assert set(pkgs) <= {_name(r) for r in extras[cloud]}, cloud
        assert not set(pkgs) & core, f"{cloud}'s SDK is in the core dependencies"
    assert extras["all"] == [f"awan[{','.join(SDKS)}]"]
    assert any(r.startswith("awan[all") for r in extras["dev"])


def test_a_missing_sdk_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for mod in [m for m in sys.modules if m == "boto3" or m.startswith(("boto3.", "providers.aws"))]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "boto3", None)   # as if `awan[aws]` were not installed
    with pytest.raises(ConfigError) as e:
        build_provider(ProviderConfig(name="aws"))
    assert str(e.value) == ("provider 'aws': its SDK (boto3) is not installed; install it with: "
                            "pip install 'awan[aws]'")
