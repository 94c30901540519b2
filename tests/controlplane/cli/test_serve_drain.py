"""SIGTERM drains a real `awan serve` holding thousands of workloads: it stops taking work at once, gives
running stack runs the grace period, and releases the lease when nothing was cut short (else leaves it to
expire, as after a crash). Waits are on conditions (log lines, store rows) with generous bounds; the drain
time itself is a benchmark figure (BENCHMARKS.md), not asserted here."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from controlplane.api import workload_service as svc
from controlplane.auth import create_token
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from controlplane.store.models import Lease, Workload

HOLD = 2000
STARTUP_BOUND_S = 900.0    # mock clouds and a first pass over HOLD workloads, on a busy machine
EXIT_BOUND_S = 120.0       # a hang guard, far above the grace


def _awan() -> str:
    return str(Path(sys.executable).with_name("awan"))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_sigterm_with_thousands_of_workloads_stops_work_and_releases_the_lease(tmp_path):
    url = f"sqlite:///{tmp_path}/awan.db"
    db = Database.from_url(url)
    upgrade(db.engine)
    with db.session() as s:
        _, who = create_token(s, "research", "member")
    body = "".join(f"- {{metadata: {{name: w{i}}}, spec: {{kind: inference, gpus: {{model: H100, count: 1}}}}}}\n"
                   for i in range(HOLD))
    svc.submit(db, who, body, "test")
    env = dict(os.environ, AWAN_LOG_FORMAT="json", AWAN_SHUTDOWN_GRACE_S="5", AWAN_RECONCILE_INTERVAL_S="1",
               AWAN_REPLICA_ID="drain-test")
    proc = subprocess.Popen([_awan(), "serve", "--mock", "--db", url, "--port", str(_port())], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    events: list[str] = []
    reader = threading.Thread(target=lambda: events.extend(
        json.loads(line).get("event", "") if line.startswith("{") else line for line in proc.stdout or ()),
        daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + STARTUP_BOUND_S
        busy = False
        while not busy and time.monotonic() < deadline and proc.poll() is None:
            with db.session() as s:   # leading, and working through the held workloads
                lease = s.get(Lease, "reconciler")
                moved = s.scalar(select(func.count()).where(Workload.state != "Pending"))
            busy = bool(lease and lease.holder == "drain-test" and moved)
            time.sleep(0.5)
        assert busy, f"the service never started placing: {events[-5:]}"
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(EXIT_BOUND_S)
        exited = utcnow()
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    assert rc in (0, -signal.SIGTERM), events[-10:]
    assert "stopping: no new work" in events
    cut_short = any(e.startswith("shutdown grace over") for e in events)
    with db.session() as s:
        lease = s.get(Lease, "reconciler")
        locked = s.scalar(select(func.count()).where(Workload.lock_token.is_not(None)))
        held = s.scalar(select(func.count()).select_from(Workload))
    assert held == HOLD      # nothing lost
    assert lease is not None and lease.holder == "drain-test"
    if not cut_short:
        # Drained: released at once (a successor need not wait for the expiry), no row locks left.
        assert lease.expires_at <= exited
        assert locked == 0
    db.dispose()
