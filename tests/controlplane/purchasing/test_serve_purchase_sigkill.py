"""A real ``awan serve`` (API and reconcile loop, the AWS mock as its cloud, a PurchasingPolicy in auto mode)
SIGKILLed in the middle of buying a Capacity Block buys it exactly once after a restart. The moment is set by
the mock's fault API, not by hooks in Awan: ``before`` - PurchaseCapacityBlock is throttled, so the row says
``buying`` and the cloud sold nothing when the process dies; ``after`` - PurchaseCapacityBlock is slow (the
mock sleeps, then sells), so the process dies with the order in flight and the cloud completes it. Counted
through boto3: one block with the purchase's tag, the one the row records."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select

from controlplane.purchasing.buying import TAG
from controlplane.store import audit
from controlplane.store.db import Database
from controlplane.store.models import Purchase
from tests.controlplane.purchasing import buyfixtures as bf

pytestmark = pytest.mark.slow


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(url: str, config: Path, log: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, AWAN_LOG_FORMAT="json", AWAN_RECONCILE_INTERVAL_S="0.5", AWAN_LEASE_TTL_S="3",
               AWAN_LEASE_RENEW_S="1", AWAN_REPLICA_ID=f"buyer-{log.stem}")
    out = log.open("w")
    return subprocess.Popen([str(Path(sys.executable).with_name("awan")), "serve", "-c", str(config), "--db", url,
                             "--port", str(_port())], cwd=log.parent, env=env, stdout=out, stderr=subprocess.STDOUT,
                            text=True)


def _wait(cond: Callable[[], bool], what: str, proc: subprocess.Popen[str] | None, log: Path,
          timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert proc is None or proc.poll() is None, f"awan serve exited: {log.read_text()[-3000:]}"
        assert time.monotonic() < end, f"timed out waiting for {what}: {log.read_text()[-3000:]}"
        time.sleep(0.2)


def _row(db: Database) -> Purchase | None:
    with db.session() as s:
        r = s.scalars(select(Purchase)).first()
        if r is not None:
            s.expunge(r)
        return r


def _tagged(mock: Any, token: str) -> list[dict[str, Any]]:
    return [b for b in bf.blocks(mock) if {"Key": TAG, "Value": token} in b.get("Tags", [])]


def _fault(mock: Any, **body: Any) -> None:
    r = httpx.post(mock.urls["aws"] + "/_mock/faults", json=body, timeout=30)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("moment", ["before", "after"])
def test_awan_serve_killed_mid_purchase_buys_exactly_once(mock_aws: Any, tmp_path: Path, moment: str) -> None:
    url = f"sqlite:///{tmp_path / 'awan.db'}"
    db = bf.store(tmp_path, bf.policy("auto"))
    conf = mock_aws.config_dict()
    conf["providers"] = {"aws": {**conf["providers"]["aws"], "regions": ["us-east-1"]}}
    config = tmp_path / "awan.yaml"
    config.write_text(yaml.safe_dump(conf))
    bf.submit(db)
    if moment == "before":
        _fault(mock_aws, kind="throttle", operation="PurchaseCapacityBlock")
    else:
        _fault(mock_aws, kind="latency", operation="PurchaseCapacityBlock", latency_ms=45_000)

    log1 = tmp_path / "first.log"
    first = _serve(url, config, log1)
    try:
        _wait(lambda: (r := _row(db)) is not None and r.state == "buying", "the row in buying", first, log1)
        if moment == "before":
            _wait(lambda: "will retry" in ((r := _row(db)) and r.message or ""), "a refused attempt", first, log1)
        else:
            time.sleep(8)      # the lookup by token is done; the order sits in the mock's 45 s latency
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    row = _row(db)
    assert row is not None and row.state == "buying"
    if moment == "after":     # the cloud completes the order the dead process sent
        _wait(lambda: len(_tagged(mock_aws, row.token)) == 1, "the in-flight order to complete", None, log1, 120)
    else:
        assert _tagged(mock_aws, row.token) == []
    assert httpx.delete(mock_aws.urls["aws"] + "/_mock/faults", timeout=30).status_code == 200

    log2 = tmp_path / "second.log"
    second = _serve(url, config, log2)
    try:
        _wait(lambda: (r := _row(db)) is not None and r.state == "bought", "the purchase recorded", second, log2)
        time.sleep(3)          # more passes: nothing else is bought
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
    row = _row(db)
    assert row is not None and row.state == "bought"
    ours = _tagged(mock_aws, row.token)
    assert len(ours) == 1 and ours[0]["CapacityReservationIds"] == [row.reservation_id]
    assert len(bf.blocks(mock_aws)) == 1
    with db.session() as s:
        how = [e.details.get("how") for e in audit.events(s, kind="purchase", subject=row.id)
               if e.action == "purchase-bought"]
    assert how == (["found by its token (bought before a restart)"] if moment == "after" else ["bought"])
