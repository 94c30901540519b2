"""`awan offerings` and `awan providers`: what every provider sells, what is free, whether it is well."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, TypedDict

import typer

from controlplane.cli.clouds import ConfigOpt, MockOpt, require_clouds
from controlplane.cli.output import OutputFormat, console, err_console, fail, print_json

if TYPE_CHECKING:
    from providers.errors import ProviderError

FormatOpt = Annotated[OutputFormat, typer.Option("--output", "-o", help="table or json")]


class _HealthRow(TypedDict):
    """One provider in ``awan providers``; the keys are the JSON output's field names."""

    provider: str
    endpoint: str
    status: str
    latencyMs: float | None
    regions: dict[str, str]
    message: str


def _warn(errors: dict[str, ProviderError]) -> None:
    for name, e in sorted(errors.items()):
        err_console.print(f"[yellow]warning:[/] {name} at {e.endpoint or '?'}: {e.message}", highlight=False,
                          soft_wrap=True)


def _fmt_nodes(n: int | None, known: bool) -> str:
    if n is None:
        return "-"
    return str(n) if known else f"<={n}"


def offerings(
    gpu: Annotated[str | None, typer.Option(help="GPU model, e.g. H100, GB200")] = None,
    provider: Annotated[list[str] | None, typer.Option("--provider", "-p", help="aws, gcp, azure, coreweave, oci")] = None,
    capacity_type: Annotated[str | None, typer.Option("--capacity-type", help="reserved, on-demand or spot")] = None,
    output: FormatOpt = OutputFormat.table,
    config: ConfigOpt = None,
    mock: MockOpt = False,
) -> None:
    """List GPU offerings with price, live capacity and quota headroom, read through the adapters.

    \b
    Examples:
      awan mockclouds up &                # once; writes ./awan.yaml
      awan offerings --gpu H100
      awan offerings --gpu GB200 -p aws -p coreweave --capacity-type reserved -o json
    """
    from rich.table import Table

    from controlplane.environment import open_environment
    from controlplane.survey import offering_rows, survey
    from providers.config import ConfigError
    from providers.errors import ProviderError

    path = require_clouds(config, mock)
    try:
        with open_environment(path, provider) as env:
            err_console.print(f"[dim]{env.note}[/]", soft_wrap=True, highlight=False)
            with err_console.status("reading offerings, capacity and quotas from every provider..."):
                s = survey(env.providers)
    except (ConfigError, ProviderError) as e:
        fail(str(e))
    _warn(s.errors)
    if s.errors and not s.offerings:
        fail("no provider answered")
    rows = offering_rows(s, gpu=gpu)
    if capacity_type:
        rows = [r for r in rows if r.offering.capacity_type.value == capacity_type]
    if output is OutputFormat.json:
        print_json({
            "offerings": [{
                "provider": r.offering.provider, "region": r.offering.region, "zone": r.offering.zone,
                "instanceType": r.offering.instance_type, "gpuModel": r.gpu_model, "gpusPerNode": r.gpus_per_node,
                "capacityType": r.offering.capacity_type.value, "pricePerHour": r.offering.price_per_hour,
                "pricePerGpuHour": round(r.price_per_gpu_hour, 4), "availableNodes": r.available_nodes,
                "capacityKnown": r.capacity_known, "quotaHeadroomNodes": r.quota_headroom_nodes,
                "reservation": r.reservation or None, "source": r.offering.source,
            } for r in rows],
            "errors": {k: str(v) for k, v in s.errors.items()},
        })
        return
    t = Table(title=f"GPU offerings ({len(rows)})", show_lines=False)
    for col in ("provider", "region", "zone", "instance type", "gpu", "gpus", "capacity", "$/h", "$/gpu-h",
                "free nodes", "quota nodes"):
        t.add_column(col, justify="right" if col in ("gpus", "$/h", "$/gpu-h", "free nodes", "quota nodes")
                     else "left")
    for r in rows:
        o = r.offering
        t.add_row(o.provider, o.region, o.zone, o.instance_type, r.gpu_model, str(r.gpus_per_node),
                  o.capacity_type.value, f"{o.price_per_hour:.2f}", f"{r.price_per_gpu_hour:.2f}",
                  _fmt_nodes(r.available_nodes, r.capacity_known),
                  "-" if r.quota_headroom_nodes is None else str(r.quota_headroom_nodes))
    console.print(t)
    console.print("[dim]free nodes: '<=N' is a bound from quota headroom where the cloud has no free-capacity API[/]")


def providers(
    output: FormatOpt = OutputFormat.table,
    config: ConfigOpt = None,
    mock: MockOpt = False,
) -> None:
    """Show each configured provider's health: endpoint, status, latency, regions.

    \b
    Examples:
      awan providers
      awan providers --config awan.yaml -o json
    """
    from rich.table import Table

    from controlplane.environment import open_environment
    from controlplane.survey import survey
    from providers.config import ConfigError
    from providers.errors import ProviderError

    path = require_clouds(config, mock)
    try:
        with open_environment(path) as env:
            err_console.print(f"[dim]{env.note}[/]", soft_wrap=True, highlight=False)
            with err_console.status("asking every provider for its health..."):
                s = survey(env.providers, offerings=False, capacity=False)
            endpoints = {n: p.endpoint for n, p in env.providers.items()}
    except (ConfigError, ProviderError) as e:
        fail(str(e))
    _warn(s.errors)
    rows: list[_HealthRow] = []
    for name in sorted(endpoints):
        h = s.health.get(name)
        err = s.errors.get(name)
        rows.append({
            "provider": name, "endpoint": endpoints[name],
            "status": h.status.value if h else "down",
            "latencyMs": round(h.latency_ms, 1) if h else None,
            "regions": {k: v.value for k, v in (h.regions if h else {}).items()},
            "message": (h.message if h else "") or (str(err) if err else ""),
        })
    for r in rows:
        if r["status"] != "ok":
            err_console.print(f"[yellow]warning:[/] {r['provider']} at {r['endpoint']} is {r['status']}: "
                              f"{r['message']}", highlight=False, soft_wrap=True)
    if output is OutputFormat.json:
        print_json({"providers": rows})
    else:
        t = Table(title="providers")
        for col in ("provider", "endpoint", "status", "latency ms", "regions down", "message"):
            t.add_column(col)
        for r in rows:
            down = [k for k, v in r["regions"].items() if v != "ok"]
            style = {"ok": "green", "degraded": "yellow"}.get(r["status"], "red")
            t.add_row(r["provider"], r["endpoint"], f"[{style}]{r['status']}[/]",
                      "-" if r["latencyMs"] is None else str(r["latencyMs"]), ",".join(down) or "-", r["message"])
        console.print(t)
    if any(r["status"] == "down" for r in rows):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(offerings)
    app.command()(providers)
