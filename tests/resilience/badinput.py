"""Send every malformed input to an app and check each got a 4xx with a one-line message and changed
nothing in the store (workloads, policies, audit log). Used by the test and by the report."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from controlplane.store.db import Database
from controlplane.store.models import AuditEvent, PolicyDocument, Stack, Workload
from tests.resilience.inputs import all_inputs


def store_fingerprint(db: Database) -> tuple[int, ...]:
    with db.session() as s:
        return tuple(int(s.scalar(select(func.count()).select_from(t)) or 0)
                     for t in (Workload, PolicyDocument, AuditEvent, Stack))


@dataclass
class BadInputReport:
    tried: int = 0
    failures: list[str] = field(default_factory=list)   # "<label>: <what went wrong>"
    statuses: dict[str, int] = field(default_factory=dict)


def run(client: Any, db: Database, member: str, admin: str) -> BadInputReport:
    """``client``: an httpx-style client (TestClient or httpx.Client) bound to the service."""
    rep = BadInputReport()
    for label, path, body in all_inputs():
        before = store_fingerprint(db)
        token = admin if path == "/v1/policies" else member
        method = client.put if path == "/v1/policies" else client.post
        r = method(path, content=body, headers={"Authorization": f"Bearer {token}",
                                                "Content-Type": "application/yaml"})
        rep.tried += 1
        rep.statuses[label] = r.status_code
        after = store_fingerprint(db)
        if not 400 <= r.status_code < 500:
            rep.failures.append(f"{label}: status {r.status_code}")
            continue
        detail = (r.json() or {}).get("detail", "") if r.headers.get("content-type", "").startswith(
            "application/json") else ""
        if not isinstance(detail, str) or not detail or "\n" in detail.strip() or "Traceback" in detail:
            rep.failures.append(f"{label}: no one-line message: {str(detail)[:200]!r}")
        if after != before:
            rep.failures.append(f"{label}: the store changed {before} -> {after}")
    return rep


@contextlib.contextmanager
def api_on_fresh_db(workdir: Path) -> Iterator[tuple[Any, Database, str, str]]:
    """(client, db, member token, admin token): the real app on a new SQLite file, reconcile loop off."""
    from fastapi.testclient import TestClient

    from controlplane.api import create_app
    from controlplane.auth import create_token
    from controlplane.settings import Settings
    from controlplane.store.migrate import upgrade

    url = f"sqlite:///{workdir / 'badinput.db'}"
    db = Database.from_url(url)
    upgrade(db.engine)
    with db.session() as s:
        member, _ = create_token(s, "research", "member")
        admin, _ = create_token(s, "ops", "cluster-admin")
    app = create_app(Settings(db_url=url, reconcile=False), db=db, providers={}, migrate=False)
    try:
        with TestClient(app, raise_server_exceptions=False) as c:
            yield c, db, member, admin
    finally:
        db.dispose()
