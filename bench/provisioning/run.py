"""``python -m bench --suite provisioning``: converge 100, 1,000 and 5,000 node pools on the four mock
clouds through the local engine, and how the time grows with N.

For each size: the programs alone under Pulumi's mock runtime (the peer, same run), then through the local
engine a first ``up`` (all creates), a second ``up`` (must change nothing: checked, and printed), and a
``destroy``. A size whose predicted time for all of that (from the smaller sizes' fitted growth) exceeds the budget
is not run, and the report says so. ``--provisioning-workers N`` (N > 1) also runs every size with the stacks
on N threads, as the controller does, and reports that beside the sequential figures (never instead).
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import httpx

from bench.machine import machine_info, peak_rss_mib, pin_one_core, write_results
from bench.provisioning.converge import SizeResult, converge
from bench.provisioning.pools import node_pools
from providers.catalog import default_catalog

FULL_SIZES = (100, 1000, 5000)
QUICK_SIZES = (8, 16)
QUOTA_LIMIT = 10_000_000.0


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--provisioning-sizes", type=lambda s: tuple(int(x) for x in s.split(",")), default=None,
                       help="pool counts, comma-separated (default 100,1000,5000; --quick: 8,16)")
    group.add_argument("--provisioning-regions", type=int, default=None,
                       help="regions per provider the pools are spread over (default 8; --quick: 2)")
    group.add_argument("--provisioning-budget-s", type=float, default=600.0,
                       help="skip a size whose predicted time (all four phases) is longer than this (default 600)")
    group.add_argument("--provisioning-workers", type=int, default=0,
                       help="also run every size with the stacks on this many threads, as the controller's "
                            "stack_workers (default 0: sequential only)")


def fit_exponent(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of log(time) on log(N): time ~ N^k."""
    pts = [(math.log(n), math.log(t)) for n, t in points if n > 0 and t > 0]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    den = sum((x - mx) ** 2 for x, _ in pts)
    return round(sum((x - mx) * (y - my) for x, y in pts) / den, 3) if den else None


def predict(points: list[tuple[int, float]], n: int) -> float | None:
    if not points:
        return None
    k = fit_exponent(points) or 1.0
    n0, t0 = points[-1]
    return t0 * (n / n0) ** max(k, 1.0)


def _raise_capacity(urls: dict[str, str], free: int) -> dict[str, Any]:
    out = {}
    for cloud, url in urls.items():
        r = httpx.post(f"{url}/_mock/capacity", json={"free": free}, timeout=30)
        r.raise_for_status()
        out[cloud] = r.json()
    return out


def _raise_quotas(mc: Any, limit: float = QUOTA_LIMIT) -> None:
    """Lift every vCPU/GPU quota the mocks enforce, in every region (in-process: the AWS mock has no
    HTTP control for it). The default quotas allow 16 to 32 nodes of a GPU type a region; at 1,000 pools
    each region holds about 31, at 5,000 about 156: the bench measures convergence, not quota refusals."""
    from mockclouds.aws.models import QUOTA_NAMES
    from mockclouds.azure.skus import default_quota_limits
    from mockclouds.gcp.machines import DEFAULT_LIMITS

    aws = mc.backend("aws").state
    with aws.lock:
        regions = {r for (p, r) in aws.catalog.regions if p == "aws"}
        aws.quota_limits.update({(r, code): limit for r in regions for code in QUOTA_NAMES})
    gcp = mc.backend("gcp").compute
    for r in gcp.regions:
        for metric in DEFAULT_LIMITS:
            gcp.set_limit(r, metric, limit)
    azure = mc.backend("azure")
    for r in azure.regions:
        for family in default_quota_limits(azure.catalog):
            azure.set_quota(r, family, limit)


def _measure(mc: Any, providers: dict[str, Any], catalog: Any, n: int, regions: int, free: int,
             cfg: dict[str, dict[str, str]], workers: int = 1) -> SizeResult:
    """One size on freshly reset mocks (capacity and quotas lifted again: reset restores the defaults)."""
    mc.reset()
    _raise_capacity(mc.urls, free)
    _raise_quotas(mc)
    return converge(node_pools(n, catalog, regions), providers, cfg, workers)


def _print(r: SizeResult) -> None:
    how = f"{r.workers} workers" if r.workers > 1 else "sequential"
    print(f"provisioning: {r.pools} pools in {r.stacks} stacks ({r.resources} resources), {how}: registration only "
          f"{r.registration_only_s:.2f} s, first up {r.first_up.seconds:.2f} s {r.first_up.counts}, "
          f"second up {r.second_up.seconds:.2f} s {r.second_up.counts} -> no-op check "
          f"{'PASS' if r.noop_ok else 'FAIL'}, destroy {r.destroy.seconds:.2f} s; nodes "
          f"{r.cloud_nodes_after_up} after up, {r.cloud_nodes_after_destroy} after destroy", flush=True)


def _errors(result: dict[str, Any], row: dict[str, Any], label: str) -> None:
    for phase in ("first_up", "second_up", "destroy"):
        if row[phase]["errors"]:
            result["errors"][f"{label}/{phase}"] = row[phase]["errors"][:5]


def _growth(runs: list[dict[str, Any]], key: str, reg_key: str) -> dict[str, float | None]:
    g = {"registration_only": fit_exponent([(r["pools"], r[reg_key]) for r in runs])}
    g.update({ph: fit_exponent([(r["pools"], r[ph][key]) for r in runs]) for ph in ("first_up", "second_up", "destroy")})
    return g


def main(args: argparse.Namespace) -> int:
    from mockclouds.launcher import GCP_PROJECT, MockClouds
    from providers.registry import build_providers

    core = None if args.no_pin else pin_one_core()
    sizes = args.provisioning_sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    regions = args.provisioning_regions or (2 if args.quick else 8)
    catalog = default_catalog()
    result: dict[str, Any] = {"suite": "provisioning", "machine": machine_info(core), "quick": args.quick,
                              "sizes": list(sizes), "regions_per_provider": regions, "runs": [], "skipped": [],
                              "errors": {}, "workers": args.provisioning_workers, "concurrent": []}
    t_start = time.perf_counter()
    mc = MockClouds().start()
    providers = build_providers(mc.config())
    try:
        # The mocks seed a few nodes a zone; each size needs at most N/(4 x regions) a zone, so this holds.
        result["capacity"] = _raise_capacity(mc.urls, max(sizes))
        _raise_quotas(mc)
        cfg = {"gcp": {"project": GCP_PROJECT}}
        # Warm-up, not counted: SDK and Pulumi package imports, first connections. One pool of every
        # provider (round-robin): a provider first met in a timed phase paid its package's lazy imports there.
        converge(node_pools(max(4, len(providers)), catalog, 1), providers, cfg)
        done: list[tuple[int, float]] = []
        for n in sizes:
            guess = predict(done, n)
            if guess is not None and guess > args.provisioning_budget_s:
                result["skipped"].append({"pools": n, "predicted_total_s": round(guess, 1),
                                          "budget_s": args.provisioning_budget_s})
                print(f"provisioning: {n} pools skipped: all phases predicted {guess:.0f} s > budget "
                      f"{args.provisioning_budget_s:.0f} s", flush=True)
                continue
            r = _measure(mc, providers, catalog, n, regions, max(sizes), cfg)
            row = r.to_dict()
            result["runs"].append(row)
            total = r.registration_only_s + r.first_up.seconds + r.second_up.seconds + r.destroy.seconds
            _print(r)
            _errors(result, row, str(n))
            if args.provisioning_workers > 1:
                c = _measure(mc, providers, catalog, n, regions, max(sizes), cfg, args.provisioning_workers)
                crow = c.to_dict()
                result["concurrent"].append(crow)
                total += c.registration_only_s + c.first_up.seconds + c.second_up.seconds + c.destroy.seconds
                _print(c)
                _errors(result, crow, f"{n}x{args.provisioning_workers}")
            done.append((n, total))
    finally:
        for p in providers.values():
            close = getattr(p, "close", None)
            if callable(close):
                close()
        mc.stop()
    runs = result["runs"]
    result["growth"] = _growth(runs, "seconds", "registration_only_s")
    result["growth_cpu"] = _growth(runs, "cpu_seconds", "registration_only_cpu_s")
    if result["concurrent"]:
        result["growth_concurrent"] = _growth(result["concurrent"], "seconds", "registration_only_s")
    result["peak_rss_mib"] = peak_rss_mib()
    result["total_s"] = round(time.perf_counter() - t_start, 1)
    path = write_results(args.results_dir, "provisioning", result)
    from bench.provisioning.report import render

    print(render(result))
    print(f"results: {path}")
    ok = all(r["noop_ok"] and r["cloud_nodes_after_destroy"] == 0 and r["cloud_nodes_after_up"] == r["pools"]
             for r in runs + result["concurrent"]) and not result["errors"]
    return 0 if ok and runs else 1
