"""``python -m bench --suite burst``: the issue-12 burst (2,000 one-GPU workloads by default) against the
mock clouds with a few nodes hidden per pool, with capacity learned, and, as the peer in the same run, the
block list alone (``--burst-peer``). Figures: time to all Running, failovers per workload, stock-outs,
nodes live == nodes assigned at the end."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.burst import describe, run_burst
from bench.machine import machine_info, write_results


def add_arguments(p: Any) -> None:
    p.add_argument("--burst-workloads", type=int, default=2000)
    p.add_argument("--burst-per-pool", type=int, default=3, help="nodes each pool really has")
    p.add_argument("--burst-timeout-s", type=float, default=3600.0)
    p.add_argument("--burst-peer", action="store_true", help="also run with the block list only (slow)")
    p.add_argument("--burst-slow-start", type=int, default=None,
                   help="capacity slow start of the learned loop (default: the service's, LoopConfig)")
    p.add_argument("--burst-progress", action="store_true", help="print every pass (time, states)")


def main(args: argparse.Namespace) -> int:
    from mockclouds.launcher import MockClouds

    n = 40 if args.quick else args.burst_workloads
    result: dict[str, Any] = {"suite": "burst", "machine": machine_info(None), "runs": []}
    mc = MockClouds(clouds=("aws", "gcp")).start()
    t0 = time.perf_counter()
    try:
        for learn in (True, False) if args.burst_peer else (True,):
            r = run_burst(mc, Path(tempfile.mkdtemp(prefix="awan-burst-")), n, args.burst_per_pool, learn=learn,
                          timeout_s=args.burst_timeout_s, slow_start=args.burst_slow_start,
                          progress=(lambda m: print(m, flush=True)) if args.burst_progress else None)
            print(describe(r), flush=True)
            result["runs"].append(r.to_dict())
    finally:
        mc.stop()
    result["total_s"] = round(time.perf_counter() - t0, 1)
    print(f"results: {write_results(args.results_dir, 'burst', result)}")
    first = result["runs"][0]
    return 0 if first["all_running"] and first["nodes_live"] == first["nodes_assigned"] else 1
