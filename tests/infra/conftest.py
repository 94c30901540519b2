from __future__ import annotations

from collections.abc import Callable

import pytest

from infra.engines.local import LocalEngine
from infra.engines.state import FileStateStore
from tests.infra.fakes import BareFakeProvider, FakeProvider


@pytest.fixture
def fake_engine(tmp_path) -> Callable[..., tuple[LocalEngine, BareFakeProvider]]:
    def make(provider: str = "aws", extras: bool = True) -> tuple[LocalEngine, BareFakeProvider]:
        fp: BareFakeProvider = FakeProvider(provider) if extras else BareFakeProvider(provider)
        return LocalEngine(lambda name: fp, store=FileStateStore(tmp_path / "state")), fp

    return make
