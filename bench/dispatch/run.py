"""``python -m bench --suite dispatch``: submit -> all pods Running, on the mock CoreWeave cluster, for 1, 100
and 1,000 workloads, and dispatch throughput (objects created per second through the official client).

Each measurement is a fresh process (``worker.py``): the mock, N one-node pools, N training workloads
rendered by ``controlplane.dispatch.render`` and created by ``KubeCluster``, a pod watch that stamps when
each workload's pods are all Running. Per size: the median of ``--dispatch-runs`` runs (default 3) of
p50/p99 latency, time until all are Running and objects/s.

The peer, in the same run: the same worker against the tree of ``--dispatch-peer-rev`` (default 5fd1711,
main before the mock's controllers reacted per object: every write re-ran them over the whole cluster),
unpacked with ``git archive`` into a temporary directory and put first on PYTHONPATH. Runs of this tree and
of the peer alternate, so both see the same load. The peer runs the sizes up to ``--dispatch-peer-max``
(default 100: at 1,000 its quadratic cost takes too long to repeat three times).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.machine import machine_info, percentile, write_results

FULL_SIZES = (1, 100, 1000)
QUICK_SIZES = (2,)
WORKER = Path(__file__).resolve().parent / "worker.py"
ROOT = Path(__file__).resolve().parents[2]


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--dispatch-sizes", type=lambda s: tuple(int(x) for x in s.split(",")), default=None,
                       help="workload counts, comma-separated (default 1,100,1000; --quick: 2)")
    group.add_argument("--dispatch-runs", type=int, default=None, help="runs per size (default 3; --quick: 1)")
    group.add_argument("--dispatch-peer-rev", default="5fd1711",
                       help="git revision measured as the peer ('' for none; default 5fd1711)")
    group.add_argument("--dispatch-peer-max", type=int, default=100,
                       help="largest size the peer runs (default 100)")
    group.add_argument("--dispatch-timeout-s", type=float, default=3600.0, help="per run (default 3600)")


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_worker(n: int, tree: Path, timeout_s: float) -> dict[str, Any]:
    """One measurement in a fresh process whose mockclouds/controlplane/providers come from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, str(WORKER), str(n)], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"worker n={n} in {tree} failed: {proc.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    lat = out.pop("latencies_s")
    out["p50_s"], out["p99_s"] = percentile(lat, 50), percentile(lat, 99)
    return out


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    vals = [float(r[key]) for r in runs if r.get(key) is not None]
    return round(statistics.median(vals), 4) if vals else None


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"runs": len(runs), "ok": all(r["ok"] for r in runs),
            **{k: _median(runs, k) for k in ("p50_s", "p99_s", "all_running_s", "dispatch_s", "objects_per_s")},
            "objects": runs[0]["objects"] if runs else 0}


def peer_tree(rev: str, into: Path) -> Path:
    """The tree at ``rev`` (git archive, no worktree or index touched)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main(args: argparse.Namespace) -> int:
    sizes = args.dispatch_sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    runs = args.dispatch_runs or (1 if args.quick else 3)
    peer_rev = "" if args.quick else args.dispatch_peer_rev
    load_before = _loadavg()
    results: dict[str, Any] = {"suite": "dispatch", "machine": machine_info(None), "sizes": list(sizes),
                               "runs_per_size": runs, "peer_rev": peer_rev or None, "load_before": load_before,
                               "this": {}, "peer": {}}
    with tempfile.TemporaryDirectory(prefix="awan-dispatch-peer-") as tmp:
        peer = peer_tree(peer_rev, Path(tmp)) if peer_rev else None
        for n in sizes:
            mine: list[dict[str, Any]] = []
            theirs: list[dict[str, Any]] = []
            for i in range(runs):
                mine.append(run_worker(n, ROOT, args.dispatch_timeout_s))
                print(f"  n={n} run {i + 1}/{runs} this: p50 {mine[-1]['p50_s']:.3f} s, p99 {mine[-1]['p99_s']:.3f} s, "
                      f"all Running {mine[-1]['all_running_s']:.2f} s, {mine[-1]['objects_per_s']} objects/s "
                      f"(load {_loadavg()})", flush=True)
                if peer is not None and n <= args.dispatch_peer_max:
                    theirs.append(run_worker(n, peer, args.dispatch_timeout_s))
                    print(f"  n={n} run {i + 1}/{runs} peer: p50 {theirs[-1]['p50_s']:.3f} s, p99 "
                          f"{theirs[-1]['p99_s']:.3f} s, all Running {theirs[-1]['all_running_s']:.2f} s, "
                          f"{theirs[-1]['objects_per_s']} objects/s", flush=True)
            results["this"][str(n)] = {**summarise(mine), "raw": mine}
            if theirs:
                results["peer"][str(n)] = {**summarise(theirs), "raw": theirs}
    results["load_after"] = _loadavg()
    path = write_results(args.results_dir, "dispatch", results)
    print(f"\n{'N':>6} {'tree':>5} {'p50 s':>8} {'p99 s':>8} {'all Running s':>14} {'objects/s':>10}")
    for n in sizes:
        for who in ("this", "peer"):
            r = results[who].get(str(n))
            if r:
                print(f"{n:>6} {who:>5} {r['p50_s']:>8.3f} {r['p99_s']:>8.3f} {r['all_running_s']:>14.2f} "
                      f"{r['objects_per_s']:>10}")
    print(f"load average before {load_before}, after {results['load_after']}; median of {runs}; results: {path}")
    bad = [n for n in sizes if not results["this"][str(n)]["ok"]]
    return 1 if bad else 0
