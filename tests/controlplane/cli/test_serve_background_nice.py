"""`awan serve` runs the work beside the API at ``AWAN_BACKGROUND_NICE`` below it
(controlplane/priority.py): a real service on the embedded mock clouds whose controller process and
large-submit parse worker run, every thread of them, at the configured nice value, while the API process's
main thread (its event loop) stays at 0. Linux only (/proc; the nice value is per thread there). Waits are on
conditions with generous bounds."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.controlplane.cli import served as served_base
from tests.controlplane.cli.served import alive, nice, serving, spawned_children, thread_nices

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and per-thread nice values")]

NICE = 7        # not the default (10): the value comes from the setting


@dataclass
class Served(served_base.Served):
    def controller(self) -> int:
        pids = [int(str(e["pid"])) for e in self.named("controller process reconciling")]
        return pids[-1] if pids else 0


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    assert nice(os.getpid()) < 19 - NICE, "the test's own process is niced too far to tell the difference"
    with serving(Served, tmp_path, lambda s: s.controller() != 0, "the controller process",
                 AWAN_BACKGROUND_NICE=str(NICE), AWAN_REPLICA_ID="nice-test") as out:
        try:
            yield out
        finally:
            for pid in spawned_children(out.proc.pid):
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


def test_the_controller_process_and_the_parse_worker_run_below_the_api(served: Served) -> None:
    base = nice(served.proc.pid)       # the API process's main thread: what the service was started at
    want = min(19, base + NICE)
    controller = served.controller()
    assert set(thread_nices(controller)) == {want}, f"controller threads: {thread_nices(controller)}"

    # A body over 64 KiB goes to the parse worker (parsepool.py), which starts on the first one.
    body = "".join(f"- {{metadata: {{name: n{i}}}, spec: {{kind: inference, gpus: {{model: H100, count: 1}}}}}}\n"
                   for i in range(1000))
    assert len(body) >= 64 * 1024
    r = httpx.post(f"{served.url}/v1/workloads", headers={"Authorization": f"Bearer {served.token}"}, timeout=300,
                   content=body)
    assert r.status_code == 201, r.text[:500]
    workers = [p for p in spawned_children(served.proc.pid) if p != controller]
    assert workers, "no parse worker after a large submit"
    for w in workers:
        assert set(thread_nices(w)) == {want}, f"parse worker {w} threads: {thread_nices(w)}"

    # The API answers at the priority it was started at: its event loop (the main thread) and every thread.
    api = thread_nices(served.proc.pid)
    assert nice(served.proc.pid) == base
    assert set(api) == {base}, f"API threads: {api}"
    assert httpx.get(f"{served.url}/healthz", timeout=60).status_code == 200
