"""``python -m bench --suite e2e``: submit -> all pods Running through the whole control plane, for 1, 100 and
1,000 one-node batch workloads on the mock CoreWeave cloud, and dispatch throughput.

Each measurement is a fresh process (``python -m bench.e2e.worker N``, see worker.py): ``submit()``, then the
real Controller pass after pass (placement, the local engine provisioning NodePools through the real adapter,
the run step creating each workload's Job in the CKS cluster through the official client), a pod watch
stamping per workload when its first pod appears and when its pods are all Running. Per size: the median of
``--e2e-runs`` runs (default 3) of p50/p99 submit->Running latency, time until all Running and workloads
dispatched per second (10th to 90th percentile of the dispatch stamps).

The peer, in the same run: the dispatch suite's worker (bench/dispatch/worker.py) at the same N, which times
only the last step (objects created by hand -> pods Running, NodePools made beforehand, not measured). Runs
of the two alternate, so both see the same load; the difference is what submit, placement, provisioning and
the loop's passes add. ``--e2e-no-peer`` skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.machine import machine_info, percentile, write_results

FULL_SIZES = (1, 100, 1000)
QUICK_SIZES = (2,)
ROOT = Path(__file__).resolve().parents[2]
DISPATCH_WORKER = ROOT / "bench" / "dispatch" / "worker.py"


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--e2e-sizes", type=lambda s: tuple(int(x) for x in s.split(",")), default=None,
                       help="workload counts, comma-separated (default 1,100,1000; --quick: 2)")
    group.add_argument("--e2e-runs", type=int, default=None, help="runs per size (default 3; --quick: 1)")
    group.add_argument("--e2e-no-peer", action="store_true",
                       help="do not run the dispatch-only worker beside each run")
    group.add_argument("--e2e-timeout-s", type=float, default=1800.0, help="per run (default 1800)")


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _json_out(cmd: list[str], timeout_s: float) -> dict[str, Any]:
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=timeout_s + 120)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} failed: {proc.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def with_percentiles(out: dict[str, Any]) -> dict[str, Any]:
    lat = sorted(out.pop("latencies_s"))
    out["p50_s"], out["p99_s"] = percentile(lat, 50), percentile(lat, 99)
    return out


def run_e2e(n: int, timeout_s: float) -> dict[str, Any]:
    return with_percentiles(_json_out([sys.executable, "-m", "bench.e2e.worker", str(n), str(timeout_s)],
                                      timeout_s))


def run_dispatch_only(n: int, timeout_s: float) -> dict[str, Any]:
    out = with_percentiles(_json_out([sys.executable, str(DISPATCH_WORKER), str(n)], timeout_s))
    # Its creation loop sends a workload's objects (Service + Job) and resumes the Job: workloads/s over it.
    out["workloads_per_s"] = round(n / out["dispatch_s"], 2) if out.get("dispatch_s") else None
    return out


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    vals = [float(r[key]) for r in runs if r.get(key) is not None]
    return round(statistics.median(vals), 4) if vals else None


def summarise(runs: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    return {"runs": len(runs), "ok": all(r["ok"] for r in runs), **{k: _median(runs, k) for k in keys}}


E2E_KEYS = ("p50_s", "p99_s", "all_running_s", "first_dispatch_s", "dispatch_per_s", "submit_s", "passes")
PEER_KEYS = ("p50_s", "p99_s", "all_running_s", "dispatch_s", "objects_per_s", "workloads_per_s")


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def main(args: argparse.Namespace) -> int:
    sizes = args.e2e_sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    runs = args.e2e_runs or (1 if args.quick else 3)
    peer = not (args.e2e_no_peer or args.quick)
    load_before = _loadavg()
    results: dict[str, Any] = {"suite": "e2e", "machine": machine_info(None), "sizes": list(sizes),
                               "runs_per_size": runs, "load_before": load_before, "e2e": {}, "dispatch_only": {}}
    for n in sizes:
        mine: list[dict[str, Any]] = []
        theirs: list[dict[str, Any]] = []
        for i in range(runs):
            mine.append(run_e2e(n, args.e2e_timeout_s))
            m = mine[-1]
            print(f"  n={n} run {i + 1}/{runs} e2e: p50 {m['p50_s']:.3f} s, p99 {m['p99_s']:.3f} s, all Running "
                  f"{m['all_running_s']:.2f} s, {_rate(m['dispatch_per_s'])} workloads/s, {m['passes']} passes "
                  f"(load {_loadavg()})", flush=True)
            if peer:
                theirs.append(run_dispatch_only(n, args.e2e_timeout_s))
                t = theirs[-1]
                print(f"  n={n} run {i + 1}/{runs} dispatch-only: p50 {t['p50_s']:.3f} s, p99 {t['p99_s']:.3f} s, "
                      f"all Running {t['all_running_s']:.2f} s, {_rate(t['workloads_per_s'])} workloads/s", flush=True)
        results["e2e"][str(n)] = {**summarise(mine, E2E_KEYS), "raw": mine}
        if theirs:
            results["dispatch_only"][str(n)] = {**summarise(theirs, PEER_KEYS), "raw": theirs}
    results["load_after"] = _loadavg()
    path = write_results(args.results_dir, "e2e", results)
    print(f"\n{'N':>6} {'what':>13} {'p50 s':>8} {'p99 s':>8} {'all Running s':>14} {'per s':>8}")
    for n in sizes:
        r = results["e2e"][str(n)]
        print(f"{n:>6} {'e2e':>13} {r['p50_s']:>8.3f} {r['p99_s']:>8.3f} {r['all_running_s']:>14.2f} "
              f"{_rate(r['dispatch_per_s']):>8}")
        d = results["dispatch_only"].get(str(n))
        if d:
            print(f"{n:>6} {'dispatch-only':>13} {d['p50_s']:>8.3f} {d['p99_s']:>8.3f} {d['all_running_s']:>14.2f} "
                  f"{_rate(d['workloads_per_s']):>8}")
    print(f"load average before {load_before}, after {results['load_after']}; median of {runs}; results: {path}")
    return 0 if all(results["e2e"][str(n)]["ok"] for n in sizes) else 1
