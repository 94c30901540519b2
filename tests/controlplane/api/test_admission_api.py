"""Fail closed at submit (issue 17, defect 4): an unknown data class, region, geography or a glob matching no
region is a 422 naming the field with the closest valid values, and nothing is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.controlplane.api.conftest import auth

RESIDENCY = (Path(__file__).resolve().parents[3] / "policies" / "10-residency.yaml").read_text()


def _doc(name: str, labels: str = "{}", location: str = "{}") -> str:
    return (f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {name}, labels: {labels}}}\n"
            f"spec: {{gpus: {{model: H100, count: 8}}, location: {location}}}\n")


@pytest.fixture
def residency(client, tokens):
    h = {**auth(tokens["admin"]), "Content-Type": "application/yaml"}
    assert client.put("/v1/policies", content=RESIDENCY, headers=h).status_code == 200


@pytest.mark.parametrize("labels, location, field, hint", [
    ("{data-class: eu-personel}", "{}", "metadata.labels.data-class", "'eu-personal'"),
    ("{}", "{regions: ['aws:us-east-9']}", "spec.location.regions[0]", "'aws:us-east-1'"),
    ("{}", "{geo: [europe]}", "spec.location.geo[0]", "'eu'"),
    ("{}", "{regions: ['gcp:mars-*']}", "spec.location.regions[0]", "matches no region"),
])
def test_unknown_values_are_422_and_nothing_is_stored(client, tokens, residency, labels, location, field, hint):
    body = _doc("fine") + "---\n" + _doc("typo", labels, location)
    r = client.post("/v1/workloads", content=body, headers=auth(tokens["research"]))
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "'typo'" in detail and field in detail and hint in detail, detail
    assert client.get("/v1/workloads", headers=auth(tokens["admin"])).json()["items"] == []


def test_known_values_are_accepted(client, tokens, residency):
    body = _doc("eu-job", "{data-class: eu-personal}", "{regions: ['gcp:europe-*'], geo: [eu]}")
    r = client.post("/v1/workloads", content=body, headers=auth(tokens["research"]))
    assert r.status_code == 201, r.text
