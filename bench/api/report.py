"""Markdown for BENCHMARKS.md from an api results file: ``python -m bench.api.report bench/results/api-latest.json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    pin = f"load generator pinned to core {m['pinned_core']}" if m.get("pinned_core") is not None else "not pinned"
    srv = f"server on core(s) {res['server_cores']}" if res.get("server_cores") else "server unpinned"
    lines = [f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, Python {m['python']}; "
             f"{pin}, {srv}; run {m['date']}; total {res['total_s']} s; {res['seconds_per_cell']} s per cell.", "",
             "| database | operation | clients | requests/s | p50 ms | p99 ms | requests | errors |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for c in res["cells"]:
        lines.append(f"| {c['db']} | {c['op']} | {c['clients']} | {c['rps']:,.1f} | {c['p50_ms']} | {c['p99_ms']} "
                     f"| {c['requests']:,} | {c['errors']} |")
    r = res.get("reconcile")
    if r:
        lines += ["", f"Reconcile: {r['workloads']:,} workloads (submitted in {r['submit_s']} s) left Pending in "
                      f"{r['seconds']} s over {r['ticks']} passes: **{r['workloads_per_s']:,.1f} workloads/s**; "
                      f"final states {r['states']}; {r['stack_ups']} stack runs holding {r['pools_held']:,} pools."]
    for k, v in (res.get("errors") or {}).items():
        lines.append(f"- error {k}: {v}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(json.loads(Path(sys.argv[1]).read_text())))
