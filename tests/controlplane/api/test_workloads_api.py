"""The workload API on SQLite and PostgreSQL: submit YAML/JSON, all-or-nothing validation, get/list,
delete as a request, placement and events."""

from __future__ import annotations

import json

import pytest

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


def _doc(name: str, team: str | None = None, **spec: object) -> str:
    meta = {"name": name, **({"team": team} if team else {})}
    return json.dumps({"apiVersion": "awan.dev/v1alpha1", "kind": "GPUWorkload", "metadata": meta,
                       "spec": {"kind": "training", "gpus": {"model": "H100", "count": 8}, **spec}})


@pytest.mark.parametrize("name", ["nl\n", "ok\n", "a\r", "x\t"])
def test_a_name_with_a_trailing_newline_is_refused(client, tokens, name):
    """Issue 13, item 1: '^...$' also matched before a final newline, so 'nl\\n' was accepted beside 'nl'."""
    h = {**auth(tokens["research"]), "Content-Type": "application/json"}
    r = client.post("/v1/workloads", content=_doc(name), headers=h)
    assert r.status_code == 422 and "metadata.name" in r.json()["detail"], r.text
    assert client.get("/v1/workloads", headers=auth(tokens["admin"])).json()["items"] == []


@pytest.mark.parametrize("meta", [{"team": "research\n"}, {"labels": {"bad key\n": "v"}}, {"labels": {"k": "a\nb"}}])
def test_team_and_labels_are_checked_whole(client, tokens, meta):
    h = {**auth(tokens["admin"]), "Content-Type": "application/json"}
    doc = json.loads(_doc("w"))
    doc["metadata"].update(meta)
    r = client.post("/v1/workloads", content=json.dumps(doc), headers=h)
    assert r.status_code == 422 and "metadata." in r.json()["detail"], r.text


@pytest.mark.parametrize("spec, field", [
    ({"gpus": {"model": "H100", "count": 10**19}}, "spec.gpus.count"),
    ({"gpus": {"model": "H100", "count": 10**30}}, "spec.gpus.count"),
    ({"gpus": {"model": "H100", "count": 2**62}, "replicas": 4}, "spec.gpus.count"),
    ({"gpus": {"model": "H100", "count": 2**30}, "replicas": 4}, "gpus.count x replicas"),
    ({"gpus": {"model": "H100", "count": 8, "perNode": 2**40}}, "spec.gpus.perNode"),
    ({"priority": 10**19}, "spec.priority"),
    ({"priority": -(10**19)}, "spec.priority"),
    ({"replicas": 2**31}, "spec.replicas"),
    ({"topology": {"domain": "nvlink", "domainSize": 2**33}}, "spec.topology.domainSize"),
])
def test_integers_out_of_range_are_422_naming_the_field(client, tokens, spec, field):
    """Issue 13, item 6: these were 500s (OverflowError into SQLite); PostgreSQL INTEGER is 32-bit."""
    h = {**auth(tokens["research"]), "Content-Type": "application/json"}
    r = client.post("/v1/workloads", content=_doc("big", **spec), headers=h)
    assert r.status_code == 422 and field in r.json()["detail"], r.text


def test_names_are_per_team_and_another_teams_name_is_not_revealed(client, tokens):
    """Issue 13 (low): submitting a name another team holds answered 409, revealing it (and squatting)."""
    r1 = client.post("/v1/workloads", content=_doc("train"), headers=auth(tokens["research"]))
    r2 = client.post("/v1/workloads", content=_doc("train"), headers=auth(tokens["infer"]))
    assert r1.status_code == 201 and r2.status_code == 201, r2.text
    assert client.get("/v1/workloads/train", headers=auth(tokens["infer"])).json()["team"] == "inference"
    assert client.get("/v1/workloads/train", headers=auth(tokens["research"])).json()["team"] == "research"
    both = client.get("/v1/workloads/train", headers=auth(tokens["admin"]))
    assert both.status_code == 409 and "team" in both.json()["detail"]
    got = client.get("/v1/workloads/train?team=inference", headers=auth(tokens["admin"]))
    assert got.json()["team"] == "inference"
    # a member cannot reach another team's workload by naming the team
    assert client.get("/v1/workloads/train?team=research", headers=auth(tokens["infer"])).json()["team"] == "inference"
    assert client.delete("/v1/workloads/train", headers=auth(tokens["infer"])).status_code == 202
    assert client.get("/v1/workloads/train", headers=auth(tokens["research"])).json()["state"] == "Pending"


def test_stacks_show_a_member_only_its_own_pools(client, tokens, db):
    """Issue 13 (low): /v1/stacks showed every team's pools and the stack's error text to any viewer."""
    from controlplane.store.models import Stack

    pools = [{"pool": "mine-1a2b3c-0", "team": "research"}, {"pool": "theirs-9f8e7d-0", "team": "inference"}]
    with db.session() as s:
        s.add(Stack(name="awan-gcp-us-central1", spec={"pools": pools}, status="failed",
                    message="pool 'theirs-9f8e7d-0': boom"))
        s.add(Stack(name="awan-aws-us-east-1", spec={"pools": pools[1:]}, status="ok"))
    mine = client.get("/v1/stacks", headers=auth(tokens["viewer"])).json()["items"]
    assert [(x["name"], x["pools"], x["message"]) for x in mine] == [("awan-gcp-us-central1", 1, "")]
    every = client.get("/v1/stacks", headers=auth(tokens["admin"])).json()["items"]
    assert len(every) == 2 and any("theirs" in x["message"] for x in every)


def test_policy_errors_name_the_body_not_a_server_file(client, tokens):
    """Issue 13 (low): the error carried the server's temporary file path of the uploaded body."""
    bad = "apiVersion: awan.dev/v1alpha1\nkind: PlacementPolicy\nmetadata: {name: p}\nspec: {bogus: 1}\n"
    r = client.put("/v1/policies", content=bad, headers={**auth(tokens["admin"]), "Content-Type": "application/yaml"})
    assert r.status_code == 422 and r.json()["detail"].startswith("body: spec.bogus"), r.text
    assert "/tmp" not in r.text and "awan-policy" not in r.text


def test_a_costly_policy_is_refused_at_once_and_health_answers_meanwhile(client, tokens):
    """Issue 13, item 5: a 374-character rule with '. all' was accepted and stalled PUT and /healthz 56 s."""
    t20 = "[" + ",".join(str(i) for i in range(20)) + "]"
    expr = " && ".join([f"{t20}. all(a, {t20}. all(b, {t20}. all(c, {t20}. all(d, {t20}. all(e, a+b+c+d+e >= 0)))))"])
    import yaml

    body = yaml.safe_dump({"apiVersion": "awan.dev/v1alpha1", "kind": "PlacementPolicy", "metadata": {"name": "p"},
                           "spec": {"rules": [{"name": "bomb", "expr": expr}]}})
    r = client.put("/v1/policies", content=body, headers={**auth(tokens["admin"]), "Content-Type": "application/yaml"})
    assert r.status_code == 422 and "over the limit" in r.json()["detail"], r.text
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("path, ok", [
    ("/v1/workloads?offset=9223372036854775807", 200), ("/v1/workloads?offset=9223372036854775808", 422),
    ("/v1/workloads?limit=99999999999999999999", 422), ("/v1/events?after=2147483647", 200),
    ("/v1/events?after=9223372036854775807", 422),
    ("/v1/events?after=99999999999999999999", 422), ("/v1/events?limit=-1", 422),
])
def test_query_integers_are_bounded_on_both_stores(client, tokens, path, ok):
    """Issue 13, item 6: query parameters too stay within what the store takes (no 500)."""
    assert client.get(path, headers=auth(tokens["admin"])).status_code == ok


_TEMPLATED = ("metadata: {name: run-a}\nspec:\n  gpus: {model: H100, count: 8, perNode: 8}\n"
              "  template: {image: 'ghcr.io/a/b:1'}\n")


@pytest.mark.parametrize("change, field", [
    ("  template: {command: [x]}\n", "spec.template.image"),
    ("  template: {image: a, env: [{name: '0bad', value: x}]}\n", "spec.template.env[0].name"),
    ("  template: {image: a}\n  run: {activeDeadlineSeconds: -1}\n", "spec.run.activeDeadlineSeconds"),
    ("  template: {image: a, ports: [{containerPort: 65536}]}\n", "spec.template.ports[0].containerPort"),
])
def test_bad_templates_are_422_naming_the_field_and_nothing_is_stored(client, tokens, change, field):
    text = _TEMPLATED.replace("  template: {image: 'ghcr.io/a/b:1'}\n", change)
    r = client.post("/v1/workloads", content=text, headers=auth(tokens["research"]))
    assert r.status_code == 422 and field in r.json()["detail"], r.text
    assert client.get("/v1/workloads", headers=auth(tokens["research"])).json()["items"] == []


def test_a_manifest_without_template_is_said_to_be_a_capacity_reservation(client, tokens):
    r = client.post("/v1/workloads", content=manifest("hold-a") + "---\n" + _TEMPLATED,
                    headers=auth(tokens["research"]))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["capacityOnly"] == ["hold-a"] and "capacity reservation" in body["notes"][0]
    by_name = {w["name"]: w for w in body["items"]}
    assert by_name["hold-a"]["capacityOnly"] and not by_name["run-a"]["capacityOnly"]
    assert by_name["run-a"]["restarts"] == 0 and by_name["run-a"]["spec"]["spec"]["template"]["image"] == "ghcr.io/a/b:1"
