"""QueuePolicy documents: parsed with pydantic, every error names the document and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.policy.load import load_policies
from controlplane.queues import QueueError, parse_queue_text

EXAMPLE = Path(__file__).resolve().parents[3] / "policies" / "examples" / "queues.yaml"

HEAD = "apiVersion: awan.dev/v1alpha1\nkind: QueuePolicy\nmetadata: {name: q}\nspec:\n"


def test_the_shipped_example_parses() -> None:
    cfg = parse_queue_text(EXAMPLE.read_text(), "queues.yaml")
    assert set(cfg.queues) == {"research", "product", "sweeps"}
    assert {q.cohort for q in cfg.queues.values()} == {"ml"}
    assert cfg.queues["research"].weight == 2
    assert cfg.queues["research"].quotas["h200"].lending_limit == 32
    assert cfg.queues["sweeps"].reclaim == "Never"
    assert cfg.protection.running_longer_than_s == 24 * 3600
    assert cfg.grace_period_s == 300
    assert cfg.queue_for_team("product") == "product"
    assert cfg.queue_for_team("nobody") is None


def test_placement_loader_skips_queue_documents_and_vice_versa() -> None:
    both = EXAMPLE.read_text() + "\n---\n" + (Path(EXAMPLE).parents[1] / "00-defaults.yaml").read_text()
    cfg = parse_queue_text(both, "both")
    assert len(cfg.queues) == 3
    ps = load_policies([EXAMPLE, Path(EXAMPLE).parents[1] / "00-defaults.yaml"])
    assert ps.max_price_per_gpu_hour == 20.0


def test_no_queue_documents_means_admission_is_open() -> None:
    assert not parse_queue_text("", "empty").enabled


@pytest.mark.parametrize(("body", "expect"), [
    ("  flavours: [{name: h, gpuModel: Z999}]\n", "spec.flavours[0].gpuModel: unknown GPU model 'Z999'"),
    ("  flavours: [{name: h, gpuModel: H100, provider: ibm}]\n", "spec.flavours[0].provider: unknown provider"),
    ("  flavours: [{name: H, gpuModel: H100}]\n", "spec.flavours[0].name: must be a DNS-1123 label"),
    ("  queues: [{name: a, quotas: [{flavour: h, nominal: -1}]}]\n", "spec.queues[0].quotas[0].nominal"),
    ("  queues: [{name: a, weight: 0}]\n", "spec.queues[0].weight"),
    ("  queues: [{name: a, colour: red}]\n", "spec.queues[0].colour: unknown field"),
    ("  queues: [{name: a, quotas: [{flavour: h, nominal: 1}]}]\n", "spec.queues[0].quotas[0].flavour: unknown flavour 'h'"),
    ("  flavours: [{name: h, gpuModel: H100}]\n  queues: [{name: a, quotas: [{flavour: h, nominal: 4, "
     "lendingLimit: 8}]}]\n", "spec.queues[0].quotas[0].lendingLimit: 8 is more than nominal 4"),
    ("  queues: [{name: a, teams: [x]}, {name: b, teams: [x]}]\n", "spec.queues[1].teams: team 'x'"),
    ("  queues: [{name: a}, {name: a}]\n", "spec.queues[1].name: queue 'a' is defined twice"),
    ("  preemption: {gracePeriodSeconds: -5}\n", "spec.preemption.gracePeriodSeconds"),
    ("  queues: [{name: a, preemption: {withinQueue: Always}}]\n", "spec.queues[0].preemption.withinQueue"),
])
def test_errors_name_the_field(body: str, expect: str) -> None:
    with pytest.raises(QueueError) as e:
        parse_queue_text(HEAD + body, "team.yaml")
    assert "team.yaml" in str(e.value)
    assert expect in str(e.value)


def test_bad_yaml_is_a_queue_error() -> None:
    with pytest.raises(QueueError, match="not valid YAML at line"):
        parse_queue_text("kind: QueuePolicy\n  x: [", "broken.yaml")
