"""``AWAN_CAPACITY_KEEP_S``: how long interval passes keep the clouds' capacity read (LoopConfig.capacity_keep_s),
from the service's settings to the loop it builds; a negative or non-number value stops `awan serve` naming the
variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.api.context import ServiceContext
from controlplane.reconcile.controller import LoopConfig
from controlplane.reconcile.metrics import LoopMetrics
from controlplane.reconcile.policy_source import PolicySource
from controlplane.reconcile.runtime import build_controller
from controlplane.settings import Settings
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from tests.controlplane.cli.served import assert_serve_refuses
from tests.controlplane.reconcile.fakes import FakeCloud, FakeEngine


@pytest.mark.parametrize("value", ["0", "2.5", "600"])
def test_the_setting_reaches_the_loop(value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWAN_CAPACITY_KEEP_S", value)
    s = Settings(db_url=f"sqlite:///{tmp_path}/a.db")
    assert s.capacity_keep_s == float(value)
    db = Database.from_url(s.db_url)
    upgrade(db.engine)
    ctx = ServiceContext(settings=s, db=db, providers={}, policies=PolicySource(db, s.policies),
                         metrics=LoopMetrics(), config=None)
    c = build_controller(ctx, engine=FakeEngine(FakeCloud()))
    try:
        assert c.cfg.capacity_keep_s == float(value)
    finally:
        c.stop(grace_s=1)
        db.dispose()


def test_the_default_is_the_loops() -> None:
    assert Settings().capacity_keep_s == LoopConfig().capacity_keep_s == 10.0


@pytest.mark.parametrize("value", ["-1", "ten"])
def test_a_bad_value_is_refused_naming_the_variable(value: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert_serve_refuses("AWAN_CAPACITY_KEEP_S", value, tmp_path, monkeypatch)
