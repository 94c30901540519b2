"""The three measured phases of the placement benchmark: the stream, the batch against the LP bound, and the
SkyPilot peer. Each returns a plain dict that goes into the JSON results as is."""

from __future__ import annotations

import gc
import os
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from bench.machine import peak_rss_mib, percentile
from bench.placement.fleet import build_fleet
from bench.placement.lp_bound import lp_bound
from bench.placement.stream import SIZE_MIX, workload_stream
from providers.catalog import Catalog


def _rss_mib() -> float:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError):
        return float("nan")


@dataclass(frozen=True)
class _Pending:
    """Stands for our decision when the engine is not importable: nothing placed, and it says why."""

    placed: bool = False
    assignments: tuple = ()
    reasons: tuple = ("placement engine not available: pending",)


_PENDING = _Pending()


def _cost(decision: Any) -> float:
    return sum(float(a.price_per_hour) for a in decision.assignments)


def _why(decision: Any) -> str:
    return (decision.reasons[0] if decision.reasons else "no reason given")[:80]


def run_stream(engine: Any, catalog: Catalog, policies: Any, fleet_gpus: int, n: int, window: int,
               lifetime: int, time_budget: float, log: Any) -> dict[str, Any]:
    """The controller's steady state: one decision at a time over ``n`` arrivals, on the engine's stateful
    ``Placer`` (the core behind ``place_one`` that keeps taken capacity between decisions). Every ``window``
    decisions the controller refreshes capacity: a new snapshot (``with_usage`` of what runs) and a new
    Placer with the running assignments as ``existing`` (timed apart; the engine reuses its candidate index
    when only free capacity changed, and whatever it does rebuild is in the next decisions' latency).

    One timed decision is what the controller does per workload (controlplane/reconcile/placing.py):
    ``place_one`` (explanation kept as data) then ``Decision.to_json()`` (the placement, reasons, runners-up
    and the rule per losing provider/region, which the controller stores) and ``"; ".join(reasons)`` (its
    status message). Wall time (``perf_counter``) is the figure; the thread's CPU time is recorded beside it
    because a shared machine's other load shows up in wall time only. Workloads leave ``lifetime``
    arrivals after they came (``release``), so the fleet reaches a steady state instead of filling once and
    refusing everything after (at most ``lifetime`` workloads run at any time)."""
    rss0 = _rss_mib()
    t = time.perf_counter()
    base, stats = build_fleet(fleet_gpus, catalog)
    fleet_seconds = time.perf_counter() - t
    rss_fleet = _rss_mib()
    log(f"fleet: {stats.gpus:,} GPUs in {stats.pools:,} pools over {stats.regions} regions "
        f"(scale {stats.scale}, built in {fleet_seconds:.2f} s); workload lifetime {lifetime:,} arrivals")

    lat: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    by_shape_1024: dict[str, list[float]] = defaultdict(list)
    load0 = os.getloadavg()
    placed: dict[str, int] = defaultdict(int)
    reasons: dict[str, int] = defaultdict(int)
    live: deque[tuple[int, str, list[Any]]] = deque()
    refresh_s: list[float] = []
    release_s: list[float] = []
    snapshot = base
    cache = engine.IndexCache()     # the controller's: placement keeps no index between Placers itself
    placer = engine.Placer(base, policies, cache=cache)
    started = time.perf_counter()
    gc.collect()
    for item in workload_stream(n):
        if item.index and item.index % window == 0:
            if time.perf_counter() - started > time_budget:
                log(f"stream: time budget of {time_budget:.0f} s reached after {item.index:,} decisions; stopping")
                break
            t = time.perf_counter()
            running = [a for _, _, assignments in live for a in assignments]
            snapshot = base.with_usage(running)
            placer = engine.Placer(snapshot, policies, running, cache=cache)
            refresh_s.append(time.perf_counter() - t)
        while live and live[0][0] <= item.index:
            _, name, _ = live.popleft()
            t = time.perf_counter()
            placer.release(name)
            release_s.append(time.perf_counter() - t)
        wl = item.workload
        c = time.thread_time()
        t = time.perf_counter()
        d = placer.place_one(wl)
        d.to_json()
        "; ".join(d.reasons)
        dt = time.perf_counter() - t
        cpu[item.size].append(time.thread_time() - c)
        lat[item.size].append(dt)
        if item.size == "1024":
            by_shape_1024[item.shape].append(dt)
        if d.placed:
            placed[item.size] += 1
            live.append((item.index + lifetime, wl.name, list(d.assignments)))
        else:
            reasons[f"{item.shape}: {_why(d)}"] += 1
    wall = time.perf_counter() - started
    stateless = _stateless_sample(engine, snapshot, policies, 1000 if n >= 10_000 else 50, cache)

    single = lat["1"] + lat["8"]
    single_cpu = cpu["1"] + cpu["8"]
    gang_cpu = sorted(cpu["1024"])
    per_size = {}
    for size in SIZE_MIX:
        xs = sorted(lat[size])
        per_size[size] = {"decisions": len(xs), "placed": placed[size],
                          "fraction_placed": round(placed[size] / len(xs), 4) if xs else None,
                          "p50_ms": round(percentile(xs, 50) * 1e3, 3) if xs else None,
                          "p99_ms": round(percentile(xs, 99) * 1e3, 3) if xs else None,
                          "max_ms": round(xs[-1] * 1e3, 3) if xs else None}
    total_decided = sum(len(v) for v in lat.values())
    return {
        "fleet": {"gpus": stats.gpus, "pools": stats.pools, "regions": stats.regions, "scale": stats.scale,
                  "by_provider": stats.by_provider, "build_seconds": round(fleet_seconds, 3)},
        "workloads_requested": n, "workloads_decided": total_decided, "window": window, "lifetime": lifetime,
        "single_node_placements_per_s": round(len(single) / sum(single), 1) if single else None,
        "cpu_time": {"single_node_placements_per_cpu_s": round(len(single_cpu) / sum(single_cpu), 1)
                     if single_cpu and sum(single_cpu) else None,
                     "gang1024_p99_ms": round(percentile(gang_cpu, 99) * 1e3, 3) if gang_cpu else None,
                     "gang1024_max_ms": round(gang_cpu[-1] * 1e3, 3) if gang_cpu else None},
        "gang1024_by_shape": {k: {"decisions": len(v), "p50_ms": round(percentile(sorted(v), 50) * 1e3, 3),
                                  "p99_ms": round(percentile(sorted(v), 99) * 1e3, 3)}
                              for k, v in sorted(by_shape_1024.items())},
        "load_average": {"start": [round(x, 2) for x in load0], "end": [round(x, 2) for x in os.getloadavg()]},
        "decisions_per_s_all_sizes": round(total_decided / sum(sum(v) for v in lat.values()), 1) if total_decided else None,
        "wall_seconds": round(wall, 2),
        "snapshot_refresh_ms": {"count": len(refresh_s), "mean": round(1e3 * sum(refresh_s) / max(1, len(refresh_s)), 2),
                                "max": round(1e3 * max(refresh_s, default=0.0), 2)},
        "releases": {"count": len(release_s), "mean_ms": round(1e3 * sum(release_s) / max(1, len(release_s)), 4)},
        "stateless_place_one": stateless,
        "fraction_placed": round(sum(placed.values()) / total_decided, 4) if total_decided else None,
        "per_size": per_size,
        "top_unplaced_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])[:8]),
        "memory_mib": {"rss_before_fleet": rss0, "rss_after_fleet": rss_fleet, "rss_end": _rss_mib(),
                       "peak_rss": peak_rss_mib()},
    }


def _stateless_sample(engine: Any, snapshot: Any, policies: Any, n: int, cache: Any) -> dict[str, Any]:
    """The module-level ``place_one(w, snapshot, policies, cache=...)`` (a new Placer per call, as a caller
    without a Placer would use it, with the caller's index cache) on the first ``n`` single-node workloads
    of the stream, for comparison."""
    xs: list[float] = []
    for item in workload_stream(n * 2):
        if item.size in ("1", "8") and len(xs) < n:
            t = time.perf_counter()
            engine.place_one(item.workload, snapshot, policies, cache=cache)
            xs.append(time.perf_counter() - t)
    xs.sort()
    return {"decisions": len(xs), "per_s": round(len(xs) / sum(xs), 1) if xs else None,
            "p50_ms": round(percentile(xs, 50) * 1e3, 3) if xs else None,
            "p99_ms": round(percentile(xs, 99) * 1e3, 3) if xs else None}


def run_batch(engine: Any, catalog: Catalog, policies: Any, fleet_gpus: int, n: int, log: Any) -> dict[str, Any]:
    """Batch mode under contention (``place`` of ``n`` workloads at once on a smaller fleet), and the same
    placed set's cost against the LP relaxation / MILP of the problem."""
    snap, stats = build_fleet(fleet_gpus, catalog)
    wls = [item.workload for item in workload_stream(n, seed=7)]
    demand = sum(w.total_gpus for w in wls)
    t = time.perf_counter()
    result = engine.place(wls, snap, policies)
    seconds = time.perf_counter() - t
    by_name = {w.name: w for w in wls}
    placed = [(by_name[d.workload], d.assignments) for d in result.decisions if d.placed]
    ours = sum(_cost(d) for d in result.decisions if d.placed)
    share = getattr(policies, "provider_share", None)
    lp = lp_bound(placed, list(snap.pools), catalog, policies,
                  provider_cap=share.max_share if share else None,
                  min_fleet_gpus=share.min_fleet_gpus if share else 0)
    if lp.lp_bound is None and share is not None:
        lp = lp_bound(placed, list(snap.pools), catalog, policies)
        lp.notes.append("infeasible with the provider cap as modelled here; bound computed without it")
    ratio = ours / lp.lp_bound if lp.lp_bound else None
    log(f"batch: {len(placed)}/{n} placed in {seconds:.2f} s; cost ${ours:,.2f}/h; LP bound "
        f"{'n/a' if lp.lp_bound is None else f'${lp.lp_bound:,.2f}/h'}")
    return {
        "fleet_gpus": stats.gpus, "workloads": n, "demand_gpus": demand, "placed": len(placed),
        "placed_gpus": sum(w.total_gpus for w, _ in placed), "seconds": round(seconds, 3),
        "our_cost_per_hour": round(ours, 4),
        "lp": {"status": lp.status, "lp_bound": lp.lp_bound, "milp_cost": lp.milp_cost, "milp_bound": lp.milp_bound,
               "classes": lp.classes, "columns": lp.columns, "seconds": round(lp.seconds, 3),
               "mismatches": lp.mismatches, "notes": lp.notes},
        "cost_over_lp_bound": round(ratio, 5) if ratio else None,
        "cost_over_milp": round(ours / lp.milp_cost, 5) if lp.milp_cost else None,
        # the MILP's dual bound keeps each gang in one region, as every placement must: a valid lower bound
        # tighter than the LP's, which may spread a 1,024-GPU gang over regions (issue 17 defect 8)
        "cost_over_milp_bound": round(ours / lp.milp_bound, 5) if lp.milp_bound else None,
    }


def run_peer(engine: Any, catalog: Catalog, fleet_gpus: int, n_requests: int, log: Any) -> dict[str, Any]:
    """The same single-node requests to our place_one (default policies, full fleet) and to SkyPilot."""
    from bench.placement.skypilot_peer import SkyWorker, ensure_bench_venv, make_requests
    from controlplane.model import GPUWorkload
    from controlplane.policy.model import PolicySet

    python = ensure_bench_venv(log)
    # Without the engine, SkyPilot's side is still measured, and ours is reported as pending.
    snap = build_fleet(fleet_gpus, catalog)[0] if engine is not None else None
    policies = PolicySet.default()
    requests = make_requests(catalog, n_requests)
    rows: list[dict[str, Any]] = []
    with SkyWorker(catalog, python) as sky:
        log(f"skypilot {sky.version}: imported in {sky.import_seconds:.1f} s; catalog rows {sky.catalog_rows}")
        warm = requests[0]
        t = time.perf_counter()
        sky.ask({**warm.sky_json(), "id": "warm-up"})
        first_sky = time.perf_counter() - t
        if engine is not None:
            engine.place_one(GPUWorkload.model_validate(warm.manifest()), snap, policies)
        for r in requests:
            wl = GPUWorkload.model_validate(r.manifest())
            t = time.perf_counter()
            d = engine.place_one(wl, snap, policies) if engine is not None else _PENDING
            ours_s = time.perf_counter() - t if engine is not None else None
            theirs = sky.ask(r.sky_json())
            a = d.assignments[0] if d.placed and d.assignments else None
            ours_cost = _cost(d) if d.placed else None
            sky_cost = theirs.get("cost_per_hour") if theirs.get("ok") else None
            rows.append({
                "id": r.id, "request": f"{r.count}x{r.gpu} {'spot' if r.spot else 'on-demand'} {r.label}",
                "ours": {"placed": d.placed, "cost": ours_cost, "ms": None if ours_s is None else round(ours_s * 1e3, 3),
                         "where": f"{a.provider}/{a.zone}/{a.instance_type}" if a else _why(d)},
                "sky": {"placed": bool(theirs.get("ok")), "cost": sky_cost, "ms": round(theirs["seconds"] * 1e3, 1),
                        "where": (f"{theirs['cloud']}/{theirs.get('zone') or theirs['region']}/{theirs['instance_type']}"
                                  if theirs.get("ok") else theirs.get("error", "")[:80])},
                "cost_ratio": round(ours_cost / sky_cost, 4) if ours_cost is not None and sky_cost else None,
                "time_ratio": round(ours_s / theirs["seconds"], 6) if ours_s and theirs.get("seconds") else None,
            })
    both = [r for r in rows if r["cost_ratio"] is not None]
    worse = [r for r in both if r["cost_ratio"] > 1 + 1e-9]
    return {
        "skypilot_version": sky.version, "skypilot_first_decision_s": round(first_sky, 2),
        "requests": len(rows), "comparable": len(both), "ours_costlier": len(worse),
        "only_ours_placed": sum(1 for r in rows if r["ours"]["placed"] and not r["sky"]["placed"]),
        "only_sky_placed": sum(1 for r in rows if r["sky"]["placed"] and not r["ours"]["placed"]),
        "max_cost_ratio": max((r["cost_ratio"] for r in both), default=None),
        "median_time_ratio": percentile(sorted(r["time_ratio"] for r in both), 50) if both else None,
        "median_ours_ms": percentile(sorted(r["ours"]["ms"] for r in rows if r["ours"]["ms"] is not None), 50),
        "median_sky_ms": percentile(sorted(r["sky"]["ms"] for r in rows), 50),
        "rows": rows,
    }
