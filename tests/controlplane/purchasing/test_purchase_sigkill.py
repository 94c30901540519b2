"""A controller process SIGKILLed right around the purchase buys exactly once: killed just before the cloud
call (the row says ``buying``, the cloud sold nothing) or just after it (the cloud sold the block, the row
still says ``buying``), a restarted controller looks the purchase up by its token and buys only what is
missing. Counted through boto3: one block with the purchase's tag, the one the row records."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from controlplane.purchasing.buying import TAG
from controlplane.store import audit
from controlplane.store.db import Database
from controlplane.store.models import Purchase
from tests.controlplane.purchasing import buyfixtures as bf

REPO = Path(__file__).resolve().parents[3]


def _start(url: str, config: Path, pause: str, log: Path) -> subprocess.Popen[str]:
    out = log.open("w")   # a file, not a pipe: a child never read from must not block on writing
    return subprocess.Popen([sys.executable, "-m", "tests.controlplane.purchasing.purchase_child", url, str(config),
                             pause], cwd=REPO, stdout=out, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def _wait(cond: Callable[[], bool], what: str, proc: subprocess.Popen[str], log: Path, timeout: float = 240.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, f"child exited: {log.read_text()[-2000:]}"
        assert time.monotonic() < end, f"timed out waiting for {what}: {log.read_text()[-2000:]}"
        time.sleep(0.1)


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _row(db: Database) -> Purchase | None:
    with db.session() as s:
        r = s.scalars(select(Purchase)).first()
        if r is not None:
            s.expunge(r)
        return r


def _tagged(mock: Any, token: str) -> list[dict[str, Any]]:
    return [b for b in bf.blocks(mock) if {"Key": TAG, "Value": token} in b.get("Tags", [])]


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["before", "after"])
def test_sigkill_around_the_purchase_buys_exactly_once(mock_aws: Any, tmp_path: Path, moment: str) -> None:
    url = f"sqlite:///{tmp_path / 'awan.db'}"
    db = bf.store(tmp_path, bf.policy("auto"))
    config = mock_aws.write_config(tmp_path / "awan.yaml")
    aws = bf.aws(mock_aws)
    bf.submit(db)
    bf.place(db, {"aws": aws})

    log1 = tmp_path / "first.log"
    first = _start(url, config, moment, log1)
    try:
        _wait(lambda: "PAUSED" in log1.read_text(), "the pause around the cloud call", first, log1)
    finally:
        _kill(first)
    row = _row(db)
    assert row is not None and row.state == "buying"        # recorded before the call, the end never written
    assert len(_tagged(mock_aws, row.token)) == (1 if moment == "after" else 0)

    log2 = tmp_path / "second.log"
    second = _start(url, config, "none", log2)
    try:
        _wait(lambda: (r := _row(db)) is not None and r.state == "bought", "the purchase to be recorded", second, log2)
        _wait(lambda: log2.read_text().count("pass ") >= 3, "more passes", second, log2)   # and nothing more
    finally:
        _kill(second)
    row = _row(db)
    assert row is not None and row.state == "bought"
    ours = _tagged(mock_aws, row.token)
    assert len(ours) == 1, ours
    assert ours[0]["CapacityReservationIds"] == [row.reservation_id]
    assert len(bf.blocks(mock_aws)) == 1                     # nothing else was bought either
    with db.session() as s:
        assert audit.count(s, action="purchase-bought", subject=row.id) == 1
        how = [e.details.get("how") for e in audit.events(s, kind="purchase", subject=row.id)
               if e.action == "purchase-bought"]
    assert how == (["found by its token (bought before a restart)"] if moment == "after" else ["bought"])
