from __future__ import annotations

from pathlib import Path

import pytest

from providers.config import ConfigError, load_config, parse_config
from providers.registry import build_providers


def test_parse_fills_names_and_hides_secrets() -> None:
    cfg = parse_config({"providers": {"aws": {"endpoint": "http://127.0.0.1:1",
                                              "credentials": {"secret_access_key": "s3cr3t"}}}})
    p = cfg.providers["aws"]
    assert p.name == "aws" and p.secret("secret_access_key") == "s3cr3t"
    assert "s3cr3t" not in repr(cfg) and "s3cr3t" not in cfg.model_dump_json()


@pytest.mark.parametrize("data, field", [
    ({"providers": {"oracle": {}}}, "providers.oracle.name"),
    ({"providers": {"aws": {"endpoint": 3}}}, "providers.aws.endpoint"),
    ({"providers": {"aws": {"bogus": 1}}}, "providers.aws.bogus"),
    ({"providers": []}, "providers"),
])
def test_bad_configuration_names_the_field(data: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        parse_config(data, "awan.yaml")


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_unknown_provider_requested() -> None:
    cfg = parse_config({"providers": {}})
    with pytest.raises(ConfigError, match="unknown provider 'oracle'"):
        build_providers(cfg, ["oracle"])
    with pytest.raises(ConfigError, match="'aws' is not configured"):
        build_providers(cfg, ["aws"])
