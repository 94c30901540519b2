"""``python -m bench --suite stackrun``: what one large stack's runs cost through the local engine.

The rate benchmark's burst lands 3,000+ one-node pools in one (provider, region) stack, and submit ->
Running is bound by that stack's runs one after another. This suite runs one stack of one provider and
region on the mock clouds in their own process, as the rate benchmark runs them (``awan mockclouds up``,
``bench.rate.stack.size_pools``: every pool's free capacity and GCP's GPU quotas raised; the other
mocks' default quotas refuse a few dozen GPU nodes a region, so a 3,000-pool stack is a GCP one, as in
the rate benchmark's burst):

- ``grow``: the first ``up`` with the first N1 pools (all creates), the second with N2 (N2 - N1 new pools
  beside N1 unchanged), as the burst's second run of a region's stack;
- ``noop``: a third ``up`` of the same N2 pools (must change nothing: checked).

Each run records wall time, this process's CPU (``time.process_time``: the engine and the adapters, which
is what the service's loop process spends on a stack run), the render worker's CPU
(``mockruntime_worker.cpu_seconds``) and the mock clouds' process's CPU. The state goes
to JSON files (the engine's default store, fsync per write) in a fresh temporary directory, or, with
``--stackrun-store sqlite|postgresql``, to the service's store (``DbStackStateStore``: the stack's row, as
``awan serve`` keeps it) in a fresh database.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.machine import machine_info, peak_rss_mib, pin_one_core, write_results
from bench.provisioning.pools import node_pools, slots
from infra.engines.state import FileStateStore, StackStateStore
from infra.spec import NodePoolSpec, desired_stacks
from providers.catalog import default_catalog


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--stackrun-pools", type=lambda s: tuple(int(x) for x in s.split(",")), default=None,
                       help="N1,N2: pools of the first and of the second up (default 1500,3000; --quick: 8,16)")
    group.add_argument("--stackrun-nodes", type=int, default=1,
                       help="nodes per pool (default 1): more makes each pool's create one request for them all")
    group.add_argument("--stackrun-provider", default="gcp", help="the stack's provider (default gcp)")
    group.add_argument("--stackrun-store", choices=("file", "sqlite", "postgresql"), default="file",
                       help="where the engine keeps the stack's state: JSON files (the engine's default), or the "
                            "service's store (DbStackStateStore) on a fresh SQLite or PostgreSQL database")


def pools_of(provider: str, n: int, region_index: int = 0, nodes: int = 1) -> list[NodePoolSpec]:
    """``n`` pools of ``nodes`` nodes, all in one region of ``provider`` that offers an on-demand GPU (the
    first in name order, or the one at ``region_index``): one stack."""
    cat = default_catalog()
    s = [x for x in slots(cat, region_index + 1) if x.provider == provider][region_index]
    return [dataclasses.replace(p, provider=s.provider, region=s.region, zone=s.zone, instance_type=s.instance_type,
                                gpu_model=s.gpu_model, gpus_per_node=s.gpus_per_node, nodes=nodes)
            for p in node_pools(n, cat, 1)]


def main(args: argparse.Namespace) -> int:
    from bench.rate.stack import mock_clouds, size_pools, tree_cpu_s
    from infra.engines import mockruntime_worker
    from infra.engines.local import LocalEngine
    from mockclouds.launcher import GCP_PROJECT
    from providers.config import load_config
    from providers.registry import build_providers

    core = None if args.no_pin else pin_one_core()
    n1, n2 = args.stackrun_pools or ((8, 16) if args.quick else (1500, 3000))
    provider = args.stackrun_provider
    result: dict[str, Any] = {"suite": "stackrun", "machine": machine_info(core), "quick": args.quick,
                              "provider": provider, "pools": [n1, n2], "nodes_per_pool": args.stackrun_nodes,
                              "store": args.stackrun_store,
                              "runs": [], "errors": [],
                              "load_before": list(os.getloadavg())}
    ok = True
    tree = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory(prefix="awan-bench-stackrun-") as work, \
            mock_clouds(tree, Path(work)) as config, state_store(args.stackrun_store, Path(work)) as store:
        mocks_pid = _mocks_pid(Path(work))
        size_pools(config, n2 * args.stackrun_nodes + 16)
        providers = build_providers(load_config(config))
        cfg = {"gcp": {"project": GCP_PROJECT}}
        pools = pools_of(provider, n2, nodes=args.stackrun_nodes)
        mockruntime_worker.start()
        engine = LocalEngine(providers.__getitem__, store=store, why="benchmark")
        # Warm-up, not counted: the provider's SDK and client imports, first connections, in another region.
        (warm,) = desired_stacks(pools_of(provider, 1, region_index=1), config=cfg)
        engine.up(warm)
        engine.destroy(warm.name)
        for name, n in (("first", n1), ("grow", n2), ("noop", n2)):
            (stack,) = desired_stacks(pools[:n], config=cfg)
            m0 = tree_cpu_s(mocks_pid) if mocks_pid else 0.0
            calls0 = _calls(config, provider)
            c0, r0, t0 = time.process_time(), mockruntime_worker.cpu_seconds(), time.perf_counter()
            try:
                up = engine.up(stack)
            except Exception as e:  # noqa: BLE001 - a failed run is a figure to report
                result["errors"].append(f"{name}: {type(e).__name__}: {e}")
                ok = False
                break
            wall = time.perf_counter() - t0
            cpu, render = time.process_time() - c0, mockruntime_worker.cpu_seconds() - r0
            mocks = (tree_cpu_s(mocks_pid) if mocks_pid else 0.0) - m0
            calls1 = _calls(config, provider)
            calls = None if calls0 is None or calls1 is None else {
                op: n - calls0.get(op, 0) for op, n in calls1.items() if n - calls0.get(op, 0)}
            row = {"run": name, "pools": n, "seconds": round(wall, 3), "cpu_s": round(cpu, 3),
                   "render_cpu_s": round(render, 3), "mocks_cpu_s": round(mocks, 3), "counts": up.counts,
                   "not_applied": len(up.not_applied), "load": list(os.getloadavg()), "calls": calls}
            result["runs"].append(row)
            print(f"stackrun: {provider} {name} up, {n} pools: {wall:.2f} s wall, {cpu:.2f} s CPU (engine, "
                  f"adapters) + {render:.2f} s render CPU + {mocks:.2f} s mock clouds' CPU; {up.counts}, "
                  f"{len(up.not_applied)} not applied; calls {calls}; "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
        runs = {r["run"]: r for r in result["runs"]}
        if "noop" in runs:
            c = runs["noop"]["counts"]
            result["noop_ok"] = c.get("create", 0) == c.get("update", 0) == c.get("delete", 0) == 0
            ok = ok and result["noop_ok"]
            print(f"stackrun: no-op check {'PASS' if result['noop_ok'] else 'FAIL'}", flush=True)
        ok = ok and all(r["not_applied"] == 0 for r in result["runs"])
        for p in providers.values():
            p.close()
    result["peak_rss_mib"] = peak_rss_mib()
    print(f"results: {write_results(args.results_dir, 'stackrun', result)}")
    return 0 if ok else 1


@contextlib.contextmanager
def state_store(kind: str, work: Path) -> Iterator[StackStateStore]:
    """The engine's state store of ``kind`` (file | sqlite | postgresql), empty."""
    if kind == "file":
        yield FileStateStore(work / "state")
        return
    from bench.api.service import fresh_database
    from bench.rate.run import PG_URL
    from controlplane.store.db import Database
    from controlplane.store.migrate import upgrade
    from controlplane.store.stack_state import DbStackStateStore

    with fresh_database(kind, PG_URL) as url:
        db = Database.from_url(url)
        try:
            upgrade(db.engine)
            yield DbStackStateStore(db)
        finally:
            db.dispose()


def _mocks_pid(workdir: Path) -> int | None:
    """The mock clouds' process (``awan mockclouds up``, a child of this one, run in ``workdir``)."""
    me = os.getpid()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cwd = os.readlink(d / "cwd")
        except OSError:
            continue
        if ppid == me and cwd == str(workdir):
            return int(d.name)
    return None


def _calls(config: Path, provider: str) -> dict[str, int] | None:
    """The API calls ``provider``'s mock has answered, by operation (``GET /_mock/calls``); None from a
    tree whose mocks do not count them."""
    import yaml

    base = str(yaml.safe_load(config.read_text())["providers"][provider]["endpoint"]).removesuffix("/{region}")
    r = httpx.get(f"{base}/_mock/calls", timeout=60)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return {str(k): int(v) for k, v in r.json()["calls"].items()}
