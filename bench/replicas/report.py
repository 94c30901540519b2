"""Markdown for BENCHMARKS.md from a replicas results file:
``python -m bench.replicas.report bench/results/replicas-latest.json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, Python {m['python']}; run "
             f"{m['date']}; {r['workloads']} one-node workloads over {len(r['regions'])} AWS regions (stacks); "
             f"RunInstances {r['create_ms']:.0f} ms, DescribeInstances {r['list_ms']:.0f} ms; "
             f"{r['workers_per_replica']} stack run(s) at once per replica; load average before "
             f"{r['load_before']}, after {r['load_after']}.", "",
             "| replicas | run | seconds | workloads/s | load average (1, 5, 15 min) | stacks' workloads by replica |",
             "|---:|---:|---:|---:|---|---|"]
    seen: dict[int, int] = {}
    for run in r["runs"]:
        k = run["replicas"]
        seen[k] = seen.get(k, 0) + 1
        by = ", ".join(str(v) for _, v in sorted(run["provisioned_by"].items()))
        lines.append(f"| {k} | {seen[k]} | {run['seconds']} | {run['workloads_per_s']} | {run['load_avg']} | {by} |")
    lines += ["", "| replicas | median workloads/s | speed-up over 1 |", "|---:|---:|---:|"]
    for k, v in r["median"].items():
        lines.append(f"| {k} | {v} | {r['speedup'][k]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(json.loads(Path(sys.argv[1]).read_text())))
