"""Tokens: 401 without one, another team's workload is 404, viewers cannot write, admin-only routes."""

from __future__ import annotations

from sqlalchemy import select

from controlplane.auth import create_token, verify_token
from controlplane.store.models import Token
from tests.controlplane.api.conftest import auth
from tests.controlplane.reconcile.fakes import manifest


def test_no_token_or_bad_token_is_401(client):
    assert client.get("/v1/workloads").status_code == 401
    assert client.get("/v1/workloads", headers=auth("awan_000000000000_" + "x" * 32)).status_code == 401
    assert client.post("/v1/workloads", content=manifest("a")).status_code == 401


def test_other_team_gets_404_and_cannot_delete(client, tokens):
    assert client.post("/v1/workloads", content=manifest("secret-job"), headers=auth(tokens["research"])).status_code == 201
    other = auth(tokens["infer"])
    assert client.get("/v1/workloads/secret-job", headers=other).status_code == 404
    assert client.get("/v1/workloads/secret-job/placement", headers=other).status_code == 404
    assert client.delete("/v1/workloads/secret-job", headers=other).status_code == 404
    assert client.get("/v1/workloads", headers=other).json()["items"] == []
    assert client.get("/v1/workloads/secret-job", headers=auth(tokens["research"])).json()["state"] == "Pending"


def test_member_cannot_submit_for_another_team(client, tokens):
    r = client.post("/v1/workloads", content=manifest("x1", team="inference"), headers=auth(tokens["research"]))
    assert r.status_code == 403 and "metadata.team" in r.json()["detail"]


def test_viewer_reads_but_cannot_write(client, tokens):
    client.post("/v1/workloads", content=manifest("v-job"), headers=auth(tokens["research"]))
    v = auth(tokens["viewer"])
    assert client.get("/v1/workloads/v-job", headers=v).status_code == 200
    assert client.post("/v1/workloads", content=manifest("v2"), headers=v).status_code == 403
    assert client.delete("/v1/workloads/v-job", headers=v).status_code == 403


def test_admin_only_routes(client, tokens):
    for path in ("/v1/providers", "/v1/policies"):
        assert client.get(path, headers=auth(tokens["research"])).status_code == 403
        assert client.get(path, headers=auth(tokens["admin"])).status_code == 200
    assert client.put("/v1/policies", content="x: 1", headers=auth(tokens["research"])).status_code == 403


def test_tokens_are_stored_hashed_and_salted(db):
    with db.session() as s:
        t1, p = create_token(s, "team-a", "member")
        t2, _ = create_token(s, "team-a", "member")
    with db.session() as s:
        rows = s.scalars(select(Token)).all()
        for r in rows:
            assert t1.split("_", 2)[2] not in (r.hash, r.salt)
        assert len({r.salt for r in rows}) == 2
        assert verify_token(s, t1).team == "team-a" and verify_token(s, t2) is not None
        assert verify_token(s, t1[:-1] + ("A" if t1[-1] != "A" else "B")) is None
