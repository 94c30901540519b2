from __future__ import annotations

from collections.abc import Iterator

import pytest

from controlplane.reconcile.controller import Controller
from tests.controlplane.store.dbfixture import db, db_url  # noqa: F401


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
