"""``python -m bench --suite simulate``: `awan simulate` on the shipped one-year scenario
(examples/simulate/whatif.yaml: four contracts, a Capacity Block, on-demand at four providers, 100,000
generated workloads) in this process, ``--simulate-runs`` times; median wall and CPU time (process time),
the load average before and after (the machine is shared), peak RSS.

Peer, in the same run: the placement engine alone on the same arrivals (each placed with ``Placer.place_one``
against the fleet at the window's start and released at once, no clock, no queue): what the decisions cost
without the simulation around them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench.machine import machine_info, peak_rss_mib, pin_one_core, write_results

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "examples" / "simulate" / "whatif.yaml"


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--simulate-runs", type=int, default=None, help="runs (default 3; --quick: 1)")
    group.add_argument("--simulate-workloads", type=int, default=None,
                       help="workloads in the generated trace (default: the scenario's 100,000; --quick: 2,000)")


def _once(workloads: int | None) -> tuple[float, float, dict[str, Any]]:
    from controlplane.timeline.scenario import load_scenario
    from controlplane.timeline.simulate import Simulation, summarize
    from controlplane.timeline.trace import generate
    from providers.catalog import default_catalog

    s = load_scenario(SCENARIO)
    assert s.doc.trace.generate is not None
    g = s.doc.trace.generate if workloads is None else s.doc.trace.generate.model_copy(
        update={"workloads": workloads})
    t0, c0 = time.perf_counter(), time.process_time()
    report = summarize(Simulation(s, default_catalog(), generate(g, s.doc.start, s.doc.end)).run())
    return time.perf_counter() - t0, time.process_time() - c0, report


def _peer(workloads: int | None) -> tuple[float, float, int]:
    from controlplane.placement.engine import Placer
    from controlplane.timeline.scenario import load_scenario
    from controlplane.timeline.simulate import _Specs, build_fleet
    from controlplane.timeline.trace import generate
    from providers.catalog import default_catalog

    s = load_scenario(SCENARIO)
    assert s.doc.trace.generate is not None
    g = s.doc.trace.generate if workloads is None else s.doc.trace.generate.model_copy(
        update={"workloads": workloads})
    snap, ps, _ = build_fleet(s, default_catalog())
    snap = dataclasses.replace(snap, pools=tuple(dataclasses.replace(p, starts_at=None, ends_at=None)
                                                 for p in snap.pools))
    specs = _Specs()
    t0, c0 = time.perf_counter(), time.process_time()
    placer = Placer(snap, ps)
    placed = 0
    for a in generate(g, s.doc.start, s.doc.end):
        w = specs.of(a)
        if placer.place_one(w, explain=False).placed:
            placed += 1
            placer.release(w.name)
    return time.perf_counter() - t0, time.process_time() - c0, placed


def main(args: argparse.Namespace) -> int:
    core = None if args.no_pin else pin_one_core()
    runs = args.simulate_runs or (1 if args.quick else 3)
    workloads = args.simulate_workloads or (2000 if args.quick else None)
    load_before = os.getloadavg()
    sims, peers = [], []
    report: dict[str, Any] = {}
    for i in range(runs):
        wall, cpu, report = _once(workloads)
        sims.append((wall, cpu))
        print(f"simulate run {i + 1}/{runs}: {wall:.1f} s wall, {cpu:.1f} s CPU, "
              f"{report['workloads']:,} workloads", flush=True)
        pw, pc, placed = _peer(workloads)
        peers.append((pw, pc))
        print(f"peer (engine alone) run {i + 1}/{runs}: {pw:.1f} s wall, {pc:.1f} s CPU, {placed:,} placed",
              flush=True)
    load_after = os.getloadavg()
    payload: dict[str, Any] = {
        "machine": machine_info(core), "scenario": str(SCENARIO.relative_to(REPO)), "runs": runs,
        "workloads": report.get("workloads"),
        "simulate": {"wall_s": [round(w, 2) for w, _ in sims], "cpu_s": [round(c, 2) for _, c in sims],
                     "median_wall_s": round(statistics.median(w for w, _ in sims), 2),
                     "median_cpu_s": round(statistics.median(c for _, c in sims), 2)},
        "peer_engine_alone": {"wall_s": [round(w, 2) for w, _ in peers], "cpu_s": [round(c, 2) for _, c in peers],
                              "median_wall_s": round(statistics.median(w for w, _ in peers), 2),
                              "median_cpu_s": round(statistics.median(c for _, c in peers), 2)},
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in load_after],
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "report_summary": {k: report.get(k) for k in ("placed", "moved", "failed", "cost", "waiting", "providers")},
    }
    path = write_results(args.results_dir, "simulate", payload)
    print(f"simulate: median {payload['simulate']['median_wall_s']} s wall, "
          f"{payload['simulate']['median_cpu_s']} s CPU over {runs} run(s); peer (engine alone) median "
          f"{payload['peer_engine_alone']['median_wall_s']} s wall; load {load_before[0]:.2f} -> "
          f"{load_after[0]:.2f}; results {path}")
    return 0
