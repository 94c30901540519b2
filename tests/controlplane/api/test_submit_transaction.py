"""A submit checks its token in its own transaction (one connection, one commit), and every guarantee the
separate token transaction gave still holds: revocation and expiry refuse the next submit on every replica,
a use is recorded even when the submit is refused, a concurrent insert of the same name is retried and seen,
and the workload, its audit record and its change-feed row are written together or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from controlplane.api import create_app
from controlplane.settings import Settings
from controlplane.store import workloads as repo
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import AuditEvent, ChangeRecord, Token, Workload
from tests.controlplane.api.conftest import auth
from tests.controlplane.reconcile.fakes import manifest


def _id(token: str) -> str:
    return token.split("_")[1]


def _counts(db: Database) -> tuple[int, int, int]:
    """(workloads, 'submitted' audit records, workload change-feed rows)."""
    with db.session() as s:
        return (int(s.scalar(select(func.count()).select_from(Workload)) or 0),
                int(s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "submitted"))
                    or 0),
                int(s.scalar(select(func.count()).select_from(ChangeRecord).where(ChangeRecord.kind == "workload"))
                    or 0))


@pytest.fixture
def replica_b(db: Database, db_url: str) -> Iterator[TestClient]:
    """A second replica of the service on the same store, with a token cache of its own."""
    app = create_app(Settings(db_url=db_url, reconcile=False), db=Database.from_url(db_url), providers={})
    with TestClient(app) as c:
        yield c
    app.state.ctx.db.dispose()


def test_a_submit_takes_one_connection_one_commit_and_four_statements(client, tokens, db):
    h = auth(tokens["research"])
    assert client.post("/v1/workloads", content=manifest("warm"), headers=h).status_code == 201   # use recorded
    seen = {"checkout": 0, "commit": 0, "statements": 0}

    def on_checkout(*_: object) -> None:
        seen["checkout"] += 1

    def on_commit(*_: object) -> None:
        seen["commit"] += 1

    def on_statement(*_: object) -> None:
        seen["statements"] += 1

    event.listen(db.engine, "checkout", on_checkout)
    event.listen(db.engine, "commit", on_commit)
    event.listen(db.engine, "before_cursor_execute", on_statement)
    try:
        r = client.post("/v1/workloads", content=manifest("one"), headers=h)
    finally:
        event.remove(db.engine, "checkout", on_checkout)
        event.remove(db.engine, "commit", on_commit)
        event.remove(db.engine, "before_cursor_execute", on_statement)
    assert r.status_code == 201 and r.json()["created"] == ["one"]
    # the token's row; the workload (INSERT unless stored); its change-feed row; its audit record; and on
    # PostgreSQL the change feed's NOTIFY
    assert seen == {"checkout": 1, "commit": 1, "statements": 4 if db.dialect == "sqlite" else 5}
    assert _counts(db) == (2, 2, 2)


def test_revocation_and_expiry_refuse_the_next_submit_on_every_replica(client, replica_b, tokens, db):
    research, infer = tokens["research"], tokens["infer"]
    for c in (client, replica_b):     # both replicas have verified (and cached) both tokens
        for t in (research, infer):
            assert c.get("/v1/workloads", headers=auth(t)).status_code == 200
    assert client.delete(f"/v1/tokens/{_id(research)}", headers=auth(tokens["admin"])).status_code == 200
    r = replica_b.post("/v1/workloads", content=manifest("after-revoke"), headers=auth(research))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    with db.session() as s:
        row = s.get(Token, _id(infer))
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
    for c in (client, replica_b):
        r = c.post("/v1/workloads", content=manifest("after-expiry", team="inference"), headers=auth(infer))
        assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert _counts(db) == (0, 0, 0)


def test_a_refused_submit_still_records_the_tokens_use(client, tokens, db):
    viewer, research = tokens["viewer"], tokens["research"]
    assert client.post("/v1/workloads", content=manifest("no"), headers=auth(viewer)).status_code == 403
    bad = manifest("bad").replace("count: 16", "count: -1")
    r = client.post("/v1/workloads", content=bad, headers=auth(research))
    assert r.status_code == 422 and "spec.gpus.count" in r.json()["detail"]
    with db.session() as s:
        for t in (viewer, research):
            row = s.get(Token, _id(t))
            assert row is not None and row.last_used_at is not None
    assert _counts(db) == (0, 0, 0)


@pytest.mark.parametrize("same_spec", [True, False])
def test_a_name_inserted_concurrently_is_retried_and_seen(client, tokens, db, monkeypatch, same_spec):
    h = auth(tokens["research"])
    assert client.post("/v1/workloads", content=manifest("raced"), headers=h).status_code == 201
    real = repo._existing
    calls = {"n": 0}

    def missed_once(s, items):  # type: ignore[no-untyped-def]
        """The first lookup misses the stored row, as when another request inserts it just after."""
        calls["n"] += 1
        return {} if calls["n"] == 1 else real(s, items)

    monkeypatch.setattr(repo, "_existing", missed_once)
    again = manifest("raced", gpus=16 if same_spec else 8)
    r = client.post("/v1/workloads", content=again, headers=h)
    assert calls["n"] == 2          # the INSERT failed on the unique key, and the submit ran again
    if same_spec:
        assert r.status_code == 201 and r.json()["unchanged"] == ["raced"] and r.json()["created"] == []
    else:
        assert r.status_code == 409 and r.json()["detail"].startswith("metadata.name:")
    assert _counts(db) == (1, 1, 1)  # nothing of the failed attempt was kept


def test_one_document_of_a_stored_name_is_unchanged_a_conflict_or_a_reused_tombstone(client, tokens, db):
    """One document, the one-statement INSERT's case: a stored name (same spec, another spec, a deleted
    workload's) is left to the full lookup, exactly as in a bulk submit."""
    h = auth(tokens["research"])
    assert client.post("/v1/workloads", content=manifest("kept"), headers=h).status_code == 201
    r = client.post("/v1/workloads", content=manifest("kept"), headers=h)
    assert r.status_code == 201 and r.json()["unchanged"] == ["kept"] and r.json()["created"] == []
    r = client.post("/v1/workloads", content=manifest("kept", gpus=8), headers=h)
    assert r.status_code == 409 and r.json()["detail"].startswith("metadata.name:") and "'kept'" in r.json()["detail"]
    with db.session() as s:   # the loop finished deleting it
        row = repo.get(s, "kept", "research")
        assert row is not None
        row.state = "Deleted"
    r = client.post("/v1/workloads", content=manifest("kept", gpus=8), headers=h)
    assert r.status_code == 201 and r.json()["created"] == ["kept"]
    assert (r.json()["items"][0]["generation"], r.json()["items"][0]["gpus"]) == (2, 8)
    # the same name in another team is another workload
    r = client.post("/v1/workloads", content=manifest("kept", team="inference"), headers=auth(tokens["infer"]))
    assert r.status_code == 201 and r.json()["created"] == ["kept"]
    evs = client.get("/v1/workloads/kept/events", headers=h).json()["items"]
    assert [e["action"] for e in evs] == ["submitted", "submitted"]
    workloads, submitted, _ = _counts(db)
    assert (workloads, submitted) == (2, 3)
