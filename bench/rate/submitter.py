"""Open-loop submitter: ``python -m bench.rate.submitter URL TOKEN RATE SECONDS PREFIX OUT [OFFSET STEP]
[--docs K] [--client raw|httpx]``.

Workload ``i`` (one one-GPU inference manifest) is due at ``start + i / RATE`` whether or not earlier
requests have answered: a slow service makes requests queue (counted in their latency from the due time),
never lowers the offered rate. ``--docs K`` sends K workloads per POST (one multi-document YAML body,
documents separated by ``---``): POST ``j`` holds workloads ``jK .. jK+K-1`` and is due when its last
workload is, so RATE stays workloads/s (POSTs/s = RATE / K) and a workload's time waiting for its batch
counts in its latency. ``OFFSET``/``STEP`` split one schedule over several processes (process k of n sends
POSTs j = k, k + n, ...). A file ``OUT + '.stop'`` ends the schedule early (the stall suite runs it until its
big submit has answered). Started as a process, it touches ``OUT.started`` once its client is ready and
waits for ``OUT.go`` to hold the schedule's start (wall clock). Writes JSON: per workload its due, its POST's
sent and answered wall times and status, and the CPU seconds this process used over the schedule.

``--client raw`` (the default, ``rawhttp``): asyncio streams over a fixed pool of keep-alive connections,
every request rendered before the schedule starts. ``--client httpx``: the earlier client (an
``httpx.AsyncClient`` with the same number of connections), kept to measure the two beside each other."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.rate import rawhttp

# Where the workloads may go and which GPUs they take: BENCH_RATE_WHERE / BENCH_RATE_GPUS widen them (cells
# whose workloads all fit the mock clouds' pools).
WHERE = os.environ.get("BENCH_RATE_WHERE", "['aws:*', 'gcp:*']")
GPUS = os.environ.get("BENCH_RATE_GPUS", "[H100, A100, L4]")
CONNECTIONS = 128          # per process
PATH = "/v1/workloads"
# Requests rendered before the schedule starts; a longer schedule (the stall suite's, ended by its stop file)
# renders the rest as they fall due.
PRERENDER = 50_000


def manifest(name: str, where: str | None = None, gpus: str | None = None) -> str:
    return (f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {name}}}\n"
            f"spec: {{kind: inference, gpus: {{model: {gpus or GPUS}, count: 1}}, capacityType: [on-demand], "
            f"location: {{regions: {where or WHERE}}}}}\n")


def batch(prefix: str, first: int, count: int) -> str:
    """``count`` manifests, names ``prefix + i`` from ``first``, as one multi-document YAML body."""
    return "---\n".join(manifest(f"{prefix}{i}") for i in range(first, first + count))


@dataclass(frozen=True, slots=True)
class Post:
    j: int
    first: int            # its first workload's index
    count: int
    due: float            # its last workload's due time


def posts(n: int, docs: int, rate: float, start: float, offset: int, step: int) -> list[Post]:
    """This process's POSTs of the schedule: ``n`` workloads, ``docs`` per POST, POSTs j = offset + k * step."""
    out = []
    for j in range(offset, -(-n // docs), step):
        first = j * docs
        count = min(docs, n - first)
        out.append(Post(j, first, count, start + (first + count - 1) / rate))
    return out


Send = Callable[[Post], Awaitable[tuple[int, str]]]


async def _wait_for_go(go: Path | None, start: float | None) -> float:
    if go is None:
        return start if start is not None else time.time() + 0.5
    go_file = Path(str(go) + ".go")
    Path(str(go) + ".started").touch()
    while not go_file.exists() or not go_file.read_text().strip():
        await asyncio.sleep(0.05)
    return float(go_file.read_text())


async def _schedule(plan: list[Post], send: Send, stop: Path, connections: int, rate: float, prefix: str,
                    rows: list[dict[str, Any]]) -> None:
    """Hand each POST to one of ``connections`` senders once it is due; a POST waits in the queue while every
    connection is busy (its "sent" is when one took it)."""
    queue: asyncio.Queue[Post | None] = asyncio.Queue()

    async def sender() -> None:
        while (p := await queue.get()) is not None:
            sent = time.time()
            status, err = await send(p)
            done = time.time()
            rows.extend({"i": i, "name": f"{prefix}{i}", "post": p.j, "docs": p.count, "due": p.due - (
                p.first + p.count - 1 - i) / rate, "post_due": p.due, "sent": sent, "done": done, "status": status,
                "error": err} for i in range(p.first, p.first + p.count))

    senders = [asyncio.create_task(sender()) for _ in range(connections)]
    for k, p in enumerate(plan):
        wait = p.due - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        if k % 50 == 0 and stop.exists():
            break
        queue.put_nowait(p)
    for _ in senders:
        queue.put_nowait(None)
    await asyncio.gather(*senders)


async def run(url: str, token: str, rate: float, seconds: float, prefix: str, stop: Path,
              offset: int = 0, step: int = 1, start: float | None = None, go: Path | None = None,
              docs: int = 1, client: str = "raw", connections: int = CONNECTIONS) -> dict[str, Any]:
    if docs < 1:
        raise ValueError(f"docs: at least 1 document per POST, got {docs}")
    n = int(rate * seconds)
    rows: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/yaml"}
    plan = posts(n, docs, rate, 0.0, offset, step)      # due times relative to a start not yet known
    if client == "raw":
        host, port = rawhttp.address(url)
        rendered = {p.j: rawhttp.render_post(host, port, PATH, batch(prefix, p.first, p.count).encode(), headers)
                    for p in plan[:PRERENDER]}
        pool: asyncio.Queue[rawhttp.Connection] = asyncio.Queue()
        for _ in range(connections):
            c = rawhttp.Connection(host, port)
            await c.open()
            pool.put_nowait(c)

        async def send(p: Post) -> tuple[int, str]:
            data = rendered.pop(p.j, None) or rawhttp.render_post(
                host, port, PATH, batch(prefix, p.first, p.count).encode(), headers)
            c = await pool.get()
            try:
                a = await c.request(data)
                return a.status, "" if a.status == 201 else a.body[:200].decode("utf-8", "replace")
            except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    rawhttp.ProtocolError, ValueError) as e:
                return 0, f"{type(e).__name__}: {e}"
            finally:
                pool.put_nowait(c)

        start = await _wait_for_go(go, start)
        cpu0 = time.process_time()
        await _schedule([Post(p.j, p.first, p.count, start + p.due) for p in plan], send, stop, connections, rate,
                        prefix, rows)
        cpu = time.process_time() - cpu0
        while not pool.empty():
            await pool.get_nowait().close()
    elif client == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300, limits=limits) as hc:

            async def send_httpx(p: Post) -> tuple[int, str]:
                try:
                    r = await hc.post(PATH, content=batch(prefix, p.first, p.count))
                    return r.status_code, "" if r.status_code == 201 else r.text[:200]
                except httpx.HTTPError as e:
                    return 0, f"{type(e).__name__}: {e}"

            start = await _wait_for_go(go, start)
            cpu0 = time.process_time()
            await _schedule([Post(p.j, p.first, p.count, start + p.due) for p in plan], send_httpx, stop,
                            connections, rate, prefix, rows)
            cpu = time.process_time() - cpu0
    else:
        raise ValueError(f"client: raw or httpx, got {client!r}")
    return {"rate": rate, "seconds": seconds, "offset": offset, "step": step, "start": start, "docs": docs,
            "client": client, "requests": rows, "cpu_s": cpu, "cpu_total_s": time.process_time()}


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.rate.submitter")
    for name in ("url", "token", "rate", "seconds", "prefix", "out"):
        ap.add_argument(name)
    ap.add_argument("offset", nargs="?", type=int, default=0)
    ap.add_argument("step", nargs="?", type=int, default=1)
    ap.add_argument("--docs", type=int, default=1, help="workloads per POST")
    ap.add_argument("--client", choices=("raw", "httpx"), default="raw")
    ap.add_argument("--connections", type=int, default=CONNECTIONS)
    a = ap.parse_args(argv)
    res = asyncio.run(run(a.url, a.token, float(a.rate), float(a.seconds), a.prefix, Path(a.out + ".stop"),
                          a.offset, a.step, go=Path(a.out), docs=a.docs, client=a.client, connections=a.connections))
    Path(a.out).write_text(json.dumps(res))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
