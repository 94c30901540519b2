"""The submit endpoint pokes the loop's wake socket after its commit (controlplane/reconcile/wake.py): once per
submit that created workloads, never for one that changed nothing, and a socket nobody listens on does not
fail the submit."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from controlplane.api import create_app
from controlplane.settings import Settings
from controlplane.store.db import Database
from tests.controlplane.api.conftest import auth
from tests.controlplane.reconcile.fakes import manifest


@pytest.fixture
def sock_path() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="awt-")     # short: a unix socket path has ~100 bytes
    yield str(Path(d) / "w.sock")
    shutil.rmtree(d, ignore_errors=True)


def _client(db: Database, db_url: str, path: str) -> TestClient:
    return TestClient(create_app(Settings(db_url=db_url, reconcile=False, wake_socket=path), db=db, providers={}))


def _pokes(s: socket.socket) -> int:
    n = 0
    try:
        while True:
            s.recv(16)
            n += 1
    except BlockingIOError:
        return n


def test_a_submit_that_creates_pokes_the_loop_once_and_one_that_changes_nothing_does_not(db, db_url, tokens,
                                                                                         sock_path):
    loop = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    loop.bind(sock_path)
    loop.setblocking(False)
    try:
        with _client(db, db_url, sock_path) as c:
            body = manifest("w1", "research") + "---\n" + manifest("w2", "research")
            r = c.post("/v1/workloads", content=body, headers=auth(tokens["research"]))
            assert r.status_code == 201, r.text
            assert _pokes(loop) == 1
            r = c.post("/v1/workloads", content=body, headers=auth(tokens["research"]))
            assert r.status_code == 201 and r.json()["unchanged"] == ["w1", "w2"]
            assert _pokes(loop) == 0
    finally:
        loop.close()


def test_a_submit_with_no_loop_listening_succeeds(db, db_url, tokens, sock_path):
    with _client(db, db_url, sock_path) as c:
        r = c.post("/v1/workloads", content=manifest("w1", "research"), headers=auth(tokens["research"]))
        assert r.status_code == 201, r.text
        assert c.get("/v1/workloads/w1", headers=auth(tokens["research"])).json()["state"] == "Pending"
