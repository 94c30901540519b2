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


def test_a_yaml_error_names_the_position_but_never_quotes_the_file(tmp_path: Path) -> None:
    """Issue 13 (low): PyYAML's message quotes the lines around the error, here a credential."""
    bad = tmp_path / "awan.yaml"
    bad.write_text("providers:\n  aws: {credentials: {secret_access_key: wJalrXUtnFEMI-K7MDENG}\n  gcp: [\n")
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    msg = str(e.value)
    assert "not valid YAML at line" in msg and "wJalrXUtnFEMI" not in msg and "\n" not in msg


@pytest.mark.parametrize("body", ["x", 3, ["a"]])
def test_a_provider_that_is_not_a_mapping_is_a_one_line_error(body: object) -> None:
    """Issue 13 (low): `providers: {aws: "x"}` raised a bare ValueError (a traceback in some commands)."""
    with pytest.raises(ConfigError, match=r"awan\.yaml: providers\.aws: expected a mapping of settings"):
        parse_config({"providers": {"aws": body}}, "awan.yaml")


def test_opening_an_environment_registers_its_credentials_for_scrubbing(tmp_path: Path) -> None:
    """Issue 13 (low): `awan serve --config` never registered the configured credentials (only demo did)."""
    from controlplane.environment import register_secrets
    from controlplane.logs import scrub

    secret = "only-in-this-config-7f3a9c"
    assert secret in scrub(f"error: {secret}")
    register_secrets(parse_config({"providers": {"coreweave": {"credentials": {"token": secret}}}}))
    assert secret not in scrub(f"error: {secret}")


def test_clusters_per_provider_and_region_with_a_region_template_and_the_coreweave_default():
    cfg = parse_config({
        "providers": {"coreweave": {"endpoint": "http://cks", "namespace": "jobs", "credentials": {"token": "t"}}},
        "clusters": [{"name": "eks-east", "provider": "aws", "regions": ["us-east-*"], "endpoint": "https://a"},
                     {"name": "gke", "provider": "gcp", "endpoint": "http://g/_k8s/{region}"}]})
    assert cfg.cluster_for("aws", "us-east-2").name == "eks-east"
    assert cfg.cluster_for("aws", "eu-west-1") is None                       # no entry serves it
    g = cfg.cluster_for("gcp", "us-central1")
    assert (g.name, g.endpoint) == ("gke-us-central1", "http://g/_k8s/us-central1")
    cw = cfg.cluster_for("coreweave", "US-EAST-04")
    assert (cw.name, cw.endpoint, cw.namespace, cw.secret("token")) == ("coreweave", "http://cks", "jobs", "t")


@pytest.mark.parametrize("clusters, needle", [
    ([{"name": "a", "provider": "aws"}, {"name": "a", "provider": "gcp"}], "name 'a' is used twice"),
    ([{"name": "a", "provider": "oracle"}], "clusters.0.provider"),
    ([{"name": "a", "provider": "aws", "colour": "blue"}], "clusters.0.colour"),
])
def test_bad_cluster_entries_name_the_field(clusters, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_config({"clusters": clusters}, "awan.yaml")
