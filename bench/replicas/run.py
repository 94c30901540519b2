"""``python -m bench --suite replicas``: provisioning throughput with 1, 2 and 4 replicas of ``awan serve``
on one PostgreSQL, against the AWS mock cloud with a realistic latency per call injected through its fault
API (default 500 ms a RunInstances, 100 ms a DescribeInstances).

Each run: fresh schema, fresh mocks (capacity and quotas lifted), R replicas started and ready, then N
one-node workloads pinned round-robin to ``--replicas-regions`` AWS regions (one stack each) submitted in
one request; the figure is N / (seconds from the submit until every workload is Running). Every replica
runs at most ``--replicas-workers`` stacks at once (AWAN_STACK_WORKERS = AWAN_PROVIDER_CONCURRENCY), so one
replica's cloud calls are bounded as a rate limit bounds them, and replicas add capacity: the question is
whether the shared stack leases turn R replicas into R times the stacks in flight. Median of ``--replicas-runs``.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.machine import machine_info, write_results

REPO = Path(__file__).resolve().parents[2]
# AWS regions whose catalog has on-demand p5.48xlarge (H100): one stack each.
REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-2", "ca-central-1", "ap-northeast-1", "ap-south-1",
           "ap-southeast-2")
# Warm-up stacks (never measured): every replica's first placement and first stack run import and build
# what later ones reuse (about 20 s each on a loaded 2-core machine), a cost of starting, not of provisioning.
WARM_REGIONS = ("us-west-1", "eu-north-1", "ap-northeast-2", "ap-southeast-3")
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--replicas-counts", type=lambda s: tuple(int(x) for x in s.split(",")), default=None,
                       help="replica counts, comma-separated (default 1,2,4; --quick: 1,2)")
    group.add_argument("--replicas-workloads", type=int, default=None, help="workloads a run (default 64; --quick 8)")
    group.add_argument("--replicas-regions", type=int, default=None, help="AWS regions = stacks (default 8; --quick 2)")
    group.add_argument("--replicas-workers", type=int, default=1, help="stacks one replica runs at once (default 1)")
    group.add_argument("--replicas-runs", type=int, default=None, help="runs per count (default 3; --quick 1)")
    group.add_argument("--replicas-create-ms", type=float, default=500.0, help="latency of RunInstances")
    group.add_argument("--replicas-list-ms", type=float, default=100.0, help="latency of DescribeInstances")
    group.add_argument("--replicas-pg", default=os.environ.get("AWAN_TEST_PG_URL", PG_DEFAULT),
                       help="PostgreSQL server (a schema is made per run and dropped)")


def manifest(i: int, regions: tuple[str, ...], prefix: str = "w") -> str:
    return (f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {prefix}-{i:04d}, team: bench}}\n"
            f"spec: {{kind: inference, gpus: {{model: H100, count: 8, perNode: 8}}, "
            f"location: {{regions: ['aws:{regions[i % len(regions)]}']}}}}\n")


class Schema:
    def __init__(self, base: str) -> None:
        self.base, self.name = base, f"awan_b_{uuid.uuid4().hex[:10]}"
        self.url = make_url(base).update_query_dict({"options": f"-csearch_path={self.name}"}).render_as_string(
            hide_password=False)

    def __enter__(self) -> Schema:
        eng = create_engine(self.base)
        with eng.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{self.name}"'))
        eng.dispose()
        return self

    def __exit__(self, *exc: Any) -> None:
        eng = create_engine(self.base)
        with eng.begin() as c:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
        eng.dispose()


def prepare(db_url: str) -> str:
    from controlplane.auth import create_token
    from controlplane.store.db import Database
    from controlplane.store.migrate import upgrade

    db = Database.from_url(db_url)
    try:
        upgrade(db.engine)
        with db.session() as s:
            token, _ = create_token(s, "bench", "member")
    finally:
        db.dispose()
    return token


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_replica(i: int, db_url: str, config: Path, workers: int, logdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "AWAN_DB_URL": db_url, "AWAN_CONFIG": str(config), "AWAN_PORT": str(port),
           "AWAN_REPLICA_ID": f"replica-{i}", "AWAN_STACK_WORKERS": str(workers),
           "AWAN_PROVIDER_CONCURRENCY": str(workers), "AWAN_RECONCILE_INTERVAL_S": "0.5",
           "AWAN_LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO)}
    log = (logdir / f"replica-{i}.log").open("ab")
    p = subprocess.Popen([sys.executable, "-m", "controlplane.cli.main", "serve"], cwd=REPO, env=env,
                         stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return p, f"http://127.0.0.1:{port}"


def wait_ready(url: str, p: subprocess.Popen[bytes], timeout_s: float = 240.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"replica exited with {p.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("replica not ready")


def states(db_url: str, prefix: str = "w-") -> dict[str, int]:
    eng = create_engine(db_url)
    try:
        with eng.connect() as c:
            return {str(k): int(v) for k, v in c.execute(text(
                "SELECT state, count(*) FROM workloads WHERE name LIKE :p GROUP BY state"), {"p": prefix + "%"})}
    finally:
        eng.dispose()


def submit(url: str, token: str, body: str) -> None:
    r = httpx.post(f"{url}/v1/workloads", content=body, timeout=120,
                   headers={"Authorization": f"Bearer {token}", "Content-Type": "application/yaml"})
    r.raise_for_status()


def wait_running(db_url: str, prefix: str, n: int, timeout_s: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        st = states(db_url, prefix)
        if st.get("Running", 0) == n or time.monotonic() > deadline:
            return st
        time.sleep(0.2)


def one_run(mc: Any, args: argparse.Namespace, replicas: int, n: int, regions: tuple[str, ...],
            workdir: Path) -> dict[str, Any]:
    from bench.provisioning.run import QUOTA_LIMIT, _raise_capacity
    from mockclouds.aws.models import QUOTA_NAMES

    mc.reset()
    _raise_capacity(mc.urls, 10_000)
    aws_state = mc.backend("aws").state
    with aws_state.lock:   # the AWS mock's quotas have no HTTP control; lifted in-process as the provisioning suite does
        aws_state.quota_limits.update({(r, code): QUOTA_LIMIT for (p, r) in aws_state.catalog.regions
                                       if p == "aws" for code in QUOTA_NAMES})
    aws = mc.urls["aws"]
    for op, ms in (("RunInstances", args.replicas_create_ms), ("DescribeInstances", args.replicas_list_ms)):
        httpx.post(f"{aws}/_mock/faults", json={"kind": "latency", "operation": op, "latency_ms": ms},
                   timeout=10).raise_for_status()
    config = mc.write_config(workdir / "awan.yaml")
    with Schema(args.replicas_pg) as schema:
        token = prepare(schema.url)
        procs = [start_replica(i, schema.url, config, args.replicas_workers, workdir) for i in range(replicas)]
        try:
            for p, url in procs:
                wait_ready(url, p)
            warm = len(WARM_REGIONS)
            submit(procs[0][1], token, "\n---\n".join(manifest(i, WARM_REGIONS, "warm") for i in range(warm)))
            warm_st = wait_running(schema.url, "warm-", warm, args.replicas_timeout_s)
            if warm_st.get("Running", 0) != warm:
                raise RuntimeError(f"warm-up did not converge: {warm_st}")
            body = "\n---\n".join(manifest(i, regions) for i in range(n))
            t0 = time.perf_counter()
            submitted = datetime.now(UTC)
            submit(procs[0][1], token, body)
            st = wait_running(schema.url, "w-", n, args.replicas_timeout_s)
            seconds = time.perf_counter() - t0
            load = os.getloadavg()
        finally:
            for p, _ in procs:
                p.send_signal(signal.SIGTERM)
            for p, _ in procs:
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
        eng = create_engine(schema.url)
        with eng.connect() as c:
            runners = {str(a): int(k) for a, k in c.execute(text(
                "SELECT actor, count(*) FROM audit_events WHERE action = 'provisioning' AND subject LIKE 'w-%' "
                "GROUP BY actor"))}
            # When each step happened, seconds after the submit (first, last): where the time went.
            steps = {str(a): [round((lo - submitted).total_seconds(), 1), round((hi - submitted).total_seconds(), 1)]
                     for a, lo, hi in c.execute(text(
                         "SELECT action, min(at), max(at) FROM audit_events WHERE subject LIKE 'w-%' "
                         "OR kind = 'stack' AND at >= :t GROUP BY action"), {"t": submitted})}
        eng.dispose()
    done = st.get("Running", 0) == n
    return {"replicas": replicas, "workloads": n, "seconds": round(seconds, 2), "complete": done, "states": st,
            "workloads_per_s": round(n / seconds, 2) if done else None, "load_avg": [round(x, 2) for x in load],
            "provisioned_by": runners, "steps": steps}


def main(args: argparse.Namespace) -> int:
    from mockclouds.launcher import MockClouds

    counts = args.replicas_counts or ((1, 2) if args.quick else (1, 2, 4))
    n = args.replicas_workloads or (8 if args.quick else 64)
    regions = REGIONS[:args.replicas_regions or (2 if args.quick else 8)]
    runs = args.replicas_runs or (1 if args.quick else 3)
    args.replicas_timeout_s = 300.0 if args.quick else 900.0
    result: dict[str, Any] = {"suite": "replicas", "machine": machine_info(None), "quick": args.quick,
                              "workloads": n, "regions": list(regions), "workers_per_replica": args.replicas_workers,
                              "create_ms": args.replicas_create_ms, "list_ms": args.replicas_list_ms,
                              "load_before": [round(x, 2) for x in os.getloadavg()], "runs": [], "median": {}}
    mc = MockClouds(clouds=("aws",)).start()
    try:
        with tempfile.TemporaryDirectory(prefix="awan-bench-replicas-") as tmp:
            for k in counts:
                for j in range(runs):
                    row = one_run(mc, args, k, n, regions, Path(tmp))
                    result["runs"].append(row)
                    print(f"replicas: {k} replica(s), run {j + 1}/{runs}: {row['seconds']} s, "
                          f"{row['workloads_per_s']} workloads/s, load {row['load_avg']}, "
                          f"by {row['provisioned_by']}; steps {row['steps']}", flush=True)
                rates = [r["workloads_per_s"] for r in result["runs"] if r["replicas"] == k]
                ok = [x for x in rates if x is not None]
                result["median"][str(k)] = statistics.median(ok) if len(ok) == len(rates) else None
    finally:
        mc.stop()
    base = result["median"].get(str(counts[0]))
    result["speedup"] = {str(k): (round(v / base, 2) if v and base else None) for k, v in
                         ((k, result["median"].get(str(k))) for k in counts)}
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    for k in counts:
        print(f"replicas: {k}: median {result['median'][str(k)]} workloads/s, speed-up {result['speedup'][str(k)]}",
              flush=True)
    path = write_results(args.results_dir, "replicas", result)
    print(f"replicas: results in {path}", flush=True)
    return 0 if all(v is not None for v in result["median"].values()) else 1
