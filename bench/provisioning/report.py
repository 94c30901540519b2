"""Markdown for BENCHMARKS.md from a provisioning results file:
``python -m bench.provisioning.report bench/results/provisioning-latest.json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

_PHASES = ("first_up", "second_up", "destroy")


def _check(r: dict[str, Any]) -> str:
    c = r["second_up"]["counts"]
    return (f"{'PASS' if r['noop_ok'] else 'FAIL'}: +{c.get('create', 0)} ~{c.get('update', 0)} "
            f"-{c.get('delete', 0)}, {c.get('same', 0)} unchanged")


def _wall_table(runs: list[dict[str, Any]]) -> list[str]:
    lines = ["| pools | stacks | resources | registration only s (peer) | first up s | second up s | destroy s "
             "| first up ms/pool | second up ms/pool | destroy ms/pool | nodes after up / destroy "
             "| no-op check (2nd up) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in runs:
        pp = r["per_pool_ms"]
        lines.append(f"| {r['pools']:,} | {r['stacks']} | {r['resources']:,} | {r['registration_only_s']:.2f} "
                     f"| {r['first_up']['seconds']:.2f} | {r['second_up']['seconds']:.2f} "
                     f"| {r['destroy']['seconds']:.2f} | {pp['first_up']:.1f} | {pp['second_up']:.1f} "
                     f"| {pp['destroy']:.1f} | {r['cloud_nodes_after_up']:,} / {r['cloud_nodes_after_destroy']} "
                     f"| {_check(r)} |")
    return lines


def _cpu_table(runs: list[dict[str, Any]]) -> list[str]:
    lines = ["| pools | registration only CPU s | first up CPU s | second up CPU s | destroy CPU s "
             "| registration ms/pool | first up ms/pool | second up ms/pool | destroy ms/pool "
             "| cloud-apply share of first up |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        pp = r.get("per_pool_cpu_ms") or {}
        if not pp:
            continue
        share = r["cloud_apply_share_first_up"]
        lines.append(f"| {r['pools']:,} | {r.get('registration_only_cpu_s', 0.0):.2f} "
                     + " ".join(f"| {r[ph].get('cpu_seconds', 0.0):.2f}" for ph in _PHASES)
                     + f" | {pp['registration_only']:.1f} | {pp['first_up']:.1f} | {pp['second_up']:.1f} "
                       f"| {pp['destroy']:.1f} | {share if share is not None else '-'} |")
    return lines


def _growth(label: str, g: dict[str, Any] | None) -> str:
    return f"{label}: " + ", ".join(f"{k} k = {v}" for k, v in (g or {}).items())


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    pin = f"pinned to core {m['pinned_core']}" if m.get("pinned_core") is not None else "not pinned"
    lines = [f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, Python {m['python']}; "
             f"{pin}; run {m['date']}; total {res['total_s']} s; peak RSS {res['peak_rss_mib']} MiB.", "",
             f"Pools: one node each, round-robin over aws, azure, coreweave, gcp, oci and {res['regions_per_provider']} "
             "regions of each (one stack per provider and region).", "",
             "Wall time, stacks one after the other:", "", *_wall_table(res["runs"]), ""]
    cpu = _cpu_table(res["runs"])
    if len(cpu) > 2:
        lines += ["CPU time of the whole process (engine, adapters and the in-process mock clouds), same runs:", "",
                  *cpu, ""]
    lines.append(_growth("Growth, time ~ N^k fitted over the sizes run (wall)", res.get("growth")))
    if res.get("growth_cpu"):
        lines += ["", _growth("Growth (CPU)", res.get("growth_cpu"))]
    if res.get("concurrent"):
        lines += ["", f"Stacks on {res.get('workers')} threads (the controller's stack_workers), same sizes, "
                      "beside the sequential figures above:", "", *_wall_table(res["concurrent"]), "",
                  _growth("Growth with workers (wall)", res.get("growth_concurrent"))]
    for s in res.get("skipped") or []:
        lines.append(f"- {s['pools']:,} pools not run: all phases predicted {s['predicted_total_s']:,} s, over the "
                     f"{s['budget_s']:.0f} s budget.")
    for k, v in (res.get("errors") or {}).items():
        lines.append(f"- errors in {k}: {v}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(json.loads(Path(sys.argv[1]).read_text())))
