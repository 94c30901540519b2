"""``python -m bench --suite growth``: do submit and list stay flat as the store grows (issue 12)?

For this tree and a peer tree (``--growth-peer``: a checkout of another revision, e.g. ``git worktree add
--detach ../peer main``), on each database kind (``--growth-db``: SQLite files, PostgreSQL databases created
on ``--growth-pg-url`` and dropped afterwards), a real service per tree and database in its own process (the
API alone: ``bench.api.serve`` of that tree, which runs that tree's migrations). The store is filled with
bulk INSERTs to each size in turn (``--growth-sizes``; half the rows the bench token's team's, the rest
other teams'; states cycle Running, Pending, Succeeded, Deleted; PostgreSQL is then ``VACUUM ANALYZE``d as
autovacuum would), then one client times, through HTTP as users see it, one request after another:

- ``submit``: one one-GPU document per POST;
- ``list``: the first page of 100; ``list-deep``: a page of 100 after a cursor 90% of the way through;
- ``list-state`` / ``list-state-deep``: the same with ``?state=Pending``.

``--growth-runs`` runs per size, each tree's measurements alternated with the peer's in the same minutes;
p50/p99 per run and the median of the runs. ``--growth-mode cpu``: the same operations on the app in the
measuring process (``bench/growth/cpu.py``, no server), with the process CPU time per request beside.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Table, func, insert, select, text

from bench.api.load import manifest
from bench.api.service import REPO, fresh_database
from bench.machine import machine_info, percentile, write_results
from bench.stall.run import _env, _token, serve
from controlplane.store.db import Database
from controlplane.store.models import Workload

_STATES = ("Running", "Pending", "Succeeded", "Deleted")


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--growth-peer", type=Path, default=None,
                       help="a checkout of the revision to compare with (e.g. a detached worktree of main)")
    group.add_argument("--growth-db", default="sqlite,postgresql", help="database kinds, comma-separated")
    group.add_argument("--growth-pg-url", default=os.environ.get("AWAN_TEST_PG_URL",
                                                                "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    group.add_argument("--growth-sizes", default=None, help="stored workloads, comma-separated "
                                                           "(default 1000,10000,100000)")
    group.add_argument("--growth-runs", type=int, default=None, help="runs per size (default 3)")
    group.add_argument("--growth-requests", type=int, default=None, help="requests per operation and run (default 150)")
    group.add_argument("--growth-mode", choices=("http", "cpu"), default="http",
                       help="http: a served app, one client over loopback; cpu: the app in the measuring process "
                            "(bench/growth/cpu.py), CPU time per request")


def fill(db_url: str, upto: int) -> None:
    """Bulk INSERTs through the store's table up to ``upto`` workloads (the columns are the same in both
    trees)."""
    db = Database.from_url(db_url)
    try:
        table: Table = Workload.__table__  # type: ignore[assignment]
        with db.session() as s:
            have = int(s.scalar(select(func.count()).select_from(table)) or 0)
        spec = {"apiVersion": "awan.dev/v1alpha1", "kind": "GPUWorkload", "metadata": {"name": "x"},
                "spec": {"kind": "inference", "gpus": {"model": "H100", "count": 1}}}
        for lo in range(have, upto, 5000):
            with db.session() as s:
                at = datetime.now(UTC)
                s.execute(insert(table), [
                    {"name": f"fill{i}", "team": "bench" if i % 2 == 0 else f"other{i % 7}", "spec": spec,
                     "priority": 0, "gpus": 1, "state": _STATES[(i // 2) % 4], "message": "", "generation": 1,
                     "observed_generation": 1, "created_at": at, "updated_at": at}
                    for i in range(lo, min(upto, lo + 5000))])
        if db.dialect == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("VACUUM ANALYZE workloads"))
    finally:
        db.dispose()


def _cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def _deep_id(db_url: str) -> int:
    """An id 90% of the way through the stored rows: the deep page's cursor."""
    db = Database.from_url(db_url)
    try:
        with db.session() as s:
            top = int(s.scalar(select(func.max(Workload.id))) or 0)
        return int(top * 0.9)
    finally:
        db.dispose()


def _request(c: httpx.Client, op: str, i: int, deep: int, prefix: str) -> httpx.Response:
    if op == "submit":
        return c.post("/v1/workloads", content=manifest(f"{prefix}{i}"), headers={"Content-Type": "application/yaml"})
    params: dict[str, Any] = {"limit": 100}
    if op.startswith("list-state"):
        params["state"] = "Pending"
    if op.endswith("deep"):
        params["cursor"] = _cursor(deep)
    return c.get("/v1/workloads", params=params)


def measure_op(c: httpx.Client, op: str, n: int, deep: int, prefix: str) -> dict[str, Any]:
    lat: list[float] = []
    errors = 0
    for i in range(n):
        t0 = time.perf_counter()
        r = _request(c, op, i, deep, prefix)
        dt = time.perf_counter() - t0
        if r.status_code in (200, 201):
            lat.append(dt)
        else:
            errors += 1
    lat.sort()
    return {"requests": len(lat), "errors": errors, "p50_ms": round(1000 * percentile(lat, 50), 2),
            "p99_ms": round(1000 * percentile(lat, 99), 2)}


_OPS = ("submit", "list", "list-deep", "list-state", "list-state-deep")


@contextlib.contextmanager
def _service(tree: Path, kind: str, pg_url: str, served: bool = True) -> Iterator[tuple[str, str, str]]:
    with fresh_database(kind, pg_url) as db_url:
        token = _token(tree, db_url)     # runs the tree's migrations
        if not served:
            yield db_url, "", token
            return
        with serve(tree, db_url) as url:
            yield db_url, url, token


def _cpu_cells(tree: Path, db_url: str, token: str, n: int, deep: int) -> dict[str, dict[str, Any]]:
    out = subprocess.run([sys.executable, str(REPO / "bench" / "growth" / "cpu.py"), db_url, token, str(n), str(deep)],
                         cwd=tree, env=_env(tree), check=True, capture_output=True, text=True)
    cells: dict[str, dict[str, Any]] = json.loads(out.stdout.strip().splitlines()[-1])
    return cells


def main(args: argparse.Namespace) -> int:
    kinds = [k for k in args.growth_db.split(",") if k]
    sizes = [int(x) for x in (args.growth_sizes or ("100,1000" if args.quick else "1000,10000,100000")).split(",")]
    runs = args.growth_runs or (1 if args.quick else 3)
    n = args.growth_requests or (20 if args.quick else 150)
    trees = [("this", REPO)] + ([("peer", args.growth_peer.resolve())] if args.growth_peer else [])
    result: dict[str, Any] = {"suite": "growth", "machine": machine_info(None), "sizes": sizes, "runs": runs,
                              "requests": n, "trees": {t: str(p) for t, p in trees}, "cells": [],
                              "load_before": os.getloadavg()}
    cpu = args.growth_mode == "cpu"
    for kind in kinds:
        with contextlib.ExitStack() as stack:
            services = {t: stack.enter_context(_service(p, kind, args.growth_pg_url, served=not cpu)) for t, p in trees}
            clients = {} if cpu else {
                t: stack.enter_context(httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {tok}"}))
                for t, (_, url, tok) in services.items()}
            for c in clients.values():   # the token verified (and cached) before timing
                c.get("/v1/workloads", params={"limit": 1}).raise_for_status()
            for size in sizes:
                for t, (db_url, _, _) in services.items():
                    t0 = time.perf_counter()
                    fill(db_url, size)
                    print(f"growth: {kind} {t} filled to {size:,} in {time.perf_counter() - t0:.1f} s", flush=True)
                deep = {t: _deep_id(db_url) for t, (db_url, _, _) in services.items()}
                for run in range(runs):
                    for t, path in trees:
                        load0 = os.getloadavg()[0]
                        if cpu:
                            db_url, _, tok = services[t]
                            got = _cpu_cells(path, db_url, tok, n, deep[t])
                        else:
                            got = {op: measure_op(clients[t], op, n, deep[t], f"g{size}-r{run}-") for op in _OPS}
                        for op in _OPS:
                            cell = {"db": kind, "tree": t, "stored": size, "run": run, "op": op, **got[op],
                                    "load_before": load0, "load_after": os.getloadavg()[0]}
                            result["cells"].append(cell)
                            extra = f" cpu {cell['cpu_ms']} ms/request" if cpu else f" ({cell['errors']} errors)"
                            print(f"growth: {kind} {t} {size:,} run {run + 1} {op}: p50 {cell['p50_ms']} ms "
                                  f"p99 {cell['p99_ms']} ms{extra}; load {load0:.1f}", flush=True)
    result["load_after"] = os.getloadavg()
    result["median"] = _medians(result["cells"])
    for row in result["median"]:
        print(f"growth: median {row['db']} {row['tree']} {row['stored']:,} {row['op']}: p50 {row['p50_ms']} ms "
              f"p99 {row['p99_ms']} ms{' cpu ' + str(row['cpu_ms']) + ' ms' if 'cpu_ms' in row else ''}", flush=True)
    path = write_results(args.results_dir, "growth", result)
    print(f"growth: results in {path}", flush=True)
    return 0


def _medians(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, int, str], list[dict[str, Any]]] = {}
    for c in cells:
        groups.setdefault((c["db"], c["tree"], c["stored"], c["op"]), []).append(c)
    return [{"db": d, "tree": t, "stored": s, "op": o,
             "p50_ms": round(statistics.median(c["p50_ms"] for c in g), 2),
             "p99_ms": round(statistics.median(c["p99_ms"] for c in g), 2),
             **({"cpu_ms": round(statistics.median(c["cpu_ms"] for c in g), 2)} if "cpu_ms" in g[0] else {}),
             "load": [c["load_before"] for c in g]}
            for (d, t, s, o), g in groups.items()]
