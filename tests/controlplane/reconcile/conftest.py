from __future__ import annotations

from collections.abc import Iterator

import pytest

from controlplane.reconcile.controller import Controller
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from tests.controlplane.store.dbfixture import PgSchema, db, db_url  # noqa: F401


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A migrated PostgreSQL schema of the test's own (several replicas' Controllers share it): the URL."""
    schema = PgSchema().create()
    d = Database.from_url(schema.url)
    upgrade(d.engine)
    d.dispose()
    yield schema.url
    schema.drop()


@pytest.fixture(autouse=True)
def _controllers_stopped(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every controller a test built is stopped at its end: one driven pass by pass and left holding work
    leases kept its renewal thread alive after its schema was dropped (warnings to the end of the run)."""
    made: list[Controller] = []
    init = Controller.__init__

    def recording(self: Controller, *a: object, **kw: object) -> None:
        init(self, *a, **kw)  # type: ignore[arg-type]
        made.append(self)

    monkeypatch.setattr(Controller, "__init__", recording)
    yield
    for c in made:
        c.stop(release_lease=False, grace_s=5.0)
