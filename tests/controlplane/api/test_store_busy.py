"""SQLite's write lock held past the busy timeout (several API workers and the controller process all write)
is a 503 the client may retry, never a 500; any other operational error of the store stays a 500."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from controlplane.api import create_app
from controlplane.settings import Settings


def _client(tmp_path: Path, error: str) -> TestClient:
    app = create_app(Settings(db_url=f"sqlite:///{tmp_path}/awan.db", reconcile=False))
    r = APIRouter()

    @r.post("/boom")
    def boom() -> None:
        raise OperationalError("INSERT INTO workloads ...", {}, sqlite3.OperationalError(error))

    app.include_router(r)
    return TestClient(app, raise_server_exceptions=False)


def test_a_write_that_finds_the_database_locked_is_a_503_with_retry_after(tmp_path: Path) -> None:
    r = _client(tmp_path, "database is locked").post("/boom")
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["detail"].startswith("store: busy")


def test_another_operational_error_stays_a_500(tmp_path: Path) -> None:
    assert _client(tmp_path, "disk I/O error").post("/boom").status_code == 500
