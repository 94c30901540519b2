"""Closed-loop load: ``clients`` threads, each with its own httpx client, doing one operation back to back
for a fixed time; every request timed alone."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from bench.machine import percentile


@dataclass(slots=True)
class LoadResult:
    op: str
    clients: int
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    first_error: str = ""


def manifest(name: str) -> str:
    return (f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {name}}}\n"
            "spec: {kind: inference, gpus: {model: H100, count: 8, perNode: 8}}\n")


def run_load(base_url: str, token: str, op: str, clients: int, seconds: float, prefix: str) -> LoadResult:
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + seconds

    def request(c: httpx.Client) -> httpx.Response:
        if op == "submit":
            return c.post("/v1/workloads", content=manifest(f"{prefix}-{next(counter)}"),
                          headers={"Content-Type": "application/yaml"})
        return c.get("/v1/workloads", params={"limit": 100})

    def worker(do: Callable[[httpx.Client], httpx.Response]) -> None:
        mine: list[float] = []
        bad: list[str] = []
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    r = do(c)
                    ok = r.status_code in (200, 201)
                    why = "" if ok else f"HTTP {r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as e:
                    ok, why = False, f"{type(e).__name__}: {e}"
                dt = time.perf_counter() - t0
                if ok:
                    mine.append(dt)
                else:
                    bad.append(why)
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(request,)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = sorted(latencies)
    return LoadResult(op=op, clients=clients, requests=len(lat), errors=len(errors), seconds=round(wall, 3),
                      rps=round(len(lat) / wall, 1) if wall else 0.0,
                      p50_ms=round(1000 * percentile(lat, 50), 2), p99_ms=round(1000 * percentile(lat, 99), 2),
                      first_error=errors[0] if errors else "")
