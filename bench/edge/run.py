"""``python -m bench --suite edge``: a reconcile pass over N held workloads where nothing changed, edge-triggered
(the change feed and the timers name the work) against the full-scan pass (every step over every row, as the
loop ran before the feed), in the same run, on SQLite and PostgreSQL, N = 10,000 and 100,000.

Per store and N, in a fresh store (SQLite file; PostgreSQL schema of its own): N Running workloads, one
assignment each, over 4 stacks (aws, 4 regions) whose stored spec hashes are the desired ones (nothing is
due); one in-process provider answers the N nodes, one per workload, all running (the cloud side is not
what is measured here: no HTTP). Then, each the median of ``--edge-runs`` passes (default 5; ``tick()``,
the leader's whole pass):

- ``edge``: a pass between observations (the clouds are listed every ``observe_s``);
- ``edge+observe``: a pass that lists the clouds and compares what changed (here nothing);
- ``one change``: a pass after one workload was written (re-reads that one row);
- ``resync``: the edge loop's full pass (re-list everything);
- ``full scan``: the peer, ``LoopConfig(edge=False)``: every pass reads every row, as before.

The engine raises if asked to run a stack: nothing is due, and a pass that ran one would not be measuring
a no-change pass.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, create_engine, text
from sqlalchemy.engine import make_url

from bench.machine import machine_info, write_results
from controlplane.model.identity import pool_name, workload_key
from controlplane.policy.model import PolicySet
from controlplane.reconcile.controller import Controller, LoopConfig
from controlplane.reconcile.leader import LeaderElector
from controlplane.reconcile.provisioning import spec_hash
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from controlplane.store.models import Assignment, Stack, Workload, WorkloadState
from infra.engines.base import UpResult
from infra.spec import StackSpec
from providers.base import Provider
from providers.catalog.model import CapacityType
from providers.model import CapacityReport, HealthStatus, Node, NodeRequest, NodeState, ProviderHealth

FULL_SIZES = (10_000, 100_000)
QUICK_SIZES = (200,)
REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1")
PG_URL = os.environ.get("AWAN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--edge-sizes", type=lambda s: tuple(int(x) for x in s.split(",")), default=None,
                       help="held workloads, comma-separated (default 10000,100000; --quick: 200)")
    group.add_argument("--edge-runs", type=int, default=None, help="passes per figure (default 5; --quick: 3)")
    group.add_argument("--edge-full-runs", type=int, default=3, help="full-scan passes per figure (default 3)")
    group.add_argument("--edge-resync-runs", type=int, default=None,
                       help="edge full-resync passes per figure (default: as --edge-full-runs)")
    group.add_argument("--edge-stores", default="sqlite,postgresql", help="stores (default sqlite,postgresql)")
    group.add_argument("--edge-pg-url", default=PG_URL, help="PostgreSQL to make a schema in (default $AWAN_TEST_PG_URL)")


class HeldNodes(Provider):
    """One cloud answering a fixed fleet from memory (what is measured is the store side of a pass)."""

    def __init__(self, nodes: list[Node]) -> None:
        self.name, self.endpoint, self.nodes = "aws", "memory://aws", nodes

    def offerings(self) -> list[Any]:
        return []

    def capacity(self) -> CapacityReport:
        return CapacityReport(self.name, (), (), datetime.now(UTC))

    def list_nodes(self) -> list[Node]:
        return list(self.nodes)

    def health(self) -> ProviderHealth:
        return ProviderHealth(self.name, self.endpoint, HealthStatus.OK, 1.0)

    def create_nodes(self, request: NodeRequest) -> list[Node]:
        raise NotImplementedError

    def delete_nodes(self, nodes: Sequence[Node]) -> None:
        raise NotImplementedError


class NothingDue:
    name = "bench"

    def __init__(self) -> None:
        self.calls = 0

    def up(self, stack: StackSpec) -> UpResult:
        self.calls += 1
        raise RuntimeError(f"stack {stack.name} was run: the benchmark's fleet should have nothing due")


def _spec(name: str) -> dict[str, Any]:
    return {"apiVersion": "awan.dev/v1alpha1", "kind": "GPUWorkload",
            "metadata": {"name": name, "team": "bench"},
            "spec": {"kind": "training", "gpus": {"model": "H100", "count": 8, "perNode": 8}}}


def seed(db: Database, n: int) -> list[Node]:
    """N Running workloads with one assignment each (bulk INSERTs: the feed is not what is timed)."""
    now = utcnow()
    wt, at = cast(Table, Workload.__table__), cast(Table, Assignment.__table__)
    nodes: list[Node] = []
    with db.engine.begin() as c:
        for lo in range(0, n, 5000):
            rows = [{"id": i + 1, "name": f"w{i:06d}", "team": "bench", "spec": _spec(f"w{i:06d}"), "priority": 0,
                     "gpus": 8, "state": WorkloadState.RUNNING.value, "message": "1/1 nodes running", "generation": 1,
                     "observed_generation": 1, "created_at": now, "updated_at": now, "placed_at": now,
                     "running_at": now, "restarts": 0, "reason": "", "wait_reason": "", "preemptions": 0,
                     "placement": {"assignments": []}} for i in range(lo, min(n, lo + 5000))]
            c.execute(wt.insert(), rows)
            arows = []
            for r in rows:
                key = workload_key("bench", r["name"])
                region = REGIONS[r["id"] % len(REGIONS)]
                pool = pool_name(r["name"], 0, f"{key}#1")
                arows.append({"workload_id": r["id"], "pool": pool, "provider": "aws", "region": region,
                              "zone": f"{region}a", "instance_type": "p5.48xlarge", "nodes": 1, "gpus": 8,
                              "gpu_model": "H100", "capacity_type": "on-demand", "reservation": "",
                              "price_per_hour": 98.32, "replica_group": 0})
                nodes.append(Node("aws", f"i-{r['id']:08x}", f"n{r['id']}", region, f"{region}a", "p5.48xlarge",
                                  CapacityType.ON_DEMAND, NodeState.RUNNING, pool=pool, workload=key, gpus=8,
                                  labels={"stack": f"awan-aws-{region}"}))
            c.execute(at.insert(), arows)
        if db.dialect == "postgresql":   # ids were given: move the sequences past them
            c.execute(text("SELECT setval(pg_get_serial_sequence('workloads', 'id'), :n)"), {"n": n})
            c.execute(text("SELECT setval(pg_get_serial_sequence('assignments', 'id'), :n)"), {"n": n})
    return nodes


def seed_stacks(c: Controller) -> None:
    """The stacks as applied: their stored hashes are the desired ones (from the same index the loop plans by)."""
    assert c.edge is not None
    c.edge.begin()
    with c.db.session() as s:
        for name in sorted(c.edge.index.by_stack):
            spec, h = c.edge.index.spec(name)
            assert h == spec_hash(spec), name   # the index hashes as provisioning does
            s.add(Stack(name=name, spec={"provider": spec.provider, "region": spec.region,
                                         "pools": [p.to_dict() for p in spec.pools]},
                        spec_hash=h, status="ok", applied_at=utcnow()))
    c.edge.force_resync()


def controller(db: Database, nodes: list[Node], engine: NothingDue, **cfg: Any) -> Controller:
    elector = LeaderElector(db, "bench", ttl_s=3600.0, renew_s=1200.0)
    c = Controller(db, {"aws": HeldNodes(nodes)}, engine, elector=elector, policies=PolicySet.default,
                   config=LoopConfig(interval_s=3600.0, resync_s=3600.0, learn_capacity=False, **cfg),
                   place=lambda w, s, p: None, snapshot=lambda: None)
    elector.step()
    assert elector.is_leader
    return c


def timed(fn: Callable[[], None], runs: int, before: Callable[[], None] = lambda: None) -> dict[str, Any]:
    times = []
    for _ in range(runs):
        before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": round(statistics.median(times), 6), "runs_s": [round(t, 6) for t in times]}


def touch_one(db: Database, i: int) -> Callable[[], None]:
    def go() -> None:
        with db.session() as s:
            w = s.get(Workload, i)
            assert w is not None
            w.message = f"touched {time.monotonic()}"
    return go


def measure(db: Database, n: int, runs: int, full_runs: int, resync_runs: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    nodes = seed(db, n)
    engine = NothingDue()
    edge = controller(db, nodes, engine, observe_s=3600.0, full_resync_s=3600.0)
    seed_stacks(edge)
    seeded_s = time.perf_counter() - t0
    edge.tick()               # the first pass is a full one (re-list); then nothing is due
    out: dict[str, Any] = {"seed_s": round(seeded_s, 2)}
    out["edge"] = timed(edge.tick, runs)
    assert edge.edge is not None
    out["edge_stats"] = {"full": edge.edge.stats.full, "refreshed": len(edge.edge.stats.refreshed)}
    edge.edge.observe_s = 0.0
    edge.tick()               # the first observation compares every row; the next ones only what changed
    out["edge+observe"] = timed(edge.tick, runs)
    out["edge+observe_compared"] = len(edge.edge.stats.observed or ()) if edge.edge.stats.observed is not None else n
    edge.edge.observe_s = 3600.0
    out["one change"] = timed(edge.tick, runs, before=touch_one(db, n // 2))
    out["one_change_refreshed"] = len(edge.edge.stats.refreshed)
    out["resync"] = timed(edge.tick, resync_runs, before=edge.edge.force_resync)
    full = controller(db, nodes, engine, edge=False)
    out["full scan"] = timed(full.tick, full_runs)
    out["engine_calls"] = engine.calls
    out["ratio_full_over_edge"] = round(out["full scan"]["median_s"] / out["edge"]["median_s"], 1)
    return out


def _store(kind: str, base_pg: str, tmp: Path) -> tuple[Database, Callable[[], None]]:
    if kind == "sqlite":
        db = Database.from_url(f"sqlite:///{tmp}/edge-{uuid.uuid4().hex[:8]}.db")
        upgrade(db.engine)
        return db, db.dispose
    schema = f"awan_bench_{uuid.uuid4().hex[:10]}"
    eng = create_engine(base_pg)
    with eng.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base_pg).update_query_dict({"options": f"-csearch_path={schema}"})
    db = Database.from_url(url.render_as_string(hide_password=False))
    upgrade(db.engine)

    def drop() -> None:
        db.dispose()
        with eng.begin() as c:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        eng.dispose()
    return db, drop


def main(args: argparse.Namespace) -> int:
    sizes = args.edge_sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    runs = args.edge_runs or (3 if args.quick else 5)
    full_runs = 1 if args.quick else args.edge_full_runs
    stores = [s for s in args.edge_stores.split(",") if s]
    results: dict[str, Any] = {"suite": "edge", "machine": machine_info(None), "sizes": list(sizes), "runs": runs,
                               "resync_runs": args.edge_resync_runs or full_runs,
                               "full_runs": full_runs, "load_before": [round(x, 2) for x in os.getloadavg()],
                               "figures": {}}
    bad = 0
    with tempfile.TemporaryDirectory(prefix="awan-bench-edge-") as tmp:
        for kind in stores:
            for n in sizes:
                db, done = _store(kind, args.edge_pg_url, Path(tmp))
                try:
                    r = measure(db, n, runs, full_runs, args.edge_resync_runs or full_runs)
                finally:
                    done()
                results["figures"][f"{kind}/{n}"] = r
                bad += r["engine_calls"]
                print(f"  {kind:>10} n={n:>7}: edge {r['edge']['median_s'] * 1e3:9.2f} ms | edge+observe "
                      f"{r['edge+observe']['median_s'] * 1e3:9.1f} ms | one change {r['one change']['median_s'] * 1e3:8.2f} ms"
                      f" | resync {r['resync']['median_s']:7.2f} s | full scan {r['full scan']['median_s']:7.2f} s"
                      f" | full/edge {r['ratio_full_over_edge']}x (load {[round(x, 2) for x in os.getloadavg()]})",
                      flush=True)
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    path = write_results(args.results_dir, "edge", results)
    print(f"load average before {results['load_before']}, after {results['load_after']}; medians of {runs} "
          f"(full scan: {full_runs}; resync: {args.edge_resync_runs or full_runs}); results: {path}")
    return 1 if bad else 0

