"""One observe round (controlplane/reconcile/observing.SharedObserver.round) over N AWS regions of the AWS
mock, each DescribeInstances answering after an injected latency (default 100 ms): per provider (one
``list_nodes`` walking every region, what observation did before it listed by region) against per region
(one ``list_nodes_in`` a region, every replica's share at once), with 1 and 2 replicas sharing the round on
one PostgreSQL. Figure: seconds from the start of the round until every replica's round returned, with
every scope published.

    AWAN_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        python -m bench.replicas.observe [--regions 16] [--list-ms 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from typing import Any

import httpx

from bench.machine import machine_info
from bench.replicas.run import PG_DEFAULT, Schema
from providers.base import Provider
from providers.breaker import CircuitBreaker, GuardedProvider
from providers.capabilities import SupportsRegionalListing


class WholeProvider(GuardedProvider):
    """The adapter without its regional listing: observation lists it whole, as before."""

    def supports_regional_listing(self) -> SupportsRegionalListing | None:
        return None


def _provider(mc: Any, regions: list[str], per_region: bool) -> Provider:
    from providers.aws.adapter import AWSProvider
    cfg = mc.config().providers["aws"].model_copy(update={"regions": regions, "max_attempts": 1})
    inner = AWSProvider(cfg)
    inner.list_nodes()    # every region's client built before the clock starts (a start-up cost)
    breaker = CircuitBreaker("aws", failure_threshold=1_000)
    return GuardedProvider(inner, breaker) if per_region else WholeProvider(inner, breaker)


def one_round(mc: Any, pg: str, regions: list[str], per_region: bool, replicas: int) -> dict[str, Any]:
    from controlplane.reconcile.metrics import LoopMetrics
    from controlplane.reconcile.observing import SharedObserver
    from controlplane.reconcile.sharing import WorkShare
    from controlplane.store.db import Database
    from controlplane.store.migrate import upgrade

    with Schema(pg) as schema:
        dbs = [Database.from_url(schema.url, pool_size=2, max_overflow=2) for _ in range(replicas)]
        upgrade(dbs[0].engine)
        shares = [WorkShare(db, f"r{i}", ttl_s=30.0) for i, db in enumerate(dbs)]
        observers = [SharedObserver(db, {"aws": _provider(mc, regions, per_region)}, share, LoopMetrics(),
                                    every_s=60.0, max_age_s=60.0) for db, share in zip(dbs, shares, strict=True)]
        try:
            for share in shares:
                share.members()
            assert all(share.members(fresh=True) == replicas for share in shares)
            start = threading.Barrier(replicas + 1)
            published: list[set[str]] = [set() for _ in range(replicas)]

            def run(i: int) -> None:
                start.wait()
                published[i] = observers[i].round()

            threads = [threading.Thread(target=run, args=(i,)) for i in range(replicas)]
            for t in threads:
                t.start()
            start.wait()
            t0 = time.perf_counter()
            for t in threads:
                t.join()
            seconds = time.perf_counter() - t0
            seen = observers[0].latest()
            want = {f"aws/{r}" for r in regions} if per_region else {"aws"}
            if seen.observed != want:
                raise RuntimeError(f"round incomplete: observed {sorted(seen.observed)}, failed {seen.failed}")
            return {"seconds": round(seconds, 3), "scopes_by_replica": [len(p) for p in published]}
        finally:
            for share in shares:
                share.stop()
            for db in dbs:
                db.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regions", type=int, default=16)
    ap.add_argument("--list-ms", type=float, default=100.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--modes", default="per-provider,per-region")
    ap.add_argument("--pg", default=os.environ.get("AWAN_TEST_PG_URL", PG_DEFAULT))
    args = ap.parse_args()
    from mockclouds.launcher import MockClouds
    from providers.catalog import default_catalog

    regions = sorted({r for (p, r) in default_catalog().regions if p == "aws"})[:args.regions]
    mc = MockClouds(clouds=("aws",)).start()
    result: dict[str, Any] = {"machine": machine_info(None), "regions": regions, "list_ms": args.list_ms,
                              "rows": []}
    try:
        httpx.post(f"{mc.urls['aws']}/_mock/faults", json={"kind": "latency", "operation": "DescribeInstances",
                                                           "latency_ms": args.list_ms}, timeout=10).raise_for_status()
        for mode in args.modes.split(","):
            for replicas in (1, 2):
                for run in range(args.runs):
                    before = os.getloadavg()[0]
                    row = one_round(mc, args.pg, regions, mode == "per-region", replicas)
                    row.update(mode=mode, replicas=replicas, run=run + 1, load_before=round(before, 2),
                               load_after=round(os.getloadavg()[0], 2))
                    result["rows"].append(row)
                    print(json.dumps(row), flush=True)
                secs = [r["seconds"] for r in result["rows"] if r["mode"] == mode and r["replicas"] == replicas]
                print(f"{mode}, {replicas} replica(s): median {statistics.median(secs):.3f} s", flush=True)
    finally:
        mc.stop()
    print(json.dumps(result["machine"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
