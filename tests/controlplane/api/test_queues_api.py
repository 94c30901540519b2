"""/v1/queues, the queue gauges on /metrics, and validation of QueuePolicy documents on PUT /v1/policies."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from controlplane.reconcile.admitting import QueueSource, admit_pending
from controlplane.reconcile.policy_source import PolicySource
from controlplane.store.db import Database
from tests.controlplane.api.conftest import auth

EXAMPLE = (Path(__file__).resolve().parents[3] / "policies" / "examples" / "queues.yaml").read_text()


def manifest(name: str, team: str, gpus: int) -> str:
    return (f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {name}, team: {team}}}\n"
            f"spec: {{gpus: {{model: H100, count: {gpus}, perNode: 8}}}}\n")


def test_queues_usage_borrowing_positions_and_metrics(client: TestClient, db: Database,
                                                      tokens: dict[str, str]) -> None:
    r = client.put("/v1/policies", content=EXAMPLE, headers=auth(tokens["admin"]))
    assert r.status_code == 200, r.text
    with db.session() as s:
        from controlplane.auth import create_token

        product = create_token(s, "product", "member")[0]
        sweeps = create_token(s, "sweeps", "member")[0]
    for name, gpus in (("big", 40), ("next", 40), ("last", 16)):   # sweeps: nominal 8, may borrow 64
        assert client.post("/v1/workloads", content=manifest(name, "sweeps", gpus),
                           headers=auth(sweeps)).status_code in (200, 201)
    assert client.post("/v1/workloads", content=manifest("p", "product", 8),
                       headers=auth(product)).status_code in (200, 201)
    cfg = QueueSource(PolicySource(db).document).current()
    res = admit_pending(db, cfg, fenced=lambda: True, actor="test")
    assert sorted(res.admitted) == ["product_p", "sweeps_big", "sweeps_last"]   # "next" would borrow 72

    items = {q["name"]: q for q in client.get("/v1/queues", headers=auth(sweeps)).json()["items"]}
    h100 = {f["flavour"]: f for f in items["sweeps"]["flavours"]}["h100"]
    assert (h100["used"], h100["nominal"], h100["borrowed"]) == (56, 8, 48)
    assert items["sweeps"]["pending"] == 1 and items["sweeps"]["waiting"] is None
    assert items["product"]["cohort"] == "ml"

    mine = client.get("/v1/queues/sweeps", headers=auth(sweeps)).json()
    # Admitted but not placed yet (no loop runs here): they wait for capacity, ahead of the quota line.
    assert [(w["name"], w["position"], w["reason"]) for w in mine["waiting"]] == [
        ("big", None, "capacity"), ("last", None, "capacity"), ("next", 1, "quota")]
    assert mine["waiting"][2]["estimatedStart"]   # 56 GPUs admitted in the last hour: a rate to go by
    other = client.get("/v1/queues/sweeps", headers=auth(product)).json()
    assert other["pending"] == 1 and other["waiting"] == []    # another team's names are not shown
    assert client.get("/v1/queues/nope", headers=auth(product)).status_code == 404
    assert client.get("/v1/queues").status_code == 401

    metrics = client.get("/metrics").text
    assert 'awan_queue_gpus_borrowed{flavour="h100",queue="sweeps"} 48.0' in metrics
    assert 'awan_queue_gpus_used{flavour="h100",queue="product"} 8.0' in metrics
    assert 'awan_queue_pending_workloads{queue="sweeps"} 1.0' in metrics


def test_a_bad_queue_policy_is_refused_naming_the_field(client: TestClient, tokens: dict[str, str]) -> None:
    bad = EXAMPLE.replace("nominal: 1100, borrowingLimit: 256", "nominal: -4")
    r = client.put("/v1/policies", content=bad, headers=auth(tokens["admin"]))
    assert r.status_code == 422
    assert "spec.queues[0].quotas[0].nominal" in r.json()["detail"]
    assert client.get("/v1/queues", headers=auth(tokens["admin"])).json()["items"] == []   # nothing stored


def test_the_list_carries_the_first_waiting_workloads_when_asked(client: TestClient, db: Database,
                                                                 tokens: dict[str, str]) -> None:
    assert client.put("/v1/policies", content=EXAMPLE, headers=auth(tokens["admin"])).status_code == 200
    with db.session() as s:
        from controlplane.auth import create_token

        sweeps = create_token(s, "sweeps", "member")[0]
    for name in ("a", "b", "c"):
        assert client.post("/v1/workloads", content=manifest(name, "sweeps", 64),
                           headers=auth(sweeps)).status_code in (200, 201)
    admit_pending(db, QueueSource(PolicySource(db).document).current(), fenced=lambda: True, actor="test")
    items = {q["name"]: q for q in client.get("/v1/queues?waiting=2", headers=auth(sweeps)).json()["items"]}
    assert [(w["name"], w["reason"]) for w in items["sweeps"]["waiting"]] == [("a", "capacity"), ("b", "quota")]
    assert items["research"]["waiting"] == []          # nothing of sweeps' waits there
    other = client.get("/v1/queues?waiting=5", headers=auth(tokens["admin"])).json()["items"]
    assert [w["name"] for w in {q["name"]: q for q in other}["sweeps"]["waiting"]] == ["a", "b", "c"]
    r = client.get("/v1/queues?waiting=-1", headers=auth(sweeps))
    assert r.status_code == 422 and "waiting" in r.text
