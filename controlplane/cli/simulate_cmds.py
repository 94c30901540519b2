"""`awan simulate`: what-if over contracts, Capacity Blocks and provider mixes (controlplane/timeline)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from controlplane.cli.output import OutputFormat, console, fail, note, print_json


def simulate(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML: window, contracts, blocks, onDemand, trace")],
    trace: Annotated[Path | None, typer.Option("--trace", help="trace CSV instead of the scenario's own")] = None,
    delay: Annotated[list[str] | None, typer.Option("--delay", help="PROVIDER=DURATION: that provider's "
                                                    "contracts and blocks arrive later, e.g. aws=90d; repeatable")
                     ] = None,
    workloads: Annotated[int | None, typer.Option("--workloads", min=1, help="generated trace: this many "
                                                  "workloads instead of the scenario's")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="also write the report as an HTML page")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the report as JSON")] = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o", help="table or json")] = OutputFormat.table,
) -> None:
    """Replay a demand trace against contracts, blocks and on-demand providers with a simulated clock.

    \b
    Examples:
      awan simulate examples/simulate/whatif.yaml
      awan simulate examples/simulate/whatif.yaml --delay aws=90d -o json
    """
    import json

    from controlplane.timeline.report import render_html
    from controlplane.timeline.scenario import ScenarioError, delayed, load_scenario, parse_delay
    from controlplane.timeline.simulate import Simulation, summarize
    from controlplane.timeline.trace import generate, read_trace
    from providers.catalog import default_catalog

    try:
        s = load_scenario(scenario)
        s = delayed(s, dict(parse_delay(d) for d in delay or []))
        doc = s.doc
        if trace is not None:
            arrivals = iter(read_trace(trace, doc.start))
        elif doc.trace.file is not None:
            arrivals = iter(read_trace(s.base_dir / doc.trace.file, doc.start))
        else:
            assert doc.trace.generate is not None
            gen = doc.trace.generate
            if workloads is not None:
                gen = gen.model_copy(update={"workloads": workloads})
            arrivals = generate(gen, doc.start, doc.end)
        report = summarize(Simulation(s, default_catalog(), arrivals).run())
    except ScenarioError as e:
        fail(str(e))
    title = f"awan simulate {scenario.name}" + "".join(f" --delay {d}" for d in delay or [])
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        note(f"wrote {json_out}")
    if html is not None:
        html.write_text(render_html(report, title))
        note(f"wrote {html}")
    if output == OutputFormat.json:
        print_json(report)
        return
    c, w, f = report["cost"], report["waiting"], report["failed"]
    out = console.print
    out(f"{report['workloads']:,} workloads, {report['placed']:,} placed, {report['moved']:,} moved, "
        f"{f['neverFits'] + f['waitedTooLong']:,} failed ({f['neverFits']:,} never fit, "
        f"{f['waitedTooLong']:,} waited too long), {f['stillQueuedAtEnd']:,} still queued", highlight=False, soft_wrap=True)
    out(f"cost ${c['total']:,.0f} (reserved ${c['reserved']:,.0f}, on-demand ${c['onDemand']:,.0f})",
        highlight=False, soft_wrap=True)
    out(f"waiting: {w['waited']:,} waited; mean {w['meanHours']:.1f} h, p95 {w['p95Hours']:.1f} h, "
        f"max {w['maxHours']:.1f} h", highlight=False, soft_wrap=True)
    out("share: " + ", ".join(f"{p} {v['share'] * 100:.1f}%" for p, v in report["providers"].items()),
        highlight=False, soft_wrap=True)
    for r in report["reserved"]:
        util = (r["utilisation"] or 0) * 100
        out(f"{r['kind']} {r['name']}: {util:.1f}% used, waste ${r['wasteDollars']:,.0f} of ${r['cost']:,.0f}",
            highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
