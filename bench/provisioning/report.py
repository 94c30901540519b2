"""Markdown for BENCHMARKS.md from a provisioning results file:
``python -m bench.provisioning.report bench/results/provisioning-latest.json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    pin = f"pinned to core {m['pinned_core']}" if m.get("pinned_core") is not None else "not pinned"
    lines = [f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, Python {m['python']}; "
             f"{pin}; run {m['date']}; total {res['total_s']} s; peak RSS {res['peak_rss_mib']} MiB.", "",
             f"Pools: one node each, round-robin over aws, azure, coreweave, gcp and {res['regions_per_provider']} "
             "regions of each (one stack per provider and region).", "",
             "| pools | stacks | resources | registration only s (peer) | first up s | second up s | destroy s "
             "| first up ms/pool | second up ms/pool | destroy ms/pool | cloud-apply share of first up "
             "| no-op check (2nd up) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in res["runs"]:
        pp = r["per_pool_ms"]
        c = r["second_up"]["counts"]
        check = (f"{'PASS' if r['noop_ok'] else 'FAIL'}: +{c.get('create', 0)} ~{c.get('update', 0)} "
                 f"-{c.get('delete', 0)}, {c.get('same', 0)} unchanged")
        share = r["cloud_apply_share_first_up"]
        lines.append(f"| {r['pools']:,} | {r['stacks']} | {r['resources']:,} | {r['registration_only_s']:.2f} "
                     f"| {r['first_up']['seconds']:.2f} | {r['second_up']['seconds']:.2f} "
                     f"| {r['destroy']['seconds']:.2f} | {pp['first_up']:.1f} | {pp['second_up']:.1f} "
                     f"| {pp['destroy']:.1f} | {share if share is not None else '-'} | {check} |")
    g = res.get("growth") or {}
    lines += ["", "Growth, time ~ N^k fitted over the sizes run: " + ", ".join(
        f"{k} k = {v}" for k, v in g.items())]
    for s in res.get("skipped") or []:
        lines.append(f"- {s['pools']:,} pools not run: all phases predicted {s['predicted_total_s']:,} s, over the "
                     f"{s['budget_s']:.0f} s budget.")
    for k, v in (res.get("errors") or {}).items():
        lines.append(f"- errors in {k}: {v}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(json.loads(Path(sys.argv[1]).read_text())))
