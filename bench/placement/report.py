"""Render a placement results JSON as the BENCHMARKS.md section, so the figures there are the run's own.

    python -m bench.placement.report bench/results/placement-latest.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _f(x: Any, spec: str = ",.1f") -> str:
    return "n/a" if x is None else format(x, spec)


def _cpu_lines(s: dict[str, Any]) -> list[str]:
    c, load = s.get("cpu_time"), s.get("load_average")
    if not c:
        return []
    out = [f"- the same in the thread's CPU time (other load on the machine excluded): "
           f"**{_f(c['single_node_placements_per_cpu_s'])}** single-node placements per CPU-second; 1,024-GPU "
           f"gang p99 **{c['gang1024_p99_ms']} ms** CPU (max {c['gang1024_max_ms']} ms)"]
    if load:
        out.append(f"- load average (1/5/15 min) at the stream's start {load['start']}, end {load['end']}")
    for shape, v in s.get("gang1024_by_shape", {}).items():
        out.append(f"- {shape}: {v['decisions']} decisions, wall p50 {v['p50_ms']} ms, p99 {v['p99_ms']} ms")
    return out


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    out = [f"Command: `{res['command']}` ({'quick' if res['quick'] else 'full'} sizes: {res['sizes']})", "",
           f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, Python {m['python']}; "
           f"pinned to core {m['pinned_core']}; run {m['date']}; total {res['total_seconds']} s.", ""]
    s = res.get("stream")
    if s:
        fl = s["fleet"]
        out += [f"Stream: {s['workloads_decided']:,} workloads decided one at a time (`place_one`) on a fleet of "
                f"{fl['gpus']:,} GPUs ({', '.join(f'{k} {v:,}' for k, v in sorted(fl['by_provider'].items()))}) in "
                f"{fl['pools']:,} pools over {fl['regions']} regions; capacity refreshed every {s['window']:,} "
                f"decisions (`with_usage`, mean {s['snapshot_refresh_ms']['mean']} ms); fraction placed "
                f"{s['fraction_placed']}; peak RSS {s['memory_mib']['peak_rss']} MiB (fleet built: "
                f"{s['memory_mib']['rss_after_fleet']} MiB).", "",
                f"- single-node placements per second: **{_f(s['single_node_placements_per_s'])}** "
                f"(all sizes: {_f(s['decisions_per_s_all_sizes'])}/s)", *_cpu_lines(s), "",
                "| workload size (GPUs) | decisions | fraction placed | p50 ms | p99 ms | max ms |",
                "|---:|---:|---:|---:|---:|---:|"]
        for size, v in sorted(s["per_size"].items(), key=lambda kv: int(kv[0])):
            out.append(f"| {size} | {v['decisions']:,} | {v['fraction_placed']} | {v['p50_ms']} | {v['p99_ms']} | "
                       f"{v['max_ms']} |")
        if s["top_unplaced_reasons"]:
            out += ["", "Most frequent reasons for not placing (shape: first reason):", ""]
            out += [f"- {k}: {v:,}" for k, v in s["top_unplaced_reasons"].items()]
        out.append("")
    b = res.get("batch")
    if b:
        lp = b["lp"]
        out += [f"Batch: {b['workloads']:,} workloads ({b['demand_gpus']:,} GPUs asked) placed together (`place`) "
                f"on {b['fleet_gpus']:,} GPUs in {b['seconds']} s: {b['placed']:,} placed ({b['placed_gpus']:,} GPUs) "
                f"at ${b['our_cost_per_hour']:,.2f}/h. HiGHS on the same placed set: LP bound "
                f"${_f(lp['lp_bound'], ',.2f')}/h, MILP ${_f(lp['milp_cost'], ',.2f')}/h "
                f"({lp['classes']} classes, {lp['columns']} columns, {lp['seconds']} s; model disagreements "
                f"{lp['mismatches']}). **Ours / LP bound = {b['cost_over_lp_bound']}**, ours / MILP = "
                f"{b['cost_over_milp']}.", ""]
    p = res.get("peer")
    if p:
        out += [f"Peer, same run, same catalog: SkyPilot {p['skypilot_version']} optimizer (first decision "
                f"{p['skypilot_first_decision_s']} s, not counted). {p['requests']} single-node requests on "
                f"aws/gcp/azure (CoreWeave has no SkyPilot catalog); {p['comparable']} placed by both; ours costlier "
                f"on **{p['ours_costlier']}**; worst cost ratio {p['max_cost_ratio']}; median decision "
                f"{p['median_ours_ms']} ms (ours) vs {p['median_sky_ms']} ms (SkyPilot), median time ratio "
                f"{_f(p['median_time_ratio'], '.5f')}.", "",
                "| request | ours $/h | SkyPilot $/h | cost ratio | ours ms | SkyPilot ms | ours | SkyPilot |",
                "|---|---:|---:|---:|---:|---:|---|---|"]
        for r in p["rows"]:
            out.append(f"| {r['request'].replace('|', '/')} | {_f(r['ours']['cost'], '.2f')} | {_f(r['sky']['cost'], '.2f')} | "
                       f"{r['cost_ratio'] or '-'} | {r['ours']['ms']} | {r['sky']['ms']} | {r['ours']['where']} | "
                       f"{r['sky']['where']} |")
        out.append("")
    out += ["| target (one core) | measured | met? | by how much |", "|---|---|---|---|"]
    from bench.placement.run import (  # re-judged from the raw figures, as the run does
        _evaluate,
        _evaluate_cpu,
    )
    judged = _evaluate(res.get("stream"), res.get("batch"), res.get("peer"))
    cpu = _evaluate_cpu(res.get("stream"))
    order = ["single_node_placements_per_s", "single_node_placements_per_cpu_s", "gang1024_p99_ms",
             "gang1024_p99_cpu_ms"]
    rows = {**judged, **cpu}
    for v in [rows[k] for k in order if k in rows] + [v for k, v in judged.items() if k not in order]:
        met = {True: "yes", False: "**no**", None: "not measured"}[v["met"]]
        out.append(f"| {v['target']} | {v['value']} | {met} | {v['by']} |")
    for item in res.get("pending", []) + [f"{k}: {v}" for k, v in res.get("errors", {}).items()]:
        out.append(f"\nPending/failed: {item}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(json.loads(Path(sys.argv[1]).read_text())))
