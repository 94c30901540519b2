"""The simulation report as one self-contained HTML page (Chart.js inlined from the dashboard's vendored
copy, so the file opens anywhere without a network): GPU-hours per provider per week, and contracts/blocks
used against what they hold."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

CHART_JS = Path(__file__).resolve().parents[1] / "dashboard" / "static" / "vendor" / "chart.umd.min.js"
COLOURS = {"aws": "#ff9900", "gcp": "#4285f4", "azure": "#0078d4", "coreweave": "#7b3fe4", "oci": "#c74634"}


def _money(x: float) -> str:
    return f"${x:,.0f}"


def render_html(report: dict[str, Any], title: str) -> str:
    weekly = report["weekly"]
    providers = sorted({p for w in weekly for p in w})
    weeks = list(range(1, len(weekly) + 1))
    datasets = [{"label": p, "data": [round(w.get(p, 0.0)) for w in weekly], "fill": True, "stepped": True,
                 "borderColor": COLOURS.get(p, "#8a94a6"), "backgroundColor": COLOURS.get(p, "#8a94a6") + "88",
                 "pointRadius": 0} for p in providers]
    res = report["reserved"]
    bars = {"labels": [f"{r['name']} ({r['kind']})" for r in res],
            "datasets": [{"label": "used GPU-h", "data": [r["usedGpuHours"] for r in res],
                          "backgroundColor": [COLOURS.get(r["provider"], "#8a94a6") for r in res]},
                         {"label": "unused (waste) GPU-h", "data": [r["wasteGpuHours"] for r in res],
                          "backgroundColor": "#d5dae3"}]}
    rows = "".join(
        f"<tr><td>{html.escape(r['name'])}</td><td>{r['kind']}</td><td>{r['provider']}</td><td>{r['gpuModel']}</td>"
        f"<td class=n>{r['gpus']:,}</td><td class=n>{(r['utilisation'] or 0) * 100:.1f}%</td>"
        f"<td class=n>{_money(r['cost'])}</td><td class=n>{_money(r['wasteDollars'])}</td></tr>" for r in res)
    share = "".join(f"<tr><td>{p}</td><td class=n>{v['gpuHours']:,.0f}</td><td class=n>{v['share'] * 100:.1f}%</td></tr>"
                    for p, v in report["providers"].items())
    c, w, f = report["cost"], report["waiting"], report["failed"]
    chart_js = CHART_JS.read_text()
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:24px;color:#1b2330}} table{{border-collapse:collapse;margin:8px 0 20px}}
td,th{{padding:4px 10px;border-bottom:1px solid #e3e7ee;text-align:left}} .n{{text-align:right}}
.kpi{{display:inline-block;margin:0 28px 12px 0}} .kpi b{{display:block;font-size:22px}} .c{{height:320px}}</style>
<script>{chart_js}</script></head><body>
<h1>{html.escape(title)}</h1>
<p>{report['window']['start'][:10]} to {report['window']['end'][:10]}: {report['workloads']:,} workloads</p>
<div class=kpi>total cost<b id=k-cost>{_money(c['total'])}</b></div>
<div class=kpi>reserved (contracts, blocks)<b>{_money(c['reserved'])}</b></div>
<div class=kpi>on-demand<b>{_money(c['onDemand'])}</b></div>
<div class=kpi>waited (p95)<b>{w['p95Hours']:.1f} h</b></div>
<div class=kpi>failed placements<b id=k-failed>{f['neverFits'] + f['waitedTooLong']:,}</b></div>
<div class=kpi>moved<b>{report['moved']:,}</b></div>
<h2>GPU-hours per provider, per week</h2><div class=c><canvas id=weekly></canvas></div>
<h2>Contracts and Capacity Blocks</h2><div class=c><canvas id=reserved></canvas></div>
<table><tr><th>name</th><th>kind</th><th>provider</th><th>GPU</th><th class=n>GPUs</th><th class=n>utilisation</th>
<th class=n>cost</th><th class=n>waste</th></tr>{rows}</table>
<h2>Share per provider</h2><table><tr><th>provider</th><th class=n>GPU-hours</th><th class=n>share</th></tr>{share}</table>
<script>
const o = {{responsive: true, maintainAspectRatio: false, animation: false}};
new Chart(document.getElementById("weekly"), {{type: "line", data: {{labels: {json.dumps(weeks)},
  datasets: {json.dumps(datasets)}}}, options: Object.assign({{scales: {{y: {{stacked: true,
  title: {{display: true, text: "GPU-hours"}}}}, x: {{title: {{display: true, text: "week"}}}}}}}}, o)}});
new Chart(document.getElementById("reserved"), {{type: "bar", data: {json.dumps(bars)},
  options: Object.assign({{indexAxis: "y", scales: {{x: {{stacked: true}}, y: {{stacked: true}}}}}}, o)}});
</script></body></html>
"""
