"""`awan serve --workers 2` (controlplane/api/workers.py): a real service on the embedded mock clouds whose two
API processes share one port and one controller process. Submissions land on both workers, /metrics counts
what both answered whichever of them is scraped, SIGTERM drains all three processes, and a SIGKILLed parent
takes them all down. Waits are on conditions (log lines, sockets, /proc) with generous bounds."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from controlplane.api import peers
from controlplane.store.db import Database
from controlplane.store.models import Workload
from tests.controlplane.cli import served as served_base
from tests.controlplane.cli.served import alive, counter, nice, serving

pytestmark = pytest.mark.slow


@dataclass
class Served(served_base.Served):
    def workers(self) -> list[dict[str, object]]:
        return self.named("api worker serving")


def _posts_answered(exposition: bytes) -> float:
    for f in text_string_to_metric_families(exposition.decode()):
        if f.name == "awan_http_requests":
            return sum(s.value for s in f.samples if s.name == "awan_http_requests_total"
                       and s.labels.get("method") == "POST" and s.labels.get("status") == "201")
    return 0.0


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    interval = str(getattr(request, "param", "1"))      # the loop's interval, s (parametrize indirectly)
    with serving(Served, tmp_path, lambda s: len(s.workers()) == 2
                 and len(s.named("controller process reconciling")) == 1, "two workers and the controller process",
                 ("--workers", "2"), AWAN_RECONCILE_INTERVAL_S=interval, AWAN_REPLICA_ID="workers-test") as out:
        run_dir = Path(str(out.workers()[0]["run_dir"]))
        out.wait(lambda: len(list(run_dir.glob("worker-*.sock"))) == 2 or out.proc.poll() is not None,
                 "both workers' startup")
        assert out.proc.poll() is None, out.events[-8:]
        yield out


def test_two_workers_share_the_port_one_loop_and_one_metrics_and_drain_on_sigterm(served: Served) -> None:
    workers = served.workers()
    pids = {int(str(w["pid"])) for w in workers}
    assert len(pids) == 2 and served.proc.pid not in pids
    run_dir = Path(str(workers[0]["run_dir"]))
    sent, each = _submit_until_both_answer(served, "w", threads=8, batch=40, most=2000)
    assert sum(each) == sent, (each, sent)

    # Every scrape counts both workers' answers and the loop's placements, whichever worker answers it.
    served.wait(lambda: _placed(served.db) >= sent, "the submitted workloads placed by the one loop")
    for _ in range(4):
        text = httpx.get(f"{served.url}/metrics", timeout=60).text
        assert _posts_answered(text.encode()) == sent
        assert 'awan_leader{replica="workers-test"} 1.0' in text
        assert "awan_controller_process_cpu_seconds_total" in text
        families = [f.name for f in text_string_to_metric_families(text)]
        assert len(families) == len(set(families))
    assert httpx.get(f"{served.url}/readyz", timeout=60).json()["leader"] is True
    assert len(served.named("controller process reconciling")) == 1
    assert len(served.named("reconcile loop started")) == 1
    # The controller process runs AWAN_BACKGROUND_NICE (0, off, by default) below the API workers
    # (controlplane/priority.py; set, it is test_serve_background_nice's).
    base = nice(served.proc.pid)
    controller = int(str(served.named("controller process reconciling")[0]["pid"]))
    assert {nice(controller)} == {nice(int(str(w["pid"]))) for w in workers} == {base}

    children = served.children()
    served.proc.send_signal(signal.SIGTERM)
    rc = served.proc.wait(120)
    assert rc == 0, served.events[-8:]
    served.wait(lambda: not any(alive(p) for p in children), "every child to exit", 60)
    assert "stopping: no new work" in [e.get("event") for e in served.events]
    assert served.named("stopped")
    assert not run_dir.exists()


@pytest.mark.parametrize("served", ["3600"], indirect=True)
def test_submits_through_either_worker_wake_the_one_loop(served: Served) -> None:
    """The wake socket `awan serve` makes reaches the workers: with an interval no test outlives, what either
    worker accepted is placed by woken passes of the one controller process."""
    def metric(name: str) -> float:
        return counter(httpx.get(f"{served.url}/metrics", timeout=60).text, name)

    # Woken passes place only in a term that has run an interval pass, and `awan_reconcile_ticks` counts a
    # pass when it starts: a submit seen by the first pass's own placement (on a slow machine it reads the
    # clouds for seconds first) is placed with no woken pass at all. So one submit first, and the rest only
    # once a woken pass has run, which is after the first interval pass has ended.
    served.wait(lambda: metric("awan_reconcile_ticks") >= 1, "the first interval pass")
    _submit_until_both_answer(served, "first", threads=1, batch=1, most=1, both=False)
    served.wait(lambda: metric("awan_reconcile_woken_passes") >= 1 and _placed(served.db) >= 1,
                "the first submit placed and a woken pass run")
    ticks, woken = metric("awan_reconcile_ticks"), metric("awan_reconcile_woken_passes")

    sent, _ = _submit_until_both_answer(served, "wake", threads=4, batch=8, most=400)

    served.wait(lambda: _placed(served.db) >= sent + 1,
                "the submits through both workers placed before the 3,600 s interval")
    # placed by passes their wakes ran, with no interval pass since
    assert metric("awan_reconcile_woken_passes") > woken
    assert metric("awan_reconcile_ticks") == ticks


def _submit_until_both_answer(served: Served, prefix: str, threads: int, batch: int, most: int, both: bool = True
                              ) -> tuple[int, list[float]]:
    """One-GPU submits, a connection each (the kernel hands each new connection to one of the workers), in
    batches until each worker has answered some (``both``; else ``most``); how many were sent and each
    worker's count of them."""
    sockets = sorted(Path(str(served.workers()[0]["run_dir"])).glob("worker-*.sock"))
    headers = {"Authorization": f"Bearer {served.token}"}

    def submit(i: int) -> int:
        body = f"- {{metadata: {{name: {prefix}{i}}}, spec: {{kind: inference, gpus: {{model: L4, count: 1}}}}}}\n"
        # A refused connect is tried again (httpx's connect retries: nothing was sent, so nothing is submitted
        # twice). One connect of the submits was refused once, on a slow-suite run with the service up and
        # answering the others (2026-12-01, no listen overflow counted; not explained): what real clients do.
        with httpx.Client(transport=httpx.HTTPTransport(retries=2), timeout=120) as client:
            return client.post(f"{served.url}/v1/workloads", headers=headers, content=body).status_code

    sent, each = 0, [0.0]
    with ThreadPoolExecutor(threads) as pool:
        while sent < most:
            assert set(pool.map(submit, range(sent, sent + batch))) == {201}
            sent += batch
            each = [_posts_answered(peers.ask(s, "metrics") or b"") for s in sockets]
            if both and all(n > 0 for n in each):
                break
    assert len(each) == 2 and (not both or all(n > 0 for n in each)), (each, sent)
    return sent, each


def _placed(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Workload).where(Workload.placed_at.is_not(None))) or 0


def test_a_sigkilled_parent_takes_its_workers_and_its_controller_process_with_it(served: Served) -> None:
    children = served.children()
    assert len(children) == 3 and all(alive(p) for p in children)
    served.proc.send_signal(signal.SIGKILL)
    served.proc.wait(60)
    served.wait(lambda: not any(alive(p) for p in children), "the orphaned children to die", 60)


def test_a_worker_that_dies_alone_is_replaced(served: Served) -> None:
    first = int(str(served.workers()[0]["pid"]))
    os.kill(first, signal.SIGKILL)
    served.wait(lambda: len(served.workers()) == 3, "another worker")
    assert "api worker exited; starting another" in [e.get("event") for e in served.events]
    served.wait(lambda: httpx.get(f"{served.url}/readyz", timeout=60).status_code == 200, "the service ready")
    assert served.proc.poll() is None
