"""``python -m bench --suite api``: API throughput and latency, and reconcile throughput.

API: a real uvicorn in a subprocess on a loopback port (pinned off the load generator's core where
there are two), a fresh database each (SQLite file; a new PostgreSQL database, dropped afterwards);
for each database, operation (submit one workload; list 100) and client count, closed-loop httpx clients
for a fixed time. Reconcile: 10,000 pending workloads through the real Controller and placement engine
(``bench.api.reconcile``).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict
from typing import Any

from bench.api.load import run_load
from bench.api.reconcile import describe, reconcile_throughput
from bench.api.service import fresh_database, member_token, running_service
from bench.machine import machine_info, peak_rss_mib, pin_one_core, write_results

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--api-clients", type=lambda s: tuple(int(x) for x in s.split(",")), default=None,
                       help="concurrent clients, comma-separated (default 1,8,32; --quick: 1,4)")
    group.add_argument("--api-seconds", type=float, default=None, help="seconds per cell (default 5; --quick: 1)")
    group.add_argument("--api-dbs", default="sqlite,postgresql", help="databases (default sqlite,postgresql)")
    group.add_argument("--api-pg-url", default=os.environ.get("AWAN_TEST_PG_URL", PG_URL),
                       help="PostgreSQL server to create a fresh database on")
    group.add_argument("--api-reconcile-workloads", type=int, default=None,
                       help="workloads for the reconcile throughput (default 10000; --quick: 200)")


def _server_cores(client_core: int | None) -> str:
    if client_core is None or not hasattr(os, "sched_getaffinity"):
        return ""
    others = sorted(set(range(os.cpu_count() or 1)) - {client_core})
    return ",".join(map(str, others))


def main(args: argparse.Namespace) -> int:
    core = None if args.no_pin else pin_one_core()
    clients = args.api_clients or ((1, 4) if args.quick else (1, 8, 32))
    seconds = args.api_seconds or (1.0 if args.quick else 5.0)
    n_rec = args.api_reconcile_workloads or (200 if args.quick else 10_000)
    dbs = [d.strip() for d in args.api_dbs.split(",") if d.strip()]
    result: dict[str, Any] = {"suite": "api", "machine": machine_info(core), "quick": args.quick,
                              "clients": list(clients), "seconds_per_cell": seconds, "server_cores": _server_cores(core),
                              "cells": [], "errors": {}}
    t_start = time.perf_counter()
    for db in dbs:
        try:
            with fresh_database(db, args.api_pg_url) as url:
                token = member_token(url)
                with running_service(url, _server_cores(core)) as base:
                    for op in ("submit", "list"):
                        for c in clients:
                            r = run_load(base, token, op, c, seconds, prefix=f"{op}-c{c}")
                            cell = {"db": db, **asdict(r)}
                            result["cells"].append(cell)
                            print(f"api: {db} {op} {c} clients: {r.rps:,.1f} req/s, p50 {r.p50_ms} ms, "
                                  f"p99 {r.p99_ms} ms, {r.requests} ok, {r.errors} errors", flush=True)
                            if r.errors:
                                result["errors"][f"{db}/{op}/{c}"] = r.first_error
        except Exception as e:  # noqa: BLE001 - e.g. no PostgreSQL server: report it, run the rest
            result["errors"][db] = f"{type(e).__name__}: {e}"
            print(f"api: {db}: {type(e).__name__}: {e}", flush=True)
    try:
        with fresh_database("sqlite", args.api_pg_url) as url:
            rec = reconcile_throughput(url, n_rec)
        result["reconcile"] = asdict(rec)
        print(describe(rec), flush=True)
        if rec.states.get("Pending", 0):
            result["errors"]["reconcile"] = f"{rec.states['Pending']} workloads still Pending"
    except Exception as e:  # noqa: BLE001
        result["errors"]["reconcile"] = f"{type(e).__name__}: {e}"
        print(f"reconcile: {type(e).__name__}: {e}", flush=True)
    result["peak_rss_mib"] = peak_rss_mib()
    result["total_s"] = round(time.perf_counter() - t_start, 1)
    path = write_results(args.results_dir, "api", result)
    from bench.api.report import render

    print(render(result))
    print(f"results: {path}")
    return 1 if result["errors"] else 0
