"""The Pulumi (Automation API) engine: naming, config and program wiring everywhere; end to end only
where the pulumi CLI is installed (reported as skipped otherwise)."""

from __future__ import annotations

import shutil

import pytest

from infra.engines import pulumi_auto
from infra.engines.base import EngineUnavailable
from infra.engines.local import LocalEngine
from infra.engines.mockruntime import run_program
from infra.engines.select import select_engine
from infra.programs import program_for
from infra.spec import SpecError, StackSpec, desired_stacks, parse_stack_name
from providers.config import parse_config
from tests.infra.fakes import pool


def test_stack_names_round_trip_and_group_per_provider_region():
    pools = [pool("a"), pool("b", zone="us-east-1b"), pool("c", provider="gcp", region="us-central1",
                                                          zone="us-central1-a", instance_type="a3-highgpu-8g")]
    stacks = desired_stacks(pools, existing=["awan-azure-eastus"])
    assert [s.name for s in stacks] == ["awan-aws-us-east-1", "awan-azure-eastus", "awan-gcp-us-central1"]
    assert [len(s.pools) for s in stacks] == [2, 0, 1]          # the emptied stack is kept, so up deletes
    assert parse_stack_name("awan-coreweave-US-EAST-04") == ("coreweave", "US-EAST-04")
    with pytest.raises(SpecError, match="not an Awan stack"):
        parse_stack_name("prod")


def test_stack_spec_json_round_trip_feeds_the_cli_entry_point():
    s = StackSpec("aws", "us-east-1", (pool("a", capacity_type="spot"),), config={"ami": "ami-1"})
    assert StackSpec.from_json(s.to_json()) == s


def test_stack_config_per_provider():
    aws = pulumi_auto.stack_config(StackSpec("aws", "us-west-2"))
    assert aws["aws:region"] == "us-west-2" and StackSpec.from_json(aws["awan:stack"]).region == "us-west-2"
    gcp = pulumi_auto.stack_config(StackSpec("gcp", "europe-west4", config={"project": "p1"}))
    assert gcp["gcp:project"] == "p1" and gcp["gcp:region"] == "europe-west4"
    az = pulumi_auto.stack_config(StackSpec("azure", "eastus"))
    assert az["azure-native:location"] == "eastus"


def test_backend_defaults_to_a_file_url_and_is_configurable(monkeypatch):
    monkeypatch.delenv(pulumi_auto.BACKEND_ENV, raising=False)
    assert pulumi_auto.default_backend().startswith("file://")
    monkeypatch.setenv(pulumi_auto.BACKEND_ENV, "s3://bucket/awan")
    assert pulumi_auto.default_backend() == "s3://bucket/awan"


def test_the_program_the_engine_runs_exports_every_pool():
    s = StackSpec("aws", "us-east-1", (pool("a", nodes=2), pool("b", nodes=1, placement="none")))
    rec = run_program(program_for(s), s.name)
    assert rec.outputs["stack"] == s.name
    assert {k: len(v) for k, v in rec.outputs["pools"].items()} == {"a": 2, "b": 1}


def test_engine_selection(monkeypatch, tmp_path):
    cfg = parse_config({"providers": {"aws": {"endpoint": "http://127.0.0.1:9"}}})
    monkeypatch.setattr(pulumi_auto, "pulumi_cli", lambda: None)
    monkeypatch.setattr("infra.engines.select.pulumi_cli", lambda: None)
    eng = select_engine("auto", config=cfg)
    assert isinstance(eng, LocalEngine) and "Pulumi CLI not found" in eng.banner
    with pytest.raises(EngineUnavailable, match="pulumi CLI not found on PATH; use the local engine"):
        select_engine("pulumi", config=cfg)


@pytest.mark.pulumi_cli
@pytest.mark.skipif(shutil.which("pulumi") is None, reason="needs the pulumi CLI on PATH")
def test_pulumi_engine_preview_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test")
    eng = pulumi_auto.PulumiEngine(backend=(tmp_path / "backend").as_uri())
    s = StackSpec("aws", "us-east-1", (pool("a", nodes=1),))
    cs = eng.preview(s)
    assert cs.counts["create"] >= 8
    assert s.name in eng.list_stacks()
