"""CPU time a submit costs the API process: a real uvicorn (``bench.api.serve``) of a given source tree in a
subprocess, ``n`` one-document submits (the rate suite's manifest, one POST each) from ``clients`` threads,
and the server process's user + system CPU over them read from /proc (its own, not the client's).

CPU time, not wall time: on a machine other work shares it is the figure that stays put. A warm-up of
submits first (the token's scrypt, first-use imports and caches) is not counted."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.api.service import free_port, stop, wait_healthy

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def manifest(name: str) -> str:
    """The rate suite's submit (bench/rate/submitter.py): one one-GPU inference workload."""
    return (f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {name}}}\n"
            f"spec: {{kind: inference, gpus: {{model: [H100, A100, L4], count: 1}}, capacityType: [on-demand], "
            f"location: {{regions: ['aws:*', 'gcp:*']}}}}\n")


def process_cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` (every thread of it), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


@dataclass(slots=True)
class CpuResult:
    db: str
    tree: str
    submits: int
    clients: int
    errors: int
    cpu_s: float
    wall_s: float
    cpu_ms_per_submit: float
    first_error: str = ""


# ``bench.api.serve`` of the tree, with logging configured as `awan serve` configures it (at WARNING, as the
# rate suite runs it: an event below the level is dropped by the first processor, not rendered and dropped).
_SERVE = ("import sys; from controlplane.logs import configure_logging; configure_logging('WARNING'); "
          "from bench.api.serve import main; main(sys.argv[1:])")


@contextlib.contextmanager
def serve(tree: Path, db_url: str, cores: str) -> Iterator[tuple[str, int]]:
    """uvicorn of ``tree``'s service on ``db_url`` (no reconcile loop), with a wake socket path set so a
    submit pays for its poke as in `awan serve` (nobody listens: the send fails at once, as it may there)."""
    port = free_port()
    wake = Path(tempfile.mkdtemp(prefix="awan-bench-wake-")) / "wake"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH", "")])),
           "AWAN_WAKE_SOCKET": str(wake)}
    proc = subprocess.Popen([sys.executable, "-c", _SERVE, db_url, str(port), cores], cwd=tree, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url, 120)
        yield url, proc.pid
    finally:
        stop(proc)
        with contextlib.suppress(OSError):
            wake.parent.rmdir()


def submit_many(url: str, token: str, n: int, clients: int, prefix: str) -> tuple[int, str]:
    """``n`` submits of new workloads from ``clients`` threads; (errors, first error)."""
    counter = itertools.count()
    lock = threading.Lock()
    bad: list[str] = []

    def worker() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/yaml"}, timeout=120) as c:
            while (i := next(counter)) < n:
                try:
                    r = c.post("/v1/workloads", content=manifest(f"{prefix}{i}"))
                    why = "" if r.status_code == 201 else f"HTTP {r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as e:
                    why = f"{type(e).__name__}: {e}"
                if why:
                    with lock:
                        bad.append(why)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(bad), bad[0] if bad else ""


def measure(tree: Path, db: str, db_url: str, token: str, n: int, clients: int, warmup: int,
            cores: str) -> CpuResult:
    with serve(tree, db_url, cores) as (url, pid):
        submit_many(url, token, warmup, clients, "warm-")
        c0, t0 = process_cpu_s(pid), time.perf_counter()
        errors, first = submit_many(url, token, n, clients, "cpu-")
        cpu, wall = process_cpu_s(pid) - c0, time.perf_counter() - t0
    return CpuResult(db=db, tree=str(tree), submits=n, clients=clients, errors=errors, cpu_s=round(cpu, 3),
                     wall_s=round(wall, 3), cpu_ms_per_submit=round(1000 * cpu / n, 3), first_error=first)
