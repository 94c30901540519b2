"""``python -m bench --suite stall``: does a large submit stall the API, and do submit/list stay flat as
the store grows? For this tree and a peer revision (``--stall-peer``, default ``main``: checked out with
``git worktree add`` into a temporary directory and served by the same interpreter), each on a fresh SQLite
database, a real service in a subprocess:

- /healthz, polled back to back by one client while another submits 10,000 one-GPU documents (about 850
  KB, under the 1 MiB body limit) and, at the same time, the burst: open-loop clients in their own processes
  (``bench.rate.submitter``, ``--stall-burst-procs``) submit one-GPU workloads one per POST at
  ``--stall-burst-rate`` a second from before the big submit until it has answered. The service is ``awan
  serve`` with its reconcile loop on (placing and provisioning everything submitted, in the same process)
  against the mock clouds in their own process; ``--stall-no-loop``: the API alone (``bench.api.serve``),
  as the suite measured before. p50/p99/max of /healthz, the submit's duration, the burst's answers,
  ``--stall-runs`` runs;
- submit (one document) and list (100) p99 with 4 clients at 1,000 and 100,000 stored workloads, on the API
  alone (the store is filled with plain INSERTs between the two, the same columns in both revisions).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from bench.api.load import run_load
from bench.api.service import REPO, free_port
from bench.machine import machine_info, percentile, write_results
from bench.rate.stack import healthy, mock_clouds, service

_TICK = os.sysconf("SC_CLK_TCK")


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--stall-peer", default="main",
                       help="git revision to compare with, e.g. the commit before a change ('' for none)")
    group.add_argument("--stall-runs", type=int, default=None, help="runs of the submit test (default 3)")
    group.add_argument("--stall-documents", type=int, default=None, help="documents per submit (default 10000)")
    group.add_argument("--stall-store", type=lambda s: tuple(int(x) for x in s.split(",") if x), default=None,
                       help="store sizes for submit/list p99 (default 1000,100000; '' for none)")
    group.add_argument("--stall-no-loop", action="store_true",
                       help="serve the API alone (bench.api.serve) for the /healthz test, as before; default: "
                            "`awan serve` with its reconcile loop on the mock clouds, in their own process")
    group.add_argument("--stall-burst-rate", type=float, default=None,
                       help="one-GPU submissions/s sent during the big submit by open-loop clients (default 20; "
                            "0 for none)")
    group.add_argument("--stall-burst-procs", type=int, default=2, help="client processes of the burst")
    group.add_argument("--stall-tree", type=Path, default=None,
                       help="serve this source tree instead of this checkout (e.g. a peer's worktree, to alternate "
                            "runs of two trees under one harness); labelled tree:<its folder's name>")
    group.add_argument("--stall-floor", action="store_true",
                       help="also poll a bare uvicorn /healthz in its own process (bench/stall/floor.py), "
                            "alternating with the service's in the same window: the machine's floor at this load")


def documents(n: int, prefix: str) -> str:
    return "".join(f"- {{metadata: {{name: {prefix}{i}}}, spec: {{kind: inference, gpus: {{model: H100, count: 1}}}}}}\n"
                   for i in range(n))


@contextlib.contextmanager
def peer_tree(rev: str) -> Iterator[Path | None]:
    if not rev:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="awan-bench-peer-") as d:
        path = Path(d) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), rev], check=True,
                       capture_output=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)], capture_output=True)


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _token(tree: Path, db_url: str) -> str:
    code = "import sys; from bench.api.service import member_token; print(member_token(sys.argv[1]))"
    out = subprocess.run([sys.executable, "-c", code, db_url], cwd=tree, env=_env(tree), check=True,
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def serve(tree: Path, db_url: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.api.serve", db_url, str(port), ""], cwd=tree,
                            env=_env(tree), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with _running(proc, f"http://127.0.0.1:{port}", "the API") as url:
        yield url


@contextlib.contextmanager
def floor_server() -> Iterator[str]:
    """bench/stall/floor.py in its own process; yields its URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.stall.floor", str(port)], cwd=REPO, env=_env(REPO),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with _running(proc, f"http://127.0.0.1:{port}", "the floor server") as url:
        yield url


@contextlib.contextmanager
def _running(proc: subprocess.Popen[bytes], url: str, what: str) -> Iterator[str]:
    """``url`` once ``proc`` answers /healthz; the process terminated afterwards."""
    try:
        if not healthy(proc, url, 120):
            raise RuntimeError(f"stall: {what} did not come up")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def healthz_during_submit(url: str, token: str, n: int, prefix: str, burst_rate: float = 0.0, burst_procs: int = 2,
                          workdir: Path | None = None, floor: str | None = None) -> dict[str, Any]:
    """/healthz polled back to back while one client submits ``n`` documents in one body and, when
    ``burst_rate``, open-loop clients in their own processes submit one-GPU workloads at that rate. With
    ``floor`` (a bare server's URL), each poll of the service is followed by one of the floor."""
    if burst_rate > 0 and workdir is not None:
        return _with_burst(url, token, n, prefix, burst_rate, burst_procs, workdir, floor)
    return _healthz_during_submit(url, token, n, prefix, floor)


def _with_burst(url: str, token: str, n: int, prefix: str, rate: float, procs: int, workdir: Path,
                floor: str | None) -> dict[str, Any]:
    from bench.rate.run import submit_schedule

    stop = workdir / f"{prefix}burst.stop"
    burst: list[dict[str, Any]] = []
    ready = threading.Event()
    t = threading.Thread(target=lambda: burst.extend(
        submit_schedule(url, token, rate, 3600, f"{prefix}b", procs, workdir, stop=stop, ready=ready)))
    t.start()
    ready.wait(300)
    time.sleep(2.0)             # the burst under way before the big submit starts
    try:
        out = _healthz_during_submit(url, token, n, prefix, floor)
    finally:
        stop.touch()
        t.join()
    ok = sorted(1000 * (r["done"] - r["due"]) for r in burst if r["status"] == 201)
    # what the refused ones got (status and the start of the answer or the client's error), so a figure of
    # "accepted" says why the rest were not
    refused = Counter(f"{r['status']} {r['error'][:80]}" for r in burst if r["status"] != 201)
    return {**out, "burst_rate": rate, "burst_sent": len(burst), "burst_accepted": len(ok),
            "burst_refused": dict(refused.most_common(5)),
            "burst_answer_p50_ms": round(percentile(ok, 50), 1), "burst_answer_p99_ms": round(percentile(ok, 99), 1)}


def _healthz_during_submit(url: str, token: str, n: int, prefix: str, floor: str | None) -> dict[str, Any]:
    body = documents(n, prefix)
    done = threading.Event()
    out: dict[str, Any] = {}

    def submit() -> None:
        t0 = time.perf_counter()
        with httpx.Client(base_url=url, timeout=600) as c:
            r = c.post("/v1/workloads", content=body, headers={"Authorization": f"Bearer {token}"})
        out["submit_s"] = round(time.perf_counter() - t0, 2)
        out["submit_status"] = r.status_code
        done.set()

    lat: list[float] = []
    floor_lat: list[float] = []
    t = threading.Thread(target=submit)
    with httpx.Client(base_url=url, timeout=600) as c, httpx.Client(base_url=floor or url, timeout=600) as f:
        t.start()
        while not done.is_set():
            t0 = time.perf_counter()
            c.get("/healthz")
            lat.append((time.perf_counter() - t0) * 1000)
            if floor:
                t0 = time.perf_counter()
                f.get("/healthz")
                floor_lat.append((time.perf_counter() - t0) * 1000)
    t.join()
    lat.sort()
    res = {**out, "healthz_n": len(lat), "healthz_p50_ms": round(percentile(lat, 50), 1),
           "healthz_p99_ms": round(percentile(lat, 99), 1), "healthz_max_ms": round(lat[-1], 1)}
    if floor_lat:
        floor_lat.sort()
        res.update(floor_p50_ms=round(percentile(floor_lat, 50), 1), floor_p99_ms=round(percentile(floor_lat, 99), 1),
                   floor_max_ms=round(floor_lat[-1], 1))
    return res


def service_processes(root: int) -> dict[int, tuple[str, int, float, int]]:
    """The served service's processes (Linux /proc): pid -> (role, nice of the main thread, CPU seconds,
    start tick). Roles: ``api`` (the ``awan serve`` process), ``controller`` (its first-started ``spawn``
    child: the loop's process starts before any parse worker), ``parse`` (later ``spawn`` children), ``other``."""
    found: dict[int, tuple[int, int, float, int, bytes]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        found[int(d.name)] = (int(f[1]), int(f[16]), (int(f[11]) + int(f[12])) / _TICK, int(f[19]), cmd)
    if root not in found:
        return {}
    kids = sorted((v[3], pid) for pid, v in found.items() if v[0] == root and b"spawn_main" in v[4])
    out = {root: ("api", found[root][1], found[root][2], found[root][3])}
    for k, (_, pid) in enumerate(kids):
        out[pid] = ("controller" if k == 0 else "parse", found[pid][1], found[pid][2], found[pid][3])
    for pid, v in found.items():
        if v[0] == root and pid not in out:
            out[pid] = ("other", v[1], v[2], v[3])
    return out


def cpu_by_role(before: dict[int, tuple[str, int, float, int]],
                after: dict[int, tuple[str, int, float, int]]) -> dict[str, dict[str, float]]:
    """CPU seconds each role used between two snapshots, and its nice value."""
    out: dict[str, dict[str, float]] = {}
    for pid, (role, nice, cpu, start) in after.items():
        was = before.get(pid)
        used = cpu - (was[2] if was is not None and was[3] == start else 0.0)
        row = out.setdefault(role, {"cpu_s": 0.0, "nice": nice})
        row["cpu_s"] = round(row["cpu_s"] + used, 2)
    return out


def fill(db_path: str, upto: int) -> None:
    """Plain INSERTs up to ``upto`` workloads (team 'bench', Running: the list's default filter keeps them)."""
    conn = sqlite3.connect(db_path, timeout=60)
    have = conn.execute("SELECT count(*) FROM workloads").fetchone()[0]
    spec = '{"apiVersion": "awan.dev/v1alpha1", "kind": "GPUWorkload", "metadata": {"name": "x"}}'
    now = "2026-11-30 00:00:00.000000"
    rows = [(f"fill{i}", "bench", spec, 0, 1, "Running", "", 1, 1, now, now) for i in range(have, upto)]
    conn.executemany("INSERT INTO workloads (name, team, spec, priority, gpus, state, message, generation, "
                     "observed_generation, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.commit()
    conn.close()


def _runs(label: str, name: str, url: str, token: str, runs: int, n_docs: int, burst: float, procs: int,
          workdir: Path, res: dict[str, Any], floor: str | None = None, root: int | None = None) -> None:
    # The token verified once before the clients start: a cold token cache answers 429 to more than a few
    # concurrent first uses of one token (its budget of failed checks is reserved while scrypt runs).
    first = httpx.get(f"{url}/v1/workloads", params={"limit": 1}, headers={"Authorization": f"Bearer {token}"},
                      timeout=300)
    if first.status_code != 200:
        raise RuntimeError(f"stall: the token was refused: HTTP {first.status_code} {first.text[:200]}")
    for i in range(runs):
        load0 = os.getloadavg()
        procs0 = service_processes(root) if root is not None else {}
        r = healthz_during_submit(url, token, n_docs, f"{name}-r{i}-", burst, procs, workdir, floor)
        r["load_before"], r["load_after"] = load0, os.getloadavg()
        if root is not None:
            r["cpu"] = cpu_by_role(procs0, service_processes(root))
        res["stall"].append(r)
        extra = (f"; burst {r['burst_accepted']}/{r['burst_sent']} accepted, answer p50/p99 "
                 f"{r['burst_answer_p50_ms']}/{r['burst_answer_p99_ms']} ms" if "burst_sent" in r else "")
        if r.get("burst_refused"):
            extra += f" (refused: {r['burst_refused']})"
        if "cpu" in r:
            extra += "; CPU " + ", ".join(f"{k} {v['cpu_s']} s (nice {v['nice']:g})" for k, v in sorted(r["cpu"].items()))
        if "floor_p99_ms" in r:
            extra += f"; floor /healthz p50 {r['floor_p50_ms']} ms p99 {r['floor_p99_ms']} ms max {r['floor_max_ms']} ms"
        print(f"stall: {label} run {i + 1}: /healthz p50 {r['healthz_p50_ms']} ms p99 {r['healthz_p99_ms']} ms "
              f"max {r['healthz_max_ms']} ms over {r['healthz_n']}; submit {r['submit_s']} s "
              f"(HTTP {r['submit_status']}){extra}; load {load0[0]:.1f}->{r['load_after'][0]:.1f}", flush=True)


def measure(label: str, tree: Path, args: argparse.Namespace, runs: int, n_docs: int,
            sizes: tuple[int, ...], name: str) -> dict[str, Any]:
    """``name``: the workloads' name prefix, four letters for every tree (each has a store of its own): the
    10,000-document body is then the same size whichever tree is measured."""
    res: dict[str, Any] = {"tree": label, "stall": [], "growth": []}
    burst = 0.0 if args.stall_burst_rate is None and args.quick else (
        20.0 if args.stall_burst_rate is None else args.stall_burst_rate)
    res["loop"], res["burst_rate"] = not args.stall_no_loop, burst
    with tempfile.TemporaryDirectory(prefix="awan-bench-stall-") as d:
        if not args.stall_no_loop:
            with contextlib.ExitStack() as stack:
                config = stack.enter_context(mock_clouds(tree, Path(d)))
                db_url = f"sqlite:///{d}/loop.db"
                token = _token(tree, db_url)
                pids: list[int] = []
                url = stack.enter_context(service(tree, db_url, config, Path(d), pids))
                floor = stack.enter_context(floor_server()) if args.stall_floor else None
                _runs(label, name, url, token, runs, n_docs, burst, args.stall_burst_procs, Path(d), res, floor,
                      pids[0])
        if not sizes and not args.stall_no_loop:
            return _with_median(res)
        db_url = f"sqlite:///{d}/awan.db"
        token = _token(tree, db_url)
        with serve(tree, db_url) as url:
            if args.stall_no_loop:
                _runs(label, name, url, token, runs, n_docs, burst, args.stall_burst_procs, Path(d), res)
            for size in sizes:
                fill(f"{d}/awan.db", size)
                for op in ("submit", "list"):
                    lr = run_load(url, token, op, 4, 1.0 if args.quick else 5.0, prefix=f"{name}-{op}-{size}-")
                    res["growth"].append({"stored": size, **asdict(lr)})
                    print(f"stall: {label} {op} at {size:,} stored: p50 {lr.p50_ms} ms p99 {lr.p99_ms} ms, "
                          f"{lr.rps:,.1f} req/s, {lr.errors} errors", flush=True)
    return _with_median(res)


def _with_median(res: dict[str, Any]) -> dict[str, Any]:
    keys = ["healthz_p50_ms", "healthz_p99_ms", "healthz_max_ms", "submit_s"]
    if res["stall"] and all("floor_p99_ms" in r for r in res["stall"]):
        keys += ["floor_p50_ms", "floor_p99_ms", "floor_max_ms"]
    res["median"] = {k: statistics.median(r[k] for r in res["stall"]) for k in keys}
    return res


def main(args: argparse.Namespace) -> int:
    runs = args.stall_runs or (1 if args.quick else 3)
    n_docs = args.stall_documents or (200 if args.quick else 10_000)
    sizes = args.stall_store if args.stall_store is not None else ((100, 1000) if args.quick else (1_000, 100_000))
    t0 = time.perf_counter()
    result: dict[str, Any] = {"suite": "stall", "machine": machine_info(None), "quick": args.quick,
                              "documents": n_docs, "runs": runs, "load_before": os.getloadavg(), "trees": []}
    tree = args.stall_tree.resolve() if args.stall_tree is not None else REPO
    label = "this" if tree == REPO else f"tree:{tree.name}"
    result["trees"].append(measure(label, tree, args, runs, n_docs, sizes, "this" if tree == REPO else "tree"))
    with peer_tree(args.stall_peer) as peer:
        if peer is not None:
            result["trees"].append(measure(f"peer:{args.stall_peer}", peer, args, runs, n_docs, sizes, "peer"))
    result["load_after"] = os.getloadavg()
    result["seconds"] = round(time.perf_counter() - t0, 1)
    for t in result["trees"]:
        print(f"stall: {t['tree']} median of {runs}: {t['median']}", flush=True)
    path = write_results(args.results_dir, "stall", result)
    print(f"stall: results in {path}", flush=True)
    return 0
