from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from controlplane.api import create_app
from controlplane.auth import create_token
from controlplane.settings import Settings
from controlplane.store.db import Database
from tests.controlplane.store.dbfixture import db, db_url  # noqa: F401


@pytest.fixture
def tokens(db: Database) -> dict[str, str]:  # noqa: F811
    out = {}
    with db.session() as s:
        for key, team, role in [("admin", "ops", "cluster-admin"), ("research", "research", "member"),
                                ("infer", "inference", "member"), ("viewer", "research", "viewer")]:
            out[key], _ = create_token(s, team, role)
    return out


@pytest.fixture
def client(db: Database, db_url: str) -> Iterator[TestClient]:  # noqa: F811
    app = create_app(Settings(db_url=db_url, reconcile=False), db=db, providers={})
    with TestClient(app) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
