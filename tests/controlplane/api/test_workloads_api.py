"""The workload API on SQLite and PostgreSQL: submit YAML/JSON, all-or-nothing validation, get/list,
delete as a request, placement and events."""

from __future__ import annotations

import json

from controlplane.store.migrate import head
from tests.controlplane.api.conftest import auth
from tests.controlplane.reconcile.fakes import manifest


def test_submit_yaml_then_get_and_list(client, tokens):
    r = client.post("/v1/workloads", content=manifest("llm-a"), headers=auth(tokens["research"]))
    assert r.status_code == 201, r.text
    assert r.json()["created"] == ["llm-a"]
    got = client.get("/v1/workloads/llm-a", headers=auth(tokens["research"])).json()
    assert (got["state"], got["team"], got["gpus"]) == ("Pending", "research", 16)
    names = [w["name"] for w in client.get("/v1/workloads", headers=auth(tokens["research"])).json()["items"]]
    assert names == ["llm-a"]


def test_submit_json_and_resubmit_is_idempotent(client, tokens):
    body = {"apiVersion": "awan.dev/v1alpha1", "kind": "GPUWorkload", "metadata": {"name": "serve-b"},
            "spec": {"kind": "inference", "gpus": {"model": "H100", "count": 8}}}
    h = {**auth(tokens["infer"]), "Content-Type": "application/json"}
    first = client.post("/v1/workloads", content=json.dumps(body), headers=h)
    assert first.status_code == 201 and first.json()["items"][0]["team"] == "inference"  # token's team
    again = client.post("/v1/workloads", content=json.dumps(body), headers=h)
    assert again.json()["created"] == [] and again.json()["unchanged"] == ["serve-b"]
    body["spec"]["gpus"]["count"] = 16
    clash = client.post("/v1/workloads", content=json.dumps(body), headers=h)
    assert clash.status_code == 409 and "metadata.name" in clash.json()["detail"]


def test_invalid_manifest_is_422_naming_the_field_and_nothing_is_stored(client, tokens):
    bad = manifest("ok-one") + "---\n" + manifest("bad-two").replace("count: 16", "count: -4")
    r = client.post("/v1/workloads", content=bad, headers=auth(tokens["research"]))
    assert r.status_code == 422
    assert "doc 2" in r.json()["detail"] and "spec.gpus.count" in r.json()["detail"]
    assert client.get("/v1/workloads", headers=auth(tokens["admin"])).json()["items"] == []
    unknown = manifest("x").replace("kind: training", "kind: training, colour: blue")
    r = client.post("/v1/workloads", content=unknown, headers=auth(tokens["research"]))
    assert r.status_code == 422 and "spec.colour" in r.json()["detail"]


def test_delete_marks_deleting_and_is_audited(client, tokens):
    client.post("/v1/workloads", content=manifest("gone-c"), headers=auth(tokens["research"]))
    r = client.delete("/v1/workloads/gone-c", headers=auth(tokens["research"]))
    assert r.status_code == 202 and r.json()["state"] == "Deleting"
    evs = client.get("/v1/workloads/gone-c/events", headers=auth(tokens["research"])).json()["items"]
    assert [e["action"] for e in evs] == ["submitted", "delete-requested"]
    assert all(e["actor"].startswith("token:") for e in evs)
    assert client.delete("/v1/workloads/nope", headers=auth(tokens["research"])).status_code == 404


def test_placement_endpoint_before_placement(client, tokens):
    client.post("/v1/workloads", content=manifest("p-d"), headers=auth(tokens["research"]))
    r = client.get("/v1/workloads/p-d/placement", headers=auth(tokens["research"]))
    assert r.status_code == 200 and r.json() == {"name": "p-d", "state": "Pending", "placement": None,
                                                  "explanation": None}


def test_health_ready_metrics_and_dashboard(client):
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert ready["status"] == "ok" and ready["checks"]["schema"] == head()
    m = client.get("/metrics").text
    assert "awan_placements" in m and "awan_provisioning_latency_seconds_bucket" in m
    page = client.get("/dashboard")
    assert page.status_code == 200 and "gpu-chart" in page.text
    assert client.get("/dashboard/static/dashboard.js").status_code == 200


def test_audit_stream_filtered_by_team(client, tokens):
    client.post("/v1/workloads", content=manifest("r-e"), headers=auth(tokens["research"]))
    client.post("/v1/workloads", content=manifest("i-f", team="inference"), headers=auth(tokens["infer"]))
    mine = client.get("/v1/events", headers=auth(tokens["research"])).json()["items"]
    assert {e["subject"] for e in mine} == {"r-e"}
    assert client.get("/v1/events?team=inference", headers=auth(tokens["research"])).status_code == 403
    everything = client.get("/v1/events", headers=auth(tokens["admin"])).json()["items"]
    assert {e["subject"] for e in everything} == {"r-e", "i-f"}
