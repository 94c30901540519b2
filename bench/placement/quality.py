"""Batch quality on held-out batches: ``python -m bench.placement.quality [sizes] [seeds]``.

Places batches of the stream's mix (bench/placement/stream.py) with seeds the engine was not tuned on, on
the batch phase's 150,000-GPU fleet under the bench's policies, once with the policies' weights ("score")
and once with every weight but cost at 0 ("cost-only"), and prints each batch's cost against the LP
relaxation and against the one-region MILP bound (bench/placement/lp_bound.py) as Markdown rows
(BENCHMARKS.md, "Batch vs the bound")."""

from __future__ import annotations

import dataclasses
import sys

from bench.placement.fleet import build_fleet
from bench.placement.lp_bound import lp_bound
from bench.placement.policies import bench_policies
from bench.placement.stream import workload_stream
from controlplane.placement import engine
from controlplane.policy.model import Weights
from providers.catalog import default_catalog


def main(argv: list[str]) -> None:
    sizes = [int(x) for x in (argv[0] if argv else "1000,3000,10000").split(",")]
    seeds = [int(x) for x in (argv[1] if len(argv) > 1 else "7,202,303").split(",")]
    cat = default_catalog()
    snap, _ = build_fleet(150_000, cat)
    base = bench_policies()
    cost_only = Weights(cost=1, committed=0, fewer_providers=0, spread=0, health=0, data_locality=0)
    modes = {"score": base, "cost-only": dataclasses.replace(base, weights=cost_only)}
    print("| n | seed | weights | placed | our $/h | ours / LP bound | ours / one-region MILP bound |")
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        for seed in seeds:
            wls = [i.workload for i in workload_stream(n, seed=seed)]
            by = {w.name: w for w in wls}
            for mode, ps in modes.items():
                r = engine.place(wls, snap, ps)
                placed = [(by[d.workload], d.assignments) for d in r.decisions if d.placed]
                ours = sum(d.price_per_hour for d in r.decisions if d.placed)
                sh = ps.provider_share
                lp = lp_bound(placed, list(snap.pools), cat, ps, provider_cap=sh.max_share if sh else None,
                              min_fleet_gpus=sh.min_fleet_gpus if sh else 0)
                lp_r = f"{ours / lp.lp_bound:.5f}" if lp.lp_bound else "n/a"
                milp_r = f"{ours / lp.milp_bound:.5f}" if lp.milp_bound else "n/a"
                print(f"| {n:,} | {seed} | {mode} | {len(placed):,} | {ours:,.2f} | {lp_r} | {milp_r} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
