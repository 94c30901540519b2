"""`awan serve` on PostgreSQL with a runner process (controlplane/reconcile/runner.py): a real service on the
embedded mock clouds brings what is submitted to Running with the stack runs done by the runner, not the leader;
a runner killed alone is replaced under a new holder and the service keeps converging; SIGTERM drains the
runner with the loop (its "runner" lease released). On SQLite a runner is refused. Waits are on conditions
(log lines, store rows, /proc) with generous bounds."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from controlplane.store import audit
from controlplane.store import work_leases as wl
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from controlplane.store.models import Workload
from tests.controlplane.cli import served as served_base
from tests.controlplane.cli.served import alive, counter, serving
from tests.controlplane.store.dbfixture import PgSchema

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@dataclass
class Served(served_base.Served):
    def runners(self) -> list[tuple[int, str]]:
        """(pid, holder) of each runner process started, in order."""
        return [(int(str(e["pid"])), str(e["replica"])) for e in self.named("runner process running stacks")]

    def loop_pid(self) -> int:
        pids = [int(str(e["pid"])) for e in self.named("controller process reconciling")]
        return pids[-1] if pids else 0

    def submit(self, *names: str) -> None:
        body = "".join(f"- {{metadata: {{name: {n}}}, spec: {{kind: inference, gpus: {{model: H100, count: 1}}}}}}\n"
                       for n in names)
        r = httpx.post(f"{self.url}/v1/workloads", headers={"Authorization": f"Bearer {self.token}"}, timeout=60,
                       content=body)
        assert r.status_code == 201, r.text

    def running(self, *names: str) -> bool:
        with self.db.session() as s:
            got = dict(s.execute(select(Workload.name, Workload.state).where(Workload.name.in_(names))).all())
        return all(got.get(n) == "Running" for n in names)

    def provisioned_by(self) -> set[str]:
        with self.db.session() as s:
            return {e.actor for e in audit.events(s, kind="workload", limit=10_000) if e.action == "provisioning"}


@contextlib.contextmanager
def _served(tmp_path: Path, ttl_s: str, *args: str) -> Iterator[Served]:
    schema = PgSchema().create()
    d = Database.from_url(schema.url)
    upgrade(d.engine)
    d.dispose()
    try:
        with serving(Served, tmp_path, lambda s: s.loop_pid() != 0 and bool(s.runners()), "the loop and a runner",
                     args=args, db_url=schema.url, AWAN_RECONCILE_INTERVAL_S="1", AWAN_REPLICA_ID="svc",
                     AWAN_RUNNER_PROCESSES="1", AWAN_WORK_LEASE_TTL_S=ttl_s) as out:
            yield out
    finally:
        schema.drop()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with _served(tmp_path, "6") as out:
        yield out


def _live_leases(db: Database, holder: str) -> list[tuple[str, str]]:
    return [(kind, key) for kind in (wl.STACK, wl.RUNNER, wl.REPLICA, wl.OBSERVE, wl.DISPATCH, wl.SWEEP)
            for key, (h, _) in wl.held(db, kind).items() if h == holder]


def test_the_runner_runs_the_stacks_is_replaced_when_killed_and_drains_with_the_service(served: Served) -> None:
    (first, holder), = served.runners()
    assert holder.startswith("svc.runner0.") and first not in (served.proc.pid, served.loop_pid())
    served.wait(lambda: wl.count_live(served.db, wl.RUNNER) == 1, "the runner's lease")
    # The leader reads the runners' count again every third of the lease's life (WorkShare.runners): one
    # period after the lease is seen, any count it acts on was read after it.
    time.sleep(6 / 3 + 0.5)
    served.submit("a1", "a2", "a3")
    served.wait(lambda: served.running("a1", "a2", "a3"), "a1-a3 Running")
    assert served.provisioned_by() == {f"controller:{holder}"}, "the leader ran stacks beside a live runner"

    os.kill(first, signal.SIGKILL)
    served.wait(lambda: len(served.runners()) == 2, "another runner process")
    (second, holder2) = served.runners()[-1]
    assert holder2 != holder and alive(second)
    assert "runner process exited; starting another" in [e.get("event") for e in served.events]
    served.submit("b1", "b2")
    served.wait(lambda: served.running("b1", "b2"), "b1-b2 Running after the runner's restart")

    loop = served.loop_pid()
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(120) in (0, -signal.SIGTERM)
    served.wait(lambda: not alive(second) and not alive(loop), "the runner and the loop to exit", 60)
    assert [e.get("event") for e in served.events].count("stopping: no new work") >= 2   # both drained
    assert wl.count_live(served.db, wl.RUNNER) == 0      # the runner lease released, not left to expire


def test_a_runner_on_sqlite_is_refused(tmp_path: Path) -> None:
    r = subprocess.run([str(Path(sys.executable).with_name("awan")), "serve", "--mock", "--db",
                        f"sqlite:///{tmp_path}/a.db", "--port", "0"], cwd=tmp_path, capture_output=True, text=True,
                       env=dict(os.environ, AWAN_RUNNER_PROCESSES="1"), timeout=120)
    assert r.returncode != 0
    assert "AWAN_RUNNER_PROCESSES" in r.stderr + r.stdout and "Traceback" not in r.stderr


def test_a_killed_runners_leases_are_freed_by_the_service_at_once(tmp_path: Path) -> None:
    """SIGKILL of a runner: `awan serve` (its parent) frees the dead holder's work leases when it sees the
    exit, not after AWAN_WORK_LEASE_TTL_S (600 s here: without the release its "runner" and "replica" leases,
    and any stack it held, stay live that long and the wait below runs out)."""
    with _served(tmp_path, "600") as served:
        (first, holder), = served.runners()
        served.wait(lambda: ("runner", holder) in _live_leases(served.db, holder), "the runner's lease")
        served.submit("a1")
        served.wait(lambda: served.running("a1"), "a1 Running")
        os.kill(first, signal.SIGKILL)
        served.wait(lambda: not _live_leases(served.db, holder), "the dead runner's leases freed", 120)
        released = served.named("dead runner's work leases released")
        assert released and released[0]["holder"] == holder and int(str(released[0]["leases"])) >= 2
        served.wait(lambda: len(served.runners()) == 2, "another runner process")
        (_, holder2) = served.runners()[-1]
        served.wait(lambda: ("runner", holder2) in _live_leases(served.db, holder2), "the new runner's lease")
        assert wl.count_live(served.db, wl.RUNNER) == 1      # the dead one's no longer counts
        served.submit("b1")
        served.wait(lambda: served.running("b1"), "b1 Running after the runner's restart")


def test_with_api_workers_metrics_count_the_runners_stack_runs(tmp_path: Path) -> None:
    """`awan serve --workers 2`: each worker's /metrics asks the parent for the loop's metrics, which merge
    the runner's (its stack runs; the loop ran none here, so without the runner's the count stays 0)."""
    with _served(tmp_path, "6", "--workers", "2") as served:
        (_, holder), = served.runners()
        served.wait(lambda: wl.count_live(served.db, wl.RUNNER) == 1, "the runner's lease")
        time.sleep(6 / 3 + 0.5)      # the leader's count of the runners is read after the lease (as above)
        served.submit("m1", "m2")
        served.wait(lambda: served.running("m1", "m2"), "m1-m2 Running")
        assert served.provisioned_by() == {f"controller:{holder}"}, "the leader ran stacks beside a live runner"
        served.wait(lambda: counter(httpx.get(f"{served.url}/metrics", timeout=60).text, "awan_stack_runs") >= 1,
                    "the runner's stack runs in /metrics", 120)
