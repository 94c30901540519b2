"""``python -m bench --suite health``: what a starting replica's first health probe says of healthy clouds.

A replica's first pass builds every region's SDK client inside its first health probe (then its first capacity
read). The regions are asked at once (providers/fanout.py), but the clients are built one at a time (a boto3
session must not build clients from two threads): a probe timed from its start also counted the builds it
waited for: the reported latency grew with the regions configured and the machine's load, and a healthy AWS
or OCI region past ``SLOW_REGION_MS`` reads DEGRADED, which placement scores 0 for health until the next probe.

Each run is a fresh process (nothing built yet, as at a replica's start) per tree, this one and a peer
(``--health-peer``, a git revision checked out into a temporary worktree), alternated, against the same mock
clouds in their own process, with every cloud's catalog regions configured. The mock's own first call per
region (moto's tables) is made once before the runs, by a process whose figures are not kept. Per cloud:
the probe's wall seconds, the latency it reports, how many regions it called DEGRADED or DOWN of how many, and
the capacity read's wall seconds after it. ``--health-latency-ms``: every mock call answers that much later
(the mocks' latency fault), as a real cloud's round trip would.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.api.service import REPO
from bench.machine import machine_info, write_results
from bench.rate.stack import mock_clouds, tree_env
from bench.stall.run import peer_tree

# Run in the tree under test (first on PYTHONPATH): its own adapters, from a process that has built nothing.
_PROBE = """
import json, sys, time
from providers.config import load_config
from providers.registry import build_providers
providers = build_providers(load_config(sys.argv[1]))
out = {}
for name, p in sorted(providers.items()):
    t0 = time.perf_counter()
    h = p.health()
    probe_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    p.capacity()
    out[name] = {"probe_s": probe_s, "latency_ms": h.latency_ms, "status": str(h.status.value),
                 "impaired": sum(1 for s in h.regions.values() if s.value != "ok"), "regions": len(h.regions),
                 "capacity_s": time.perf_counter() - t0}
    p.close()
print(json.dumps(out))
"""


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--health-runs", type=int, default=None, help="runs per tree (default 5; --quick 1)")
    group.add_argument("--health-latency-ms", type=float, default=0.0,
                       help="every call to every mock cloud answers this much later (its latency fault), after the "
                            "warm-up: a cloud's round trip as on a real one (0: none)")
    group.add_argument("--health-peer", default="HEAD~1",
                       help="git revision to compare with, checked out into a temporary worktree ('' for none)")


def probe(tree: Path, config: Path) -> dict[str, dict[str, Any]]:
    got = subprocess.run([sys.executable, "-c", _PROBE, str(config)], cwd=tree, env=tree_env(tree),
                         capture_output=True, text=True, timeout=600, check=False)
    if got.returncode != 0:
        raise RuntimeError(f"the probe in {tree} failed: {got.stderr[-1500:]}")
    answer: dict[str, dict[str, Any]] = json.loads(got.stdout.strip().splitlines()[-1])
    return answer


def slow_every_cloud(config: Path, latency_ms: float) -> None:
    """A latency fault on every operation of every region of each mock cloud in ``config``."""
    import httpx
    import yaml

    for name, p in yaml.safe_load(config.read_text())["providers"].items():
        if name == "coreweave":   # one cluster API, no fault book
            continue
        url = str(p["endpoint"]).split("/_k8s")[0].split("{region}")[0].rstrip("/")
        httpx.post(f"{url}/_mock/faults", json={"kind": "latency", "latency_ms": latency_ms},
                   timeout=10).raise_for_status()


def _summary(runs: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for cloud in sorted(runs[0]):
        rows = [r[cloud] for r in runs]
        out[cloud] = {"probe_s": statistics.median(r["probe_s"] for r in rows),
                      "latency_ms": statistics.median(r["latency_ms"] for r in rows),
                      "impaired": statistics.median(r["impaired"] for r in rows),
                      "impaired_max": max(r["impaired"] for r in rows),
                      "regions": rows[0]["regions"],
                      "capacity_s": statistics.median(r["capacity_s"] for r in rows)}
    return out


def main(args: argparse.Namespace) -> int:
    runs = args.health_runs or (1 if args.quick else 5)
    with peer_tree(args.health_peer) as peer, tempfile.TemporaryDirectory(prefix="awan-bench-health-") as tmp:
        trees = {"this": REPO} | ({f"peer {args.health_peer}": peer} if peer is not None else {})
        with mock_clouds(REPO, Path(tmp)) as config:
            probe(REPO, config)   # the mock's first call per region, not kept
            if args.health_latency_ms > 0:
                slow_every_cloud(config, args.health_latency_ms)
            got: dict[str, list[dict[str, dict[str, Any]]]] = {label: [] for label in trees}
            for i in range(runs):
                for label, tree in trees.items():   # alternated: a drift in the machine's load hits both
                    got[label].append(probe(tree, config))
                    row = ", ".join(f"{c} {v['probe_s']:.2f} s {v['impaired']}/{v['regions']}"
                                    for c, v in sorted(got[label][-1].items()))
                    print(f"health: run {i + 1}/{runs} {label}: {row}", flush=True)
    summary = {label: _summary(r) for label, r in got.items()}
    for label, per_cloud in summary.items():
        for cloud, v in per_cloud.items():
            print(f"health: {label:>14} {cloud:>9}: probe {v['probe_s']:.2f} s, reported {v['latency_ms']:.0f} ms, "
                  f"DEGRADED or DOWN {v['impaired']:.0f} of {v['regions']:.0f} (most {v['impaired_max']:.0f}), "
                  f"capacity read {v['capacity_s']:.2f} s (medians of {runs})")
    path = write_results(args.results_dir, "health", {"machine": machine_info(None), "runs": got, "medians": summary})
    print(f"health: results in {path}")
    return 0
