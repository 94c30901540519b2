"""A fresh database per run (a temporary SQLite file, or a new PostgreSQL database that is dropped
afterwards), a member token in it, and the service on a loopback port in a subprocess."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from controlplane.auth import create_token
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def fresh_database(kind: str, pg_url: str) -> Iterator[str]:
    """Yield the URL of an empty database of ``kind`` (sqlite | postgresql)."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="awan-bench-db-") as d:
            yield f"sqlite:///{d}/awan.db"
        return
    import psycopg

    url = make_url(pg_url)
    name = f"awan_bench_{datetime.now(UTC):%Y%m%d%H%M%S}_{os.getpid()}"
    admin = dict(host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username or "postgres",
                 password=url.password or None, dbname=url.database or "postgres", autocommit=True)
    with psycopg.connect(**admin) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(**admin) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def member_token(db_url: str) -> str:
    db = Database.from_url(db_url)
    try:
        upgrade(db.engine)
        with db.session() as s:
            token, _ = create_token(s, "bench", "member")
        return token
    finally:
        db.dispose()


@contextlib.contextmanager
def running_service(db_url: str, cores: str = "") -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "bench.api.serve", db_url, str(port), cores], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url, 60)
        yield url
    finally:
        stop(proc)


def wait_healthy(proc: subprocess.Popen[str], url: str, bound_s: float) -> None:
    """Until ``url``/healthz answers; raises with the end of its stderr if ``proc`` exits first."""
    deadline = time.monotonic() + bound_s
    while True:
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr is not None else ""
            raise RuntimeError(f"the service exited ({proc.returncode}): {(err or '')[-500:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code < 500:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the service did not answer within {bound_s:.0f} s")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM, and SIGKILL if it has not exited 20 s later."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
