"""``python -m bench --suite plan``: ``awan plan -f`` end to end, as a person runs it, beside SkyPilot.

Issue 17 asks for 10,000 workloads planned end to end, JSON written, in under 3 s on one core, under
300 MB RSS, and ``-o table`` within 2x of JSON. Each measured command is a fresh process (what a shell does):

    awan plan -f <n workloads>.yaml --capacity catalog -o json > plan.json      (and -o table > plan.txt)

run from a directory holding the repository's ``policies/`` (residency, provider share, commitments, rules),
on the manifests of bench/plan/manifests.py (the placement bench's request mix). Per command: wall time
(spawn to exit), the child's CPU time (user + system, from ``wait4``: it hardly moves with other load on a
shared machine) and its peak RSS; the median of ``--plan-runs`` runs, commands round-robin so a load spike
hits them alike. The load average is recorded before and after.

Bytecode: the benchmark's children may write ``__pycache__`` (``PYTHONDONTWRITEBYTECODE`` is dropped for
them) and one untimed run comes first, as an installed ``awan`` has its bytecode compiled; without it every
run would compile ~400 modules from source (~0.9 s).

``--plan-peer-awan PATH`` times another tree's ``awan`` (e.g. main's, in its own worktree and virtualenv) on the
same commands, round-robin with ours (``peer`` in the results); ``--plan-json-full`` also times ours with
``--explain full`` (format ``json-full``: every rejection written, as ``-o json`` did before ``--explain``).

Peer (same run): SkyPilot's optimizer (bench/placement/skypilot_peer.py, offline, on our catalog exported to
its format) on ``--plan-sky-requests`` comparable single-node requests, one at a time as it works: its import
time, and its median seconds per decision; its figure for n workloads is import + n x that median, stated as
a projection (at ~0.5 s a decision, 10,000 would take over an hour to run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.machine import machine_info, pin_one_core, write_results
from bench.plan.manifests import write_manifest

REPO = Path(__file__).resolve().parents[2]
AWAN = str(Path(sys.executable).with_name("awan"))
FULL = {"sizes": (1_000, 10_000, 100_000), "table_up_to": 10_000, "runs": 3, "sky": 20}
QUICK = {"sizes": (50, 200), "table_up_to": 200, "runs": 1, "sky": 2}
GOAL = {"workloads": 10_000, "cpu_s": 3.0, "rss_mib": 300.0, "table_over_json": 2.0}


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--plan-sizes", type=str, help="comma-separated workload counts (default 1000,10000,100000)")
    group.add_argument("--plan-runs", type=int, help="runs per command (default 3)")
    group.add_argument("--plan-sky-requests", type=int, help="requests timed on SkyPilot (default 20)")
    group.add_argument("--plan-no-sky", action="store_true", help="leave out SkyPilot")
    group.add_argument("--plan-peer-awan", type=str,
                       help="another tree's `awan` (its own virtualenv's bin/awan, e.g. the last release's): "
                            "timed on the same commands, round-robin with ours, as peer/<n>/<format>")
    group.add_argument("--plan-json-full", action="store_true",
                       help="also time ours with `--explain full` (format json-full: every rejection written, the "
                            "document `-o json` wrote before --explain)")


GNU_TIME = Path("/usr/bin/time")


def timed(cmd: list[str], out: Path, cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """One run: wall seconds, CPU seconds (user + system) and peak RSS (MiB) of the child.

    Peak RSS comes from GNU time where it is installed: Linux carries a process's RSS high-water mark
    across fork and exec, so a child spawned straight from this (large) process would report this
    process's size; GNU time is small, and reports its own child's."""
    wrap = [str(GNU_TIME), "-f", "AWANTIME %e %U %S %M"] if GNU_TIME.exists() else []
    with out.open("wb") as f:
        t = time.perf_counter()
        proc = subprocess.Popen([*wrap, *cmd], stdout=f, stderr=subprocess.PIPE, cwd=cwd, env=env)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err[-500:]}")
    cpu, rss = ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024
    for line in err.splitlines():
        if line.startswith("AWANTIME "):
            _, _, user, system, kib = line.split()
            cpu, rss = float(user) + float(system), int(kib) / 1024
    return {"wall_s": wall, "cpu_s": cpu, "rss_mib": rss, "bytes": out.stat().st_size}


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}


def run_ours(sizes: tuple[int, ...], table_up_to: int, runs: int, work: Path, log: Any,
             peer: str | None = None, json_full: bool = False) -> dict[str, Any]:
    """Ours (and the peer's, when given: keys ``peer/<n>/<format>``), each command run ``runs`` times,
    round-robin."""
    shutil.copytree(REPO / "policies", work / "policies")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cmds: dict[str, list[str]] = {}
    for who, awan in (("", AWAN), ("peer/", peer)):
        if awan is None:
            continue
        for n in sizes:
            f = work / f"plan-{n}.yaml"
            if not f.exists():
                write_manifest(f, n)
            base = [awan, "plan", "-f", str(f), "--capacity", "catalog"]
            cmds[f"{who}{n}/json"] = [*base, "-o", "json"]
            if json_full and not who:
                cmds[f"{n}/json-full"] = [*base, "-o", "json", "--explain", "full"]
            if n <= table_up_to:
                cmds[f"{who}{n}/table"] = [*base, "-o", "table"]
    first = min(sizes)
    for key in (f"{first}/json", f"peer/{first}/json"):
        if key in cmds:
            timed(cmds[key], work / "warm.out", work, env)     # compiles the bytecode; not counted
    got: dict[str, list[dict[str, float]]] = {k: [] for k in cmds}
    for i in range(runs):
        for key, cmd in cmds.items():
            r = timed(cmd, work / "plan.out", work, env)
            got[key].append(r)
            log(f"plan {key} run {i + 1}: {r['wall_s']:.2f} s wall, {r['cpu_s']:.2f} s CPU, {r['rss_mib']:.0f} MiB")
    out: dict[str, Any] = {}
    for key, rs in got.items():
        *who, n, fmt = key.split("/")
        med = _median(rs)
        med["workloads_per_cpu_s"] = round(int(n) / med["cpu_s"], 1) if med["cpu_s"] else None
        into = out.setdefault("peer", {}) if who else out
        into.setdefault(n, {})[fmt] = {"median": med, "runs": rs, "command": " ".join(
            ["awan", *cmds[key][1:3], f"plan-{n}.yaml", *cmds[key][4:]])}
    return out


def run_sky(n_requests: int, sizes: tuple[int, ...], log: Any) -> dict[str, Any]:
    from bench.placement.skypilot_peer import SkyWorker, ensure_bench_venv, make_requests
    from providers.catalog import default_catalog

    catalog = default_catalog()
    python = ensure_bench_venv(log)
    requests = make_requests(catalog, n_requests)
    t = time.perf_counter()
    with SkyWorker(catalog, python) as sky:
        started = time.perf_counter() - t
        first = sky.ask({**requests[0].sky_json(), "id": "warm-up"})["seconds"]
        secs = [float(sky.ask(r.sky_json())["seconds"]) for r in requests]
        version, import_s = sky.version, sky.import_seconds
    per = statistics.median(secs)
    log(f"skypilot {version}: start {started:.1f} s (import {import_s:.1f} s), first decision {first:.2f} s, "
        f"median {per:.3f} s per decision over {len(secs)}")
    return {"version": version, "start_s": round(started, 3), "import_s": round(import_s, 3),
            "first_decision_s": round(float(first), 3), "decisions": len(secs),
            "median_s_per_decision": round(per, 4), "p90_s": round(sorted(secs)[int(0.9 * (len(secs) - 1))], 4),
            "projected_wall_s": {str(n): round(started + first + n * per, 1) for n in sizes},
            "note": "projection: start + first decision + n x median seconds per decision (one request at a "
                    "time, single-node requests, no batch contention); not run at these sizes"}


def _verdict(ours: dict[str, Any]) -> dict[str, Any]:
    row = ours.get(str(GOAL["workloads"]))
    if not row:
        return {}
    j = row["json"]["median"]
    out = {"cpu_s": {"value": j["cpu_s"], "target": f"< {GOAL['cpu_s']} s on one core (CPU time)",
                     "met": j["cpu_s"] < GOAL["cpu_s"]},
           "wall_s": {"value": j["wall_s"], "target": f"< {GOAL['cpu_s']} s wall", "met": j["wall_s"] < GOAL["cpu_s"]},
           "rss_mib": {"value": j["rss_mib"], "target": f"< {GOAL['rss_mib']:.0f} MB", "met": j["rss_mib"] < GOAL["rss_mib"]}}
    if "table" in row:
        ratio = row["table"]["median"]["cpu_s"] / j["cpu_s"]
        out["table_over_json"] = {"value": round(ratio, 3), "target": "-o table within 2x of JSON (CPU time)",
                                  "met": ratio <= GOAL["table_over_json"]}
    return out


def main(args: argparse.Namespace) -> int:
    cfg = QUICK if args.quick else FULL
    sizes = tuple(int(x) for x in args.plan_sizes.split(",")) if args.plan_sizes else cfg["sizes"]
    runs = args.plan_runs or cfg["runs"]

    def log(msg: str) -> None:
        print(f"[plan] {msg}", flush=True)

    # the goal is per core: pinned here, every child (awan plan, SkyPilot's worker) inherits the one core
    core = None if args.no_pin else pin_one_core()
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    payload: dict[str, Any] = {"suite": "plan", "quick": bool(args.quick), "machine": machine_info(core),
                               "command": " ".join(["python -m bench", *sys.argv[1:]]), "errors": {}}
    with tempfile.TemporaryDirectory(prefix="awan-plan-bench-") as d:
        payload["ours"] = run_ours(sizes, int(cfg["table_up_to"]), runs, Path(d), log, args.plan_peer_awan,
                                   args.plan_json_full)
    peer = payload["ours"].pop("peer", None)
    if peer is not None:
        payload["peer"] = {"awan": args.plan_peer_awan, "results": peer}
    if not args.plan_no_sky:
        try:
            payload["skypilot"] = run_sky(args.plan_sky_requests or int(cfg["sky"]), sizes, log)
        except Exception as e:      # the peer is reported missing, ours still stands
            payload["errors"]["skypilot"] = f"{type(e).__name__}: {e}"
            log(f"skypilot unavailable: {e}")
    payload["load_average"] = {"start": [round(x, 2) for x in load0], "end": [round(x, 2) for x in os.getloadavg()]}
    payload["targets"] = _verdict(payload["ours"])
    payload["total_seconds"] = round(time.perf_counter() - t0, 1)
    for who, rows in (("ours", payload["ours"]), ("peer", (payload.get("peer") or {}).get("results", {}))):
        for n, row in rows.items():
            for fmt, r in row.items():
                m = r["median"]
                log(f"{who} {n:>7} {fmt:5}: {m['wall_s']:.2f} s wall, {m['cpu_s']:.2f} s CPU, "
                    f"{m['rss_mib']:.0f} MiB, {m['bytes']:,.0f} bytes (median of {len(r['runs'])})")
    for v in payload["targets"].values():
        log(f"[{'MET' if v['met'] else 'NOT MET'}] {v['target']}: {v['value']}")
    path = write_results(args.results_dir, "plan", payload)
    log(f"raw results: {path}")
    return 0
