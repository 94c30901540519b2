"""Open-loop submitter: ``python -m bench.rate.submitter URL TOKEN RATE SECONDS PREFIX OUT [OFFSET STEP]``.

Workload ``i`` (one one-GPU inference manifest, one POST each) is due at ``start + i / RATE`` whether or
not earlier requests have answered: a slow service makes requests queue (counted in their latency from the
due time), never lowers the offered rate. ``OFFSET``/``STEP`` split one schedule over several processes
(process k of n sends i = k, k + n, ...). A file ``OUT + '.stop'`` ends the schedule early (the stall suite
runs it until its big submit has answered). Started as a process, it touches ``OUT.started`` once its
client is ready and waits for ``OUT.go`` to hold the schedule's start (wall clock). Writes JSON: per request its due, sent and answered wall
times and status."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

# Where the workloads may go: BENCH_RATE_WHERE widens it (a 1,000/s cell whose 5,000 workloads fit the clouds).
WHERE = os.environ.get("BENCH_RATE_WHERE", "['aws:*', 'gcp:*']")
CONNECTIONS = 128          # per process


def manifest(name: str) -> str:
    return (f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {name}}}\n"
            f"spec: {{kind: inference, gpus: {{model: [H100, A100, L4], count: 1}}, capacityType: [on-demand], "
            f"location: {{regions: {WHERE}}}}}\n")


async def run(url: str, token: str, rate: float, seconds: float, prefix: str, stop: Path,
              offset: int = 0, step: int = 1, start: float | None = None, go: Path | None = None) -> dict[str, Any]:
    n = int(rate * seconds)
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    rows: list[dict[str, Any]] = []
    start = start if start is not None else time.time() + 0.5

    # Requests wait for a connection here, not in httpx's pool: its queue is scanned per request against
    # every connection, which with thousands queued kept this process busy and the service idle.
    slots = asyncio.Semaphore(CONNECTIONS)

    async def one(c: httpx.AsyncClient, i: int, due: float) -> None:
        async with slots:
            await send(c, i, due)

    async def send(c: httpx.AsyncClient, i: int, due: float) -> None:
        sent = time.time()
        try:
            r = await c.post("/v1/workloads", content=manifest(f"{prefix}{i}"),
                             headers={"Content-Type": "application/yaml"})
            status, err = r.status_code, "" if r.status_code == 201 else r.text[:200]
        except httpx.HTTPError as e:
            status, err = 0, f"{type(e).__name__}: {e}"
        rows.append({"i": i, "name": f"{prefix}{i}", "due": due, "sent": sent, "done": time.time(),
                     "status": status, "error": err})

    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=300,
                                 limits=limits) as c:
        if go is not None:      # every process of the schedule is up: the caller writes the start time
            go_file = Path(str(go) + ".go")
            Path(str(go) + ".started").touch()
            while not go_file.exists() or not go_file.read_text().strip():
                await asyncio.sleep(0.05)
            start = float(go_file.read_text())
        tasks: list[asyncio.Task[None]] = []
        for i in range(offset, n, step):
            due = start + i / rate
            wait = due - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if i % 50 == offset % 50 and stop.exists():
                break
            tasks.append(asyncio.create_task(one(c, i, due)))
        await asyncio.gather(*tasks)
    return {"rate": rate, "seconds": seconds, "offset": offset, "step": step, "start": start, "requests": rows,
            "cpu_s": time.process_time()}


def main(argv: list[str]) -> None:
    url, token, rate, seconds, prefix, out = argv[:6]
    offset, step = (int(argv[6]), int(argv[7])) if len(argv) > 7 else (0, 1)
    res = asyncio.run(run(url, token, float(rate), float(seconds), prefix, Path(out + ".stop"), offset, step,
                          go=Path(out)))
    Path(out).write_text(json.dumps(res))


if __name__ == "__main__":
    main(sys.argv[1:])
