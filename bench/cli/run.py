"""``python -m bench --suite cli``: how long a person waits for the CLI, beside its peers in the same run.

Each command is a fresh process (what a shell does), timed from spawn to exit, run round-robin with its
peers so a load spike hits them all alike; the figure is the median (and min, p90) of ``--cli-runs`` runs:

- ``awan --help``, ``awan --version``, ``awan get workloads`` (against a real service on loopback with 20
  workloads; the client config's context, no exports), ``awan get workloads -o json``;
- ``sky --help`` (SkyPilot in .bench-venv, its own virtual environment, installed on first use) and
  ``kubectl --help`` where kubectl is installed: the nearest tools, as peers.

The load average (``os.getloadavg``) is recorded before and after, since the machine is shared, and each
run's CPU time (user + system of the child) beside its wall time: CPU time hardly moves with other load.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.api.service import fresh_database, member_token, running_service
from bench.machine import machine_info, percentile, write_results

REPO = Path(__file__).resolve().parents[2]
AWAN = [str(Path(sys.executable).with_name("awan"))]


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--cli-runs", type=int, default=None, help="runs per command (default 15; --quick: 3)")
    group.add_argument("--cli-no-sky", action="store_true", help="leave out SkyPilot (no .bench-venv)")
    group.add_argument("--cli-peer-awan", type=Path, default=None,
                       help="another build's awan executable (e.g. main's .venv/bin/awan): its --help as a peer")


def _time(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+system) of one run of ``cmd`` as a child process. CPU time hardly
    moves with other load on the machine; wall time is what a person waits."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120)
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr[-300:]}")
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _summary(xs: list[tuple[float, float]]) -> dict[str, float]:
    wall = sorted(x[0] for x in xs)
    cpu = sorted(x[1] for x in xs)
    return {"median_s": round(statistics.median(wall), 3), "min_s": round(wall[0], 3),
            "p90_s": round(percentile(wall, 90), 3), "cpu_median_s": round(statistics.median(cpu), 3),
            "runs": len(wall)}


def main(args: argparse.Namespace) -> int:
    runs = args.cli_runs or (3 if args.quick else 15)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="awan-bench-cli-") as home, fresh_database("sqlite", "") as db_url:
        token = member_token(db_url)
        with running_service(db_url) as url:
            for i in range(20):
                httpx.post(f"{url}/v1/workloads", headers={"Authorization": f"Bearer {token}"},
                           content=f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: bench-{i}}}\n"
                                   "spec: {kind: training, gpus: {model: H100, count: 8}}\n").raise_for_status()
            env = {**os.environ, "HOME": home, "AWAN_CLIENT_CONFIG": f"{home}/client.yaml"}
            for k in ("AWAN_URL", "AWAN_TOKEN", "AWAN_CONTEXT"):
                env.pop(k, None)
            subprocess.run([*AWAN, "config", "set-context", "bench", "--server", url, "--token", token, "--use"],
                           env=env, check=True, capture_output=True)
            commands: dict[str, list[str]] = {
                "awan --help": [*AWAN, "--help"],
                "awan --version": [*AWAN, "--version"],
                "awan get workloads": [*AWAN, "get", "workloads"],
                "awan get workloads -o json": [*AWAN, "get", "workloads", "-o", "json"],
            }
            notes: dict[str, str] = {}
            if not args.cli_no_sky:
                try:
                    from bench.placement.skypilot_peer import ensure_bench_venv

                    sky = ensure_bench_venv(log=lambda m: print(m, flush=True)).with_name("sky")
                    commands["sky --help (SkyPilot)"] = [str(sky), "--help"]
                except Exception as e:  # the peer is optional; say why it is missing
                    notes["sky"] = f"not measured: {e}"
            if args.cli_peer_awan:
                commands[f"awan --help ({args.cli_peer_awan})"] = [str(args.cli_peer_awan), "--help"]
            kubectl = shutil.which("kubectl")
            if kubectl:
                commands["kubectl --help"] = [kubectl, "--help"]
            for cmd in commands.values():          # warm the page cache once; not counted
                _time(cmd, env)
            times: dict[str, list[tuple[float, float]]] = {k: [] for k in commands}
            for _ in range(runs):
                for name, cmd in commands.items():
                    times[name].append(_time(cmd, env))
    load_after = os.getloadavg()
    result: dict[str, Any] = {
        "suite": "cli", "machine": machine_info(None), "quick": args.quick,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "commands": {k: _summary(v) for k, v in times.items()}, "notes": notes,
    }
    path = write_results(args.results_dir, "cli", result)
    print(f"load average before {result['load_average_before']}, after {result['load_average_after']}")
    width = max(len(k) for k in times)
    for k, v in result["commands"].items():
        print(f"  {k:<{width}}  wall median {v['median_s']:.3f} s  min {v['min_s']:.3f}  p90 {v['p90_s']:.3f}"
              f"  CPU median {v['cpu_median_s']:.3f} s  ({v['runs']} runs)")
    for k, v in notes.items():
        print(f"  {k}: {v}")
    print(f"results: {path}")
    return 0
