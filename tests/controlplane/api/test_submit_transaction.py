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


def _statements(db: Database, post):  # type: ignore[no-untyped-def]
    """(the answer of ``post()``, the SQL statements it ran)."""
    seen: list[str] = []

    def on_statement(_conn, _cursor, statement, *_: object) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", on_statement)
    try:
        r = post()
    finally:
        event.remove(db.engine, "before_cursor_execute", on_statement)
    return r, seen


def test_a_body_of_new_names_is_inserted_in_one_statement_without_a_lookup(client, tokens, db):
    """Ten documents of new names on SQLite: the token's row, one INSERT ... ON CONFLICT of the ten workloads,
    their change-feed rows, their audit records; no lookup of the names. (Not on PostgreSQL, where a
    statement of 110 parameters costs more in psycopg than the lookup it saves: see insert_fresh.)"""
    if db.dialect != "sqlite":
        pytest.skip("SQLite's path: PostgreSQL keeps the locked lookup for several documents")
    h = auth(tokens["research"])
    assert client.post("/v1/workloads", content=manifest("warm"), headers=h).status_code == 201   # use recorded
    body = "---\n".join(manifest(f"m{i}") for i in range(10))
    r, seen = _statements(db, lambda: client.post("/v1/workloads", content=body, headers=h))
    assert r.status_code == 201 and r.json()["created"] == [f"m{i}" for i in range(10)]
    assert [i["name"] for i in r.json()["items"]] == [f"m{i}" for i in range(10)]
    inserts = [s for s in seen if s.lstrip().upper().startswith("INSERT INTO WORKLOADS")]
    assert len(inserts) == 1 and "ON CONFLICT" in inserts[0].upper(), seen
    assert not any(s.lstrip().upper().startswith("SELECT") and "FROM WORKLOADS" in s.upper() for s in seen), seen
    assert len(seen) == 4, seen
    assert _counts(db) == (11, 11, 11)


def test_a_body_mixing_new_stored_and_deleted_names_inserts_the_new_and_decides_the_rest(client, tokens, db):
    """Only the stored names take the locked lookup: the same spec is unchanged, a deleted workload's
    tombstone is reused, the new names are created; the answer keeps the body's order."""
    h = auth(tokens["research"])
    for name in ("same", "gone"):
        assert client.post("/v1/workloads", content=manifest(name), headers=h).status_code == 201
    with db.session() as s:   # the loop finished deleting it
        row = repo.get(s, "gone", "research")
        assert row is not None
        row.state = "Deleted"
    body = "---\n".join([manifest("new1"), manifest("same"), manifest("gone", gpus=8), manifest("new2")])
    r = client.post("/v1/workloads", content=body, headers=h)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["created"] == ["new1", "gone", "new2"] and out["unchanged"] == ["same"]
    assert [(i["name"], i["generation"], i["gpus"]) for i in out["items"]] == [
        ("new1", 1, 16), ("same", 1, 16), ("gone", 2, 8), ("new2", 1, 16)]
    workloads, submitted, changed = _counts(db)
    assert (workloads, submitted) == (4, 5) and changed >= 5
    with db.session() as s:
        assert {w.name: w.state for w in repo.list_(s, team="research")} == {
            "new1": "Pending", "same": "Pending", "gone": "Pending", "new2": "Pending"}


def test_a_body_with_a_conflicting_name_keeps_none_of_its_new_names(client, tokens, db):
    """All or nothing: the new names inserted before the stored name's lookup found it with another spec
    are rolled back with it (no workload, audit record or change-feed row of the body is kept)."""
    h = auth(tokens["research"])
    assert client.post("/v1/workloads", content=manifest("taken"), headers=h).status_code == 201
    before = _counts(db)
    body = "---\n".join([manifest("fresh1"), manifest("taken", gpus=8), manifest("fresh2")])
    r = client.post("/v1/workloads", content=body, headers=h)
    assert r.status_code == 409 and r.json()["detail"].startswith("metadata.name:") and "'taken'" in r.json()["detail"]
    assert _counts(db) == before
    with db.session() as s:
        assert [w.name for w in repo.list_(s, team="research")] == ["taken"]
