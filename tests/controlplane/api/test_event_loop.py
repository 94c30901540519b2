"""The API never stalls: a 10,000-document submit runs in a worker thread, so /healthz (and every other
request) is answered while it is still running. Ordered by events, not by timing: the submit is held at
a known point inside its blocking work until /healthz has answered; were that work on the event loop,
/healthz could not answer and the bounded wait would fail the test."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from controlplane.api import create_app
from controlplane.auth import create_token
from controlplane.settings import Settings
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from tests.controlplane.api.conftest import auth

WAIT_S = 120.0   # generous bounds for a busy machine; the order of events is what is asserted


def documents(n: int, prefix: str = "w") -> str:
    """``n`` one-GPU manifests as one YAML list (about 85 bytes each: 10,000 fit under the 1 MiB limit)."""
    return "".join(f"- {{metadata: {{name: {prefix}{i}}}, spec: {{kind: inference, gpus: {{model: H100, count: 1}}}}}}\n"
                   for i in range(n))


@dataclass
class Served:
    url: str
    server: uvicorn.Server
    thread: threading.Thread


@pytest.fixture
def served(db: Database, db_url: str) -> Iterator[Served]:
    app = create_app(Settings(db_url=db_url, reconcile=False, log_level="WARNING"), db=db, providers={})
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
        for _ in range(int(WAIT_S * 10)):
            try:
                if c.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            threading.Event().wait(0.1)
    yield Served(f"http://127.0.0.1:{port}", server, thread)
    server.should_exit = True
    thread.join(timeout=WAIT_S)
    sock.close()


@pytest.mark.slow
def test_healthz_answers_while_a_10000_document_submit_runs(served, db, monkeypatch):
    with db.session() as s:
        token, _ = create_token(s, "research", "member")
    in_submit, healthz_answered, submit_done = threading.Event(), threading.Event(), threading.Event()
    real_insert = repo.insert_fresh

    def held_insert(s, items):  # type: ignore[no-untyped-def]
        # Every submit's first write (SQLite: all the new names in it; PostgreSQL: none for a body of several,
        # which the locked lookup then writes), in the submit's transaction: held there, uncommitted.
        got = real_insert(s, items)
        in_submit.set()
        healthz_answered.wait(WAIT_S)   # the submit cannot finish before /healthz has answered
        return got

    monkeypatch.setattr(repo, "insert_fresh", held_insert)
    outcome: dict[str, httpx.Response] = {}

    def submit() -> None:
        with httpx.Client(base_url=served.url, timeout=WAIT_S * 4) as c:
            outcome["submit"] = c.post("/v1/workloads", content=documents(10_000), headers=auth(token))
        submit_done.set()

    t = threading.Thread(target=submit)
    t.start()
    try:
        assert in_submit.wait(WAIT_S), "the submit never reached the store"
        with httpx.Client(base_url=served.url, timeout=WAIT_S) as c:
            health = c.get("/healthz")
            # Another request that needs the thread pool and the store also gets through.
            listed = c.get("/v1/workloads", params={"limit": 1}, headers=auth(token))
        answered_before_submit_finished = not submit_done.is_set()
    finally:
        healthz_answered.set()
        t.join(WAIT_S * 4)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert listed.status_code == 200 and listed.json()["items"] == []   # nothing committed yet
    assert answered_before_submit_finished
    r = outcome["submit"]
    assert r.status_code == 201, r.text[:300]
    assert len(r.json()["created"]) == 10_000


def test_submit_over_the_document_limit_is_413_naming_the_limit(db, db_url):
    from fastapi.testclient import TestClient

    with db.session() as s:
        token, _ = create_token(s, "research", "member")
    app = create_app(Settings(db_url=db_url, reconcile=False, max_submit_documents=3), db=db, providers={})
    with TestClient(app) as c:
        r = c.post("/v1/workloads", content=documents(4), headers=auth(token))
        assert r.status_code == 413
        assert "4 documents" in r.json()["detail"] and "AWAN_MAX_SUBMIT_DOCUMENTS" in r.json()["detail"]
        assert c.get("/v1/workloads", headers=auth(token)).json()["items"] == []
        assert c.post("/v1/workloads", content=documents(3), headers=auth(token)).status_code == 201


def test_bulk_submit_mixes_new_unchanged_and_reused_names(db, db_url):
    """One submit holding a new name, an unchanged one and the name of a deleted workload (its tombstone
    is reused, generation bumped), all recorded in the audit log; a clash anywhere stores nothing."""
    from fastapi.testclient import TestClient

    with db.session() as s:
        token, _ = create_token(s, "research", "member")
    app = create_app(Settings(db_url=db_url, reconcile=False), db=db, providers={})
    with TestClient(app) as c:
        assert c.post("/v1/workloads", content=documents(2), headers=auth(token)).status_code == 201
        with db.session() as s:   # the loop finished deleting w1
            row = repo.get(s, "w1", "research")
            assert row is not None
            row.state = "Deleted"
        r = c.post("/v1/workloads", content=documents(3), headers=auth(token))
        assert r.status_code == 201
        assert (r.json()["created"], r.json()["unchanged"]) == (["w1", "w2"], ["w0"])
        gens = {w["name"]: (w["state"], w["generation"]) for w in r.json()["items"]}
        assert gens == {"w0": ("Pending", 1), "w1": ("Pending", 2), "w2": ("Pending", 1)}
        clash = documents(4).replace("name: w2}, spec: {kind: inference, gpus: {model: H100, count: 1}",
                              "name: w2}, spec: {kind: inference, gpus: {model: H100, count: 2}")
        r = c.post("/v1/workloads", content=clash, headers=auth(token))
        assert r.status_code == 409 and "'w2'" in r.json()["detail"]
        names = sorted(w["name"] for w in c.get("/v1/workloads", headers=auth(token)).json()["items"])
        assert names == ["w0", "w1", "w2"]   # w3 of the refused submit was not stored
        evs = c.get("/v1/workloads/w1/events", headers=auth(token)).json()["items"]
        assert [e["action"] for e in evs] == ["submitted", "submitted"]


def test_submit_result_rendered_item_by_item_is_the_same_json():
    from datetime import UTC, datetime

    from controlplane.api import schemas
    from controlplane.api.workload_service import render

    now = datetime.now(UTC)
    items = [schemas.WorkloadOut(name=f"w{i}", team="t", state="Pending", message="é", gpus=1, priority=0,
                                 generation=1, createdAt=now, updatedAt=now, spec={"a": [1, None], "b": "ü"})
             for i in range(3)]
    for result in (schemas.SubmitResult(items=items, created=["w0", "w1"], unchanged=["w2"]),
                   schemas.SubmitResult(items=[], created=[], unchanged=[])):
        assert render(result) == result.model_dump_json().encode()
