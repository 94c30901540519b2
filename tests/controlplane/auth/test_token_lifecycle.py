"""Issue 13 (low): tokens can be listed, revoked and expired and show their last use; admin is scoped to its
team unless it is cluster-admin; the dashboard trades ?token= for an HttpOnly cookie and sends
Referrer-Policy. Each test here failed on the code before these changes (no such routes, a global
``admin``, a token left in the URL)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, text
from typer.testing import CliRunner

from controlplane.auth import create_token
from controlplane.cli.main import app
from controlplane.store.coltypes import utcnow
from controlplane.store.migrate import upgrade
from controlplane.store.models import Token
from tests.controlplane.api.conftest import auth
from tests.controlplane.reconcile.fakes import manifest


def _tok(db, team: str, role: str, **kw) -> str:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return create_token(s, team, role, **kw)[0]


def test_team_admin_cannot_touch_another_team(client, db):
    alpha_admin, beta = _tok(db, "alpha", "admin"), _tok(db, "beta", "member")
    assert client.post("/v1/workloads", content=manifest("beta-job", team="beta"), headers=auth(beta)).status_code == 201
    a = auth(alpha_admin)
    assert client.get("/v1/workloads/beta-job", headers=a).status_code == 404
    assert client.delete("/v1/workloads/beta-job", headers=a).status_code == 404
    assert client.get("/v1/workloads", headers=a).json()["items"] == []
    assert client.post("/v1/workloads", content=manifest("x", team="beta"), headers=a).status_code == 403
    assert client.get("/v1/policies", headers=a).status_code == 403
    assert client.get("/v1/workloads/beta-job", headers=auth(beta)).json()["state"] == "Pending"
    # its own team: a team admin writes like a member
    assert client.post("/v1/workloads", content=manifest("alpha-job", team="alpha"), headers=a).status_code == 201


def test_cluster_admin_is_global(client, db):
    root, beta = _tok(db, "ops", "cluster-admin"), _tok(db, "beta", "member")
    client.post("/v1/workloads", content=manifest("b-job", team="beta"), headers=auth(beta))
    assert client.get("/v1/workloads/b-job", headers=auth(root)).status_code == 200
    assert client.get("/v1/policies", headers=auth(root)).status_code == 200


def test_token_admin_api_list_create_revoke_and_last_use(client, db):
    root, alpha_admin, alpha = _tok(db, "ops", "cluster-admin"), _tok(db, "alpha", "admin"), _tok(db, "alpha", "member")
    _tok(db, "beta", "member")
    assert client.get("/v1/workloads", headers=auth(alpha)).status_code == 200       # a use to record
    items = client.get("/v1/tokens", headers=auth(root)).json()["items"]
    assert {t["team"] for t in items} == {"ops", "alpha", "beta"}
    alpha_id = alpha.split("_")[1]
    mine = [t for t in items if t["id"] == alpha_id][0]
    assert mine["lastUsedAt"] is not None and mine["role"] == "member"
    assert all(k not in str(items) for k in ("hash", "salt", alpha.split("_", 2)[2]))
    # a team admin sees and manages its own team only, and cannot mint a cluster-admin
    a = auth(alpha_admin)
    assert {t["team"] for t in client.get("/v1/tokens", headers=a).json()["items"]} == {"alpha"}
    assert client.get("/v1/tokens?team=beta", headers=a).status_code == 403
    assert client.post("/v1/tokens", json={"team": "beta"}, headers=a).status_code == 403
    assert client.post("/v1/tokens", json={"team": "alpha", "role": "cluster-admin"}, headers=a).status_code == 403
    assert client.get("/v1/tokens", headers=auth(alpha)).status_code == 403          # members cannot
    made = client.post("/v1/tokens", json={"team": "alpha", "expires": "2h", "description": "ci"}, headers=a)
    assert made.status_code == 201 and made.json()["token"].startswith("awan_") and made.json()["expiresAt"]
    assert client.post("/v1/tokens", json={"team": "alpha", "expires": "yesterday"}, headers=a).status_code == 422
    # revocation takes effect at once, even though the token was just verified (and cached)
    assert client.delete(f"/v1/tokens/{alpha_id}", headers=a).status_code == 200
    assert client.get("/v1/workloads", headers=auth(alpha)).status_code == 401
    beta_id = [t for t in items if t["team"] == "beta"][0]["id"]
    assert client.delete(f"/v1/tokens/{beta_id}", headers=a).status_code == 404
    revoked = client.get("/v1/tokens?revoked=true", headers=auth(root)).json()["items"]
    assert [t["revokedAt"] is not None for t in revoked if t["id"] == alpha_id] == [True]


def test_expired_token_is_refused(client, db):
    tok = _tok(db, "alpha", "member", expires_at=utcnow() + timedelta(hours=1))
    assert client.get("/v1/workloads", headers=auth(tok)).status_code == 200
    with db.session() as s:
        s.get(Token, tok.split("_")[1]).expires_at = utcnow() - timedelta(seconds=1)
    client.app.state.token_cache.forget(tok.split("_")[1])    # as after the cache's 30 s
    r = client.get("/v1/workloads", headers=auth(tok))
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_dashboard_trades_the_url_token_for_an_httponly_cookie(client, db):
    tok = _tok(db, "alpha", "member")
    r = client.get(f"/dashboard?token={tok}&page=fleet", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard?page=fleet"
    assert tok not in r.headers["location"]
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert r.headers["referrer-policy"] == "no-referrer"
    page = client.get("/dashboard")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    # the cookie reads; it never writes (a page on another site cannot make the browser change things)
    assert client.get("/v1/workloads").status_code == 200
    assert client.post("/v1/workloads", content=manifest("via-cookie", team="alpha")).status_code == 401
    bad = client.get("/dashboard?token=awan_000000000000_" + "x" * 30, follow_redirects=False)
    assert bad.status_code == 303 and "set-cookie" not in bad.headers
    client.post("/dashboard/signout", follow_redirects=False)
    client.cookies.clear()
    r = client.post("/dashboard/session", data={"token": tok}, follow_redirects=False)
    assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()


def test_old_admin_tokens_become_cluster_admin_on_upgrade(tmp_path: Path):
    from controlplane.store.db import Database

    db = Database.from_url(f"sqlite:///{tmp_path}/old.db")
    upgrade(db.engine, "0001")
    with db.engine.begin() as c:
        c.execute(text("INSERT INTO teams (name, created_at) VALUES ('ops', '2026-01-01')"))
        c.execute(text("INSERT INTO tokens (id, team, role, salt, hash, description, created_at) "
                       "VALUES ('0123456789ab', 'ops', 'admin', 's', 'h', '', '2026-01-01')"))
    upgrade(db.engine)
    with db.session() as s:
        row = s.scalars(select(Token)).one()
        assert row.role == "cluster-admin" and row.expires_at is None and row.last_used_at is None
    db.dispose()


def test_token_cli_on_the_store(tmp_path: Path):
    runner = CliRunner()
    missing = tmp_path / "typo.db"
    r = runner.invoke(app, ["token", "create", "--team", "alpha", "--db", f"sqlite:///{missing}"])
    assert r.exit_code == 1 and "no database at" in r.output and not missing.exists()
    url = f"sqlite:///{tmp_path}/awan.db"
    assert runner.invoke(app, ["db", "upgrade", "--db", url]).exit_code == 0
    r = runner.invoke(app, ["token", "create", "--team", "alpha", "--role", "admin", "--expires", "30d",
                            "--db", url])
    assert r.exit_code == 0 and r.stdout.startswith("awan_"), r.output
    tid = r.stdout.split("_")[1]
    r = runner.invoke(app, ["token", "list", "--db", url, "-o", "json"])
    [t] = __import__("json").loads(r.stdout)["items"]
    assert t["id"] == tid and t["role"] == "admin" and t["expiresAt"] and t["lastUsedAt"] is None
    assert runner.invoke(app, ["token", "revoke", tid, "--db", url]).stdout == f"token/{tid} revoked\n"
    assert "alpha" not in runner.invoke(app, ["token", "list", "--db", url]).stdout
    assert "revoked" in runner.invoke(app, ["token", "list", "--all", "--db", url]).stdout
    r = runner.invoke(app, ["token", "create", "--team", "alpha", "--role", "root", "--db", url])
    assert r.exit_code == 1 and "role: 'root' is not one of cluster-admin, admin, member, viewer" in r.output
