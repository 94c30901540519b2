"""The same store/API suite on SQLite and PostgreSQL: each test gets a fresh SQLite file or a fresh,
uniquely named PostgreSQL schema that is dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from controlplane.store.db import Database
from controlplane.store.migrate import upgrade

PG_URL = os.environ.get("AWAN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pg_schema_url(base: str, schema: str) -> str:
    u = make_url(base)
    return u.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


class PgSchema:
    def __init__(self, base: str = PG_URL) -> None:
        self.base = base
        self.name = f"awan_t_{uuid.uuid4().hex[:12]}"
        self.url = pg_schema_url(base, self.name)

    def create(self) -> PgSchema:
        eng = create_engine(self.base)
        try:
            with eng.begin() as c:
                c.execute(text(f'CREATE SCHEMA "{self.name}"'))
        except Exception as e:
            pytest.skip(f"PostgreSQL at {self.base} not reachable: {type(e).__name__}")
        finally:
            eng.dispose()
        return self

    def drop(self) -> None:
        eng = create_engine(self.base)
        with eng.begin() as c:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
        eng.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/awan.db"
        return
    schema = PgSchema().create()
    try:
        yield schema.url
    finally:
        schema.drop()


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    d = Database.from_url(db_url, pool_size=3, max_overflow=2)
    upgrade(d.engine)
    yield d
    d.dispose()
