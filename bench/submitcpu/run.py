"""``python -m bench --suite submitcpu``: the API process's CPU time per one-document submit.

For each database (a fresh SQLite file; a fresh PostgreSQL database, dropped afterwards) and each source
tree (this one, and any given with ``--submitcpu-peer``, run alternately so both see the same machine), a real
uvicorn serves ``--submitcpu-n`` submits of new workloads (bench/rate's manifest) and the server process's
CPU seconds over them are read from /proc (``bench.submitcpu.cpu``). The figure is the median over
``--submitcpu-runs`` runs, in ms per submit. The server is pinned off the client's core where there are two.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.api.run import PG_URL, _server_cores
from bench.api.service import fresh_database, member_token
from bench.machine import machine_info, pin_one_core, write_results
from bench.submitcpu.cpu import measure

REPO = Path(__file__).resolve().parents[2]


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--submitcpu-n", type=int, default=None, help="measured submits per run (default 2000; --quick: 100)")
    group.add_argument("--submitcpu-warmup", type=int, default=None, help="uncounted submits first (default 200; --quick: 20)")
    group.add_argument("--submitcpu-clients", type=int, default=4, help="concurrent client threads (default 4)")
    group.add_argument("--submitcpu-runs", type=int, default=None, help="runs per tree and database (default 3; --quick: 1)")
    group.add_argument("--submitcpu-dbs", default="sqlite,postgresql", help="databases (default sqlite,postgresql)")
    group.add_argument("--submitcpu-peer", type=Path, action="append", default=[],
                       help="another source tree to measure alternately with this one (repeatable)")
    group.add_argument("--submitcpu-pg-url", default=os.environ.get("AWAN_TEST_PG_URL", PG_URL),
                       help="PostgreSQL server to create a fresh database on")


def main(args: argparse.Namespace) -> int:
    core = None if args.no_pin else pin_one_core()
    cores = _server_cores(core)
    n = args.submitcpu_n or (100 if args.quick else 2000)
    warmup = args.submitcpu_warmup if args.submitcpu_warmup is not None else (20 if args.quick else 200)
    runs = args.submitcpu_runs or (1 if args.quick else 3)
    trees = [REPO, *[p.resolve() for p in args.submitcpu_peer]]
    dbs = [d.strip() for d in args.submitcpu_dbs.split(",") if d.strip()]
    result: dict[str, Any] = {"suite": "submitcpu", "machine": machine_info(core), "quick": args.quick, "n": n,
                              "warmup": warmup, "clients": args.submitcpu_clients, "server_cores": cores,
                              "load_before": os.getloadavg(), "runs": [], "medians": {}, "errors": {}}
    t_start = time.perf_counter()
    for db in dbs:
        for k in range(runs):
            for tree in trees:     # alternated: each tree's k-th run beside the others' k-th
                try:
                    with fresh_database(db, args.submitcpu_pg_url) as url:
                        token = member_token(url)
                        r = measure(tree, db, url, token, n, args.submitcpu_clients, warmup, cores)
                except Exception as e:  # noqa: BLE001 - e.g. no PostgreSQL server: report it, run the rest
                    result["errors"][f"{db}/{tree}"] = f"{type(e).__name__}: {e}"
                    print(f"submitcpu: {db} {tree}: {type(e).__name__}: {e}", flush=True)
                    continue
                result["runs"].append({**asdict(r), "load": os.getloadavg()})
                print(f"submitcpu: {db} {tree} run {k + 1}: {r.cpu_ms_per_submit:.2f} CPU ms/submit "
                      f"({r.submits} submits, {r.clients} clients, {r.wall_s:.1f} s wall, {r.errors} errors; "
                      f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())})", flush=True)
                if r.errors:
                    result["errors"][f"{db}/{tree}/{k}"] = r.first_error
    for db in dbs:
        for tree in trees:
            xs = [r["cpu_ms_per_submit"] for r in result["runs"] if r["db"] == db and r["tree"] == str(tree)]
            if xs:
                result["medians"][f"{db} {tree}"] = statistics.median(xs)
                print(f"submitcpu: {db} {tree}: median {statistics.median(xs):.2f} CPU ms/submit over {len(xs)} runs")
    result["load_after"] = os.getloadavg()
    result["total_s"] = round(time.perf_counter() - t_start, 1)
    print(f"results: {write_results(args.results_dir, 'submitcpu', result)}")
    return 1 if result["errors"] else 0
