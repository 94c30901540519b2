"""`awan serve` runs its reconcile loop in a child process of its own (controlplane/reconcile/child.py): a real
service on the embedded mock clouds places what is submitted from that process, shows the loop's metrics and
leadership on its own /metrics and /readyz, drains it on SIGTERM, and takes it down when SIGKILLed. Waits
are on conditions (log lines, store rows, /proc) with generous bounds."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from controlplane.store.coltypes import utcnow
from controlplane.store.models import Lease, Workload
from tests.controlplane.cli import served as served_base
from tests.controlplane.cli.served import alive, counter, serving

pytestmark = pytest.mark.slow


@dataclass
class Served(served_base.Served):
    def child_pid(self) -> int:
        pids = [int(str(e["pid"])) for e in self.events if e.get("event") == "controller process reconciling"]
        return pids[-1] if pids else 0


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    interval = str(getattr(request, "param", "1"))    # AWAN_RECONCILE_INTERVAL_S
    with serving(Served, tmp_path, lambda s: s.child_pid() != 0, "the controller process",
                 AWAN_RECONCILE_INTERVAL_S=interval, AWAN_REPLICA_ID="child-test") as out:
        yield out


def test_the_loop_reconciles_from_its_own_process_and_drains_with_the_service(served: Served) -> None:
    child = served.child_pid()
    assert child != served.proc.pid and alive(child)
    r = httpx.post(f"{served.url}/v1/workloads", headers={"Authorization": f"Bearer {served.token}"}, timeout=60,
                   content="- {metadata: {name: a1}, spec: {kind: inference, gpus: {model: H100, count: 1}}}\n")
    assert r.status_code == 201, r.text

    def placed() -> bool:
        with served.db.session() as s:
            return s.scalar(select(Workload.state).where(Workload.name == "a1")) not in (None, "Pending")

    served.wait(placed, "a1 placed by the loop")
    # The loop's metrics and leadership, asked of the child, on the API's own endpoints.
    metrics = httpx.get(f"{served.url}/metrics", timeout=60).text
    assert 'awan_placements_total{result="placed"} 1.0' in metrics, metrics[:2000]
    assert 'awan_leader{replica="child-test"} 1.0' in metrics
    assert "awan_controller_process_cpu_seconds_total" in metrics
    assert httpx.get(f"{served.url}/readyz", timeout=60).json()["leader"] is True

    served.proc.send_signal(signal.SIGTERM)
    rc = served.proc.wait(120)
    exited = utcnow()
    assert rc in (0, -signal.SIGTERM)
    served.wait(lambda: not alive(child), "the controller process to exit", 60)
    assert "stopping: no new work" in [e.get("event") for e in served.events]
    with served.db.session() as s:
        lease = s.get(Lease, "reconciler")
    assert lease is not None and lease.holder == "child-test"
    if not any(str(e.get("event", "")).startswith("shutdown grace over") for e in served.events):
        assert lease.expires_at <= exited     # drained: released at once


@pytest.mark.parametrize("served", ["900"], indirect=True)
def test_a_submit_wakes_the_loop_in_its_own_process_long_before_its_interval(served: Served) -> None:
    """The API process pokes the controller process (the wake socket `awan serve` made and passed on): with a
    900 s interval, each workload is placed by a pass its submit woke (fails without the wake: on SQLite
    nothing else wakes the loop, the second workload would wait for the interval)."""
    def submit_and_place(name: str) -> None:
        r = httpx.post(f"{served.url}/v1/workloads", headers={"Authorization": f"Bearer {served.token}"},
                       timeout=60, content=f"- {{metadata: {{name: {name}}}, spec: {{kind: inference, "
                                           "gpus: {model: H100, count: 1}}}\n")
        assert r.status_code == 201, r.text

        def placed() -> bool:
            with served.db.session() as s:
                return s.scalar(select(Workload.state).where(Workload.name == name)) not in (None, "Pending")

        served.wait(placed, f"{name} placed by a woken pass", bound_s=400)

    submit_and_place("w1")     # the first pass may have run before this replica led: the submit wakes one
    submit_and_place("w2")
    # both placed within 800 s of bounded waits, under the 900 s interval: and by a woken (placing) pass
    metrics = httpx.get(f"{served.url}/metrics", timeout=60).text
    assert counter(metrics, "awan_reconcile_woken_passes") >= 1, "placed by interval passes, not a woken one"


def test_a_sigkilled_service_takes_its_controller_process_with_it(served: Served) -> None:
    child = served.child_pid()
    assert alive(child)
    served.proc.send_signal(signal.SIGKILL)
    served.proc.wait(60)
    served.wait(lambda: not alive(child), "the orphaned controller process to die", 60)


def test_a_controller_process_that_dies_alone_is_replaced(served: Served) -> None:
    first = served.child_pid()
    os.kill(first, signal.SIGKILL)
    served.wait(lambda: served.child_pid() not in (0, first), "another controller process")
    assert served.proc.poll() is None and alive(served.child_pid())
    assert "controller process exited; starting another" in [e.get("event") for e in served.events]


def test_inline_keeps_one_process() -> None:
    from controlplane.cli.service_cmds import loop_factory
    from controlplane.settings import Settings

    assert loop_factory(Settings(controller_process="inline")) is None
    assert loop_factory(Settings(reconcile=False)) is None
    assert loop_factory(Settings()) is not None
