from __future__ import annotations

from collections.abc import Callable

import pytest

from infra.engines.local import LocalEngine
from infra.engines.state import FileStateStore
from tests.infra.fakes import FakeProvider


@pytest.fixture
def fake_engine(tmp_path) -> Callable[..., tuple[LocalEngine, FakeProvider]]:
    def make(provider: str = "aws", extras: bool = True) -> tuple[LocalEngine, FakeProvider]:
        fp = FakeProvider(provider, extras=extras)
        return LocalEngine(lambda name: fp, store=FileStateStore(tmp_path / "state")), fp

    return make
