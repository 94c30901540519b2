"""``python -m bench --suite rate``: submit -> Placed at a fixed offered rate, through the whole service.

For each database (a temporary SQLite file; a fresh PostgreSQL database) and each offered rate (workloads/s:
100/s for 10 s, 1,000/s for 5 s by default): the mock clouds in one process, ``awan serve`` in another
(reconcile loop on, the local engine, the service's default interval), and ``--rate-procs`` open-loop
submitter processes (``bench.rate.submitter``) sending one-GPU workloads on a fixed schedule, one per POST or
``--rate-docs K`` per POST (a multi-document body). Latency of a workload = its ``placedAt`` (stamped by the
loop) minus the moment it was due, both wall clock on this machine. Reported: submit answer p50/p99,
submit -> Placed p50/p99/max, the rate the submitters got POSTs out at, the rate the service accepted
(workloads and POSTs, 201s over the window), the rate the loop placed at (overall, and after the last answer,
when it places alone), the loop's passes and decisions from /metrics, and where the workloads ended.
``--rate-pool-nodes N`` sizes the mock clouds' pools so that every workload can be placed (stack.size_pools)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.api.service import REPO, fresh_database, member_token
from bench.machine import machine_info, percentile, write_results
from bench.rate.stack import mock_clouds, proc_cpu_s, service, size_pools, tree_cpu_s, tree_env

PG_URL = os.environ.get("AWAN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _ints(s: str) -> tuple[int, ...]:
    return tuple(int(x) for x in s.split(","))


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--rate-rates", type=_ints, default=None, help="offered submissions/s (default 100,1000)")
    group.add_argument("--rate-seconds", type=_ints, default=None, help="seconds per rate (default 10,5)")
    group.add_argument("--rate-db", default=None, help="sqlite,postgresql (default both)")
    group.add_argument("--rate-procs", type=int, default=2, help="submitter processes sharing the schedule")
    group.add_argument("--rate-workers", type=int, default=1,
                       help="API worker processes of the service (AWAN_API_WORKERS; a tree without it serves one)")
    group.add_argument("--rate-tree", type=Path, default=None,
                       help="serve (and run the mock clouds of) this checkout, e.g. a peer revision's worktree "
                            "(default: this one); the submitters and the figures are this tree's")
    group.add_argument("--rate-where", default=None,
                       help="the workloads' location.regions, e.g. \"['*']\" (default ['aws:*', 'gcp:*'])")
    group.add_argument("--rate-gpus", default=None,
                       help="the workloads' gpus.model, e.g. \"[L4]\" (default [H100, A100, L4])")
    group.add_argument("--rate-docs", type=int, default=1,
                       help="workloads per POST (a multi-document YAML body); --rate-rates stays workloads/s")
    group.add_argument("--rate-client", choices=("raw", "httpx"), default="raw",
                       help="the submitters' HTTP client: raw asyncio streams (default) or httpx (the earlier one)")
    group.add_argument("--rate-pool-nodes", type=int, default=0,
                       help="set every mock cloud pool to this many free nodes before the cell (default: the "
                            "seeded pools), so the clouds' quotas, which placement reads, bound it, not stock-outs")
    group.add_argument("--rate-drain-s", type=float, default=600.0,
                       help="longest wait for the accepted workloads to be placed after the window")
    group.add_argument("--rate-running-s", type=float, default=0.0,
                       help="then wait up to this long for the placed workloads to be Running, and report submit -> "
                            "Running (default 0: not waited for)")
    group.add_argument("--rate-runners", type=int, default=None,
                       help="AWAN_RUNNER_PROCESSES of the service (default: the tree's own; a tree without it ignores it)")


def submit_schedule(url: str, token: str, rate: float, seconds: float, prefix: str, procs: int,
                    workdir: Path, stop: Path | None = None, ready: threading.Event | None = None,
                    cpu: list[float] | None = None, docs: int = 1, client: str = "raw") -> list[dict[str, Any]]:
    """Run ``procs`` submitter processes on one schedule, started once all are up; their requests, merged.
    ``stop``: a file whose appearance ends the schedule early; ``ready``: set when the schedule starts;
    ``cpu``: each submitter's CPU seconds over the schedule are appended to it; ``docs``: workloads per POST;
    ``client``: the submitters' HTTP client (``raw`` or ``httpx``). One row per workload."""
    outs = [workdir / f"{prefix}submit{k}.json" for k in range(procs)]
    ps = [subprocess.Popen([sys.executable, "-m", "bench.rate.submitter", url, token, str(rate), str(seconds), prefix,
                            str(out), str(k), str(procs), "--docs", str(docs), "--client", client], cwd=REPO, env=tree_env(REPO))
          for k, out in enumerate(outs)]
    try:
        deadline = time.monotonic() + 300
        while not all(Path(f"{out}.started").exists() for out in outs):
            if any(p.poll() is not None for p in ps) or time.monotonic() > deadline:
                raise RuntimeError("a submitter did not start")
            time.sleep(0.05)
        start = repr(time.time() + 0.5)
        for out in outs:
            Path(f"{out}.go.tmp").write_text(start)
            Path(f"{out}.go.tmp").rename(f"{out}.go")
        if ready is not None:
            ready.set()
        while any(p.poll() is None for p in ps):
            if stop is not None and stop.exists():
                for out in outs:
                    Path(str(out) + ".stop").touch()
            time.sleep(0.2)
    finally:
        for p in ps:
            if p.poll() is None:
                p.kill()
    if any(p.returncode for p in ps):
        raise RuntimeError(f"a submitter failed: exit codes {[p.returncode for p in ps]}")
    got = [json.loads(out.read_text()) for out in outs]
    if cpu is not None:
        cpu += [g.get("cpu_s", 0.0) for g in got]
    return [r for g in got for r in g["requests"]]


@contextlib.contextmanager
def _store(db_url: str) -> Iterator[Any]:
    from controlplane.store.db import Database

    db = Database.from_url(db_url)
    try:
        yield db
    finally:
        db.dispose()


def placed_times(db_url: str, names: set[str], drain_s: float) -> dict[str, float]:
    """Wait (up to ``drain_s`` without progress... or in all) until every name has a placedAt; name -> its
    placedAt as a wall-clock timestamp, for those that have one."""
    from sqlalchemy import func, select

    from controlplane.store.models import Workload

    deadline = time.monotonic() + drain_s
    with _store(db_url) as db:
        while True:
            with db.session() as s:
                n = s.scalar(select(func.count()).select_from(Workload).where(Workload.placed_at.is_not(None))) or 0
            if n >= len(names) or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        with db.session() as s:
            rows = s.execute(select(Workload.name, Workload.placed_at).where(Workload.placed_at.is_not(None))).all()
    return {name: at.timestamp() for name, at in rows if name in names}


def running_times(db_url: str, names: set[str], bound_s: float) -> dict[str, float]:
    """As ``placed_times``, for runningAt (the first time each was Running): wait up to ``bound_s`` for all."""
    from sqlalchemy import func, select

    from controlplane.store.models import Workload

    deadline = time.monotonic() + bound_s
    with _store(db_url) as db:
        while time.monotonic() < deadline:
            with db.session() as s:
                n = s.scalar(select(func.count()).select_from(Workload).where(Workload.running_at.is_not(None))) or 0
            if n >= len(names):
                break
            time.sleep(1.0)
        with db.session() as s:
            rows = s.execute(select(Workload.name, Workload.running_at).where(Workload.running_at.is_not(None))).all()
    return {name: at.timestamp() for name, at in rows if name in names}


def where_they_are(db_url: str, names: set[str]) -> dict[str, dict[str, int]]:
    """At the end of a cell: the placed workloads counted by state (Placed, Provisioning, Running; a launch
    that failed sends one back to Pending), the others by state and the start of their message (why they
    were not placed: no capacity left, a quota, ...)."""
    from collections import Counter

    from sqlalchemy import select

    from controlplane.store.models import Workload

    placed: Counter[str] = Counter()
    unplaced: Counter[str] = Counter()
    with _store(db_url) as db, db.session() as s:
        for name, state, message, placed_at in s.execute(
                select(Workload.name, Workload.state, Workload.message, Workload.placed_at)):
            if name not in names:
                continue
            if placed_at is not None:
                placed[state] += 1
            else:
                unplaced[f"{state}: {message[:70]}"] += 1
    return {"placed_by_state": dict(placed), "unplaced": dict(unplaced.most_common(5))}


def tree_token(tree: Path, db_url: str) -> str:
    """A member token made by ``tree``'s own code (which migrates the store to its own head)."""
    code = "import sys; from bench.api.service import member_token; print(member_token(sys.argv[1]))"
    out = subprocess.run([sys.executable, "-c", code, db_url], cwd=tree, env=tree_env(tree), check=True,
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def warm_up(url: str, token: str, db_url: str, bound_s: float, where: str | None, gpus: str | None) -> None:
    """One workload submitted and placed before the schedule starts: the token is verified (a cold token
    cache answers 429 to more than a few concurrent first uses: its budget of failed checks is reserved
    while scrypt runs) and the loop has built its first fleet snapshot, so the figures are steady state."""
    from bench.rate.submitter import manifest

    r = httpx.post(f"{url}/v1/workloads", content=manifest("warmup", where, gpus), timeout=120,
                   headers={"Authorization": f"Bearer {token}", "Content-Type": "application/yaml"})
    if r.status_code != 201:
        raise RuntimeError(f"warm-up submit: HTTP {r.status_code}: {r.text[:300]}")
    if "warmup" not in placed_times(db_url, {"warmup"}, bound_s):
        raise RuntimeError(f"warm-up workload not placed within {bound_s} s")


def metrics_text(url: str) -> str:
    """The service's /metrics (Prometheus text), or "" when it does not answer."""
    try:
        r = httpx.get(f"{url}/metrics", timeout=30)
    except httpx.HTTPError:
        return ""
    return r.text if r.status_code == 200 else ""


# What the loop did in a cell, from the service's /metrics at its end: passes (interval and woken) and
# placement decisions, to tell a loop that could not keep up from an API that could not.
_LOOP_METRICS = ("awan_reconcile_ticks_total", "awan_reconcile_woken_passes_total", "awan_placements_total",
                 "awan_provider_errors_total", "awan_failovers_total")


def loop_figures(metrics: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith(_LOOP_METRICS):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def measure(kind: str, rate: int, seconds: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    tree = args.rate_tree or REPO
    docs = args.rate_docs
    with fresh_database(kind, PG_URL) as db_url, mock_clouds(tree, workdir) as config:
        # The store is migrated and the token made by the served tree's code: a peer revision without this
        # tree's newest migration could not open a store this tree had migrated.
        token = member_token(db_url) if tree == REPO else tree_token(tree, db_url)
        if args.rate_pool_nodes:
            size_pools(config, args.rate_pool_nodes)
        pids: list[int] = []
        extra = {} if args.rate_runners is None else {"RUNNER_PROCESSES": str(args.rate_runners)}
        with service(tree, db_url, config, workdir, pids, DB_POOL_SIZE="32", DB_MAX_OVERFLOW="8",
                     API_WORKERS=str(args.rate_workers), **extra) as url:
            warm_up(url, token, db_url, args.rate_drain_s, args.rate_where, args.rate_gpus)
            load0 = os.getloadavg()
            cpu0, api0, t0 = tree_cpu_s(pids[0]), proc_cpu_s(pids[0]), time.monotonic()
            submitters: list[float] = []
            reqs = submit_schedule(url, token, rate, seconds, f"r{rate}-", args.rate_procs, workdir, cpu=submitters,
                                   docs=docs, client=args.rate_client)
            service_cpu, took = tree_cpu_s(pids[0]) - cpu0, time.monotonic() - t0
            api_cpu = proc_cpu_s(pids[0]) - api0
            ok = {r["name"]: r for r in reqs if r["status"] == 201}
            placed = placed_times(db_url, set(ok), args.rate_drain_s)
            drain_cpu, drain_s = tree_cpu_s(pids[0]) - cpu0 - service_cpu, time.monotonic() - t0 - took
            tally = where_they_are(db_url, set(ok))
            t1 = time.monotonic()
            running = running_times(db_url, set(placed), args.rate_running_s) if args.rate_running_s else {}
            running_wait_s = time.monotonic() - t1
            load1 = os.getloadavg()
            metrics = metrics_text(url)
    reqs.sort(key=lambda r: r["due"])
    first_due = reqs[0]["due"] if reqs else 0.0
    posts = {r["post"]: r for r in reqs}
    sent = sorted(r["sent"] for r in posts.values())
    done = [r["done"] for r in ok.values()]
    answer = sorted(1000 * (r["done"] - r["due"]) for r in ok.values())
    lat = sorted(placed[n] - ok[n]["due"] for n in placed)
    run_lat = sorted(running[n] - ok[n]["due"] for n in running)
    # From the answer (the commit) to Placed: the loop's part alone, without the time queued for the API.
    after = sorted(placed[n] - ok[n]["done"] for n in placed)
    errors = [r for r in posts.values() if r["status"] != 201]
    window = (max(done) - first_due) if done else 0.0
    last_answer = max(r["done"] for r in reqs) if reqs else 0.0
    # The loop's rate once every submit has answered (the API idle, the loop alone placing the rest).
    tail = sorted(t for t in placed.values() if t > last_answer)
    res = {
        "db": kind, "offered_rate": rate, "seconds": seconds, "docs_per_post": docs, "client": args.rate_client,
        "offered_post_rate": round(rate / docs, 1), "requests": len(reqs), "posts": len(posts),
        "accepted": len(ok), "accepted_posts": sum(r["status"] == 201 for r in posts.values()),
        "errors": len(errors), "first_error": (f"HTTP {errors[0]['status']}: {errors[0]['error']}" if errors else ""),
        "sent_rate": round(len(sent) / (sent[-1] - sent[0]), 1) if len(sent) > 1 else 0.0,
        "accepted_rate": round(len(ok) / window, 1) if window else 0.0,
        "accepted_post_rate": round(sum(r["status"] == 201 for r in posts.values()) / window, 1) if window else 0.0,
        "answer_p50_ms": round(percentile(answer, 50), 1), "answer_p99_ms": round(percentile(answer, 99), 1),
        "placed": len(lat), "placed_p50_s": round(percentile(lat, 50), 3), "placed_p99_s": round(percentile(lat, 99), 3),
        "placed_max_s": round(lat[-1], 3) if lat else 0.0,
        "answered_placed_p50_s": round(percentile(after, 50), 3), "answered_placed_p99_s": round(percentile(after, 99), 3),
        "placed_rate": round(len(lat) / (max(placed.values()) - first_due), 1) if lat else 0.0,
        "placed_before_last_answer": len(lat) - len(tail),
        "tail_placed_rate": round(len(tail) / (tail[-1] - last_answer), 1) if len(tail) > 1 else 0.0,
        "load_before": load0, "load_after": load1, "workers": args.rate_workers, "tree": str(tree),
        "where": args.rate_where or "", "gpus": args.rate_gpus or "", "pool_nodes": args.rate_pool_nodes,
        # CPU seconds while the schedule ran (until its last answer): the service's processes (API workers and
        # the controller process), and the submitters (over their schedule), which share the machine's cores.
        "schedule_s": round(took, 1), "service_cpu_s": round(service_cpu, 1),
        # ... of which ``awan serve``'s own process (with one worker: the API alone, the controller is a
        # child), and that per workload accepted: the API's CPU cost of a submit under the real load.
        "api_cpu_s": round(api_cpu, 2),
        "api_cpu_ms_per_accepted": round(1000 * api_cpu / len(ok), 3) if ok else 0.0,
        "submitters_cpu_s": round(sum(submitters), 1),
        # ... and from the last answer until every workload was placed (or the bound): the API idle, the
        # controller process placing the rest; about 1 core here means the loop is CPU-bound.
        "drain_s": round(drain_s, 1), "service_cpu_drain_s": round(drain_cpu, 1),
        "loop": loop_figures(metrics), **tally, "runners": args.rate_runners,
        # With --rate-running-s: how many of the placed were Running by the end of that wait, and submit -> Running.
        "running": len(run_lat), "running_wait_s": round(running_wait_s, 1),
        "running_p50_s": round(percentile(run_lat, 50), 3), "running_p99_s": round(percentile(run_lat, 99), 3),
        "running_max_s": round(run_lat[-1], 3) if run_lat else 0.0,
        # Running within so long of its submit: comparable across trees whose placing drains end at different times.
        "running_within_s": {str(b): sum(x <= b for x in run_lat) for b in (60, 120, 180, 240, 300, 360)},
    }
    print(f"rate: {kind} offered {rate} workloads/s x {seconds} s, {docs} per POST ({res['offered_post_rate']} POST/s, "
          f"{args.rate_client} client): sent {res['sent_rate']} POST/s, accepted {res['accepted']} workloads "
          f"({res['accepted_rate']}/s, {res['accepted_post_rate']} POST/s, {res['errors']} POST errors "
          f"{res['first_error'][:80]!r}), answer p50/p99 {res['answer_p50_ms']}/{res['answer_p99_ms']} ms; placed "
          f"{res['placed']} p50/p99/max {res['placed_p50_s']}/{res['placed_p99_s']}/{res['placed_max_s']} s at "
          f"{res['placed_rate']}/s (after the last answer {res['tail_placed_rate']}/s; answered -> Placed p50/p99 "
          f"{res['answered_placed_p50_s']}/{res['answered_placed_p99_s']} s); tree {tree}; load {load0[0]:.1f}->"
          f"{load1[0]:.1f}; CPU over {res['schedule_s']} s: service {res['service_cpu_s']} s (API process "
          f"{res['api_cpu_s']} s, {res['api_cpu_ms_per_accepted']} ms a workload accepted), submitters "
          f"{res['submitters_cpu_s']} s (workers {args.rate_workers}); then {res['drain_s']} s placing the rest: service "
          f"CPU {res['service_cpu_drain_s']} s; loop {res['loop']}; placed by state {tally['placed_by_state']}, not placed "
          f"{tally['unplaced']}; Running {res['running']} (submit -> Running p50/p99/max {res['running_p50_s']}/"
          f"{res['running_p99_s']}/{res['running_max_s']} s, waited {res['running_wait_s']} s)", flush=True)
    return res


def main(args: argparse.Namespace) -> int:
    if args.rate_where:
        os.environ["BENCH_RATE_WHERE"] = args.rate_where      # the submitter processes inherit it
    rates = args.rate_rates or ((20,) if args.quick else (100, 1000))
    seconds = args.rate_seconds or ((2,) if args.quick else (10, 5))
    if len(seconds) == 1:
        seconds = seconds * len(rates)
    kinds = (args.rate_db or ("sqlite" if args.quick else "sqlite,postgresql")).split(",")
    result: dict[str, Any] = {"suite": "rate", "machine": machine_info(None), "quick": args.quick,
                              "procs": args.rate_procs, "load_before": os.getloadavg(), "cells": []}
    t0 = time.perf_counter()
    for kind in kinds:
        for rate, secs in zip(rates, seconds, strict=True):
            with tempfile.TemporaryDirectory(prefix="awan-bench-rate-") as d:
                result["cells"].append(measure(kind, rate, secs, args, Path(d)))
    result["load_after"] = os.getloadavg()
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"rate: results in {write_results(args.results_dir, 'rate', result)}", flush=True)
    return 0 if all(c["accepted"] for c in result["cells"]) else 1
