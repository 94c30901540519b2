"""`awan plan`: a dry run of placement, like `terraform plan`. Nothing is provisioned.

``--capacity catalog`` plans against capacity seeded from the catalog (offline, deterministic);
``--capacity live`` asks every configured provider for capacity and health, concurrently. A provider that
fails is named in one line and left out; if none answers, the command fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from controlplane.cli.clouds import MockOpt, require_clouds
from controlplane.cli.output import OutputFormat, console, err_console, fail, print_json

if TYPE_CHECKING:   # placement, CEL and the providers load inside the command (`awan --help` stays fast)
    from controlplane.model import GPUWorkload
    from controlplane.placement import FleetSnapshot, PlacementResult
    from providers.base import Provider

DEFAULT_POLICY_DIR = Path("policies")


class CapacitySource(StrEnum):
    live = "live"
    catalog = "catalog"


def read_workloads(files: list[Path]) -> list[GPUWorkload]:
    from controlplane.model import ManifestError, parse_manifests

    out: list[GPUWorkload] = []
    names: dict[str, Path] = {}
    for f in files:
        if not f.is_file():
            raise ManifestError(f"{f}: no such file")
        for w in parse_manifests(f.read_text(), str(f)):
            if w.name in names:
                raise ManifestError(f"{f}: metadata.name: {w.name!r} is also defined in {names[w.name]}")
            names[w.name] = f
            out.append(w)
    return out


def snapshot_from_providers(providers: Mapping[str, Provider]) -> FleetSnapshot:
    """Capacity and health from every provider, asked concurrently; a provider that fails is named and left out."""
    from controlplane.placement import FleetSnapshot
    from controlplane.survey import survey
    from providers.catalog import default_catalog

    with err_console.status("reading live capacity and health from every provider..."):
        s = survey(providers, offerings=False)
    for name, e in sorted(s.errors.items()):
        err_console.print(f"[yellow]warning:[/] provider {name} left out: {e}", highlight=False, soft_wrap=True)
    if not s.capacity:
        fail("no provider answered; nothing to plan against")
    return FleetSnapshot.from_reports(default_catalog(), [s.capacity[n] for n in sorted(s.capacity)], s.health)


def live_snapshot(config: str | None = None) -> FleetSnapshot:
    from controlplane.environment import open_environment

    with open_environment(config) as env:
        err_console.print(f"[dim]{env.note}[/]", highlight=False, soft_wrap=True)
        if not env.providers:
            fail("no providers are configured")
        return snapshot_from_providers(env.providers)


def _table(result: PlacementResult) -> None:
    from rich.table import Table

    from controlplane.placement.explain import group_rejections

    t = Table(title="awan plan (dry run: nothing is provisioned)")
    for col in ("workload", "placed", "where", "instance type", "nodes", "GPUs", "capacity", "$/h", "score"):
        t.add_column(col, overflow="fold")
    for d in result.decisions:
        if not d.placed:
            t.add_row(d.workload, "[red]no[/]", d.unplaced_kind, "", "", "", "", "", "")
            continue
        rows = d.assignments
        where = sorted({f"{a.provider}/{a.zone}" for a in rows})
        t.add_row(d.workload, "[green]yes[/]", ", ".join(where), ", ".join(sorted({a.instance_type for a in rows})),
                  str(sum(a.nodes for a in rows)), str(d.gpus),
                  "/".join(sorted({str(a.capacity_type) for a in rows})), f"{d.price_per_hour:,.2f}",
                  f"{d.score:.3f}")
    console.print(t)
    for d in result.decisions:
        console.print(f"[bold]{d.workload}[/]", highlight=False)
        for r in d.reasons:
            console.print(f"  {r}", highlight=False, soft_wrap=True, markup=False)
        for ru in d.runners_up:
            console.print(f"  runner-up: {ru['provider']}/{ru['region']} {ru['instanceType']} "
                          f"${ru['pricePerHour']:,.2f}/h score {ru['score']:.3f}", highlight=False)
        by_rule = ", ".join(f"{rule} {len(keys)}" for rule, keys, _ in group_rejections(d.rejections))
        console.print(f"  {len(d.rejections)} provider/regions ruled out ({by_rule}; -o json lists each)",
                      highlight=False, markup=False)
    s = result.summary()
    console.print(f"placed {s['placed']}/{s['workloads']} workloads, {s['gpusPlaced']} GPUs, "
                  f"${s['costPerHour']:,.2f}/h marginal", highlight=False)
    for name, c in s["commitments"].items():
        console.print(f"commitment {name}: used {c['used']:g} of {c['committed']:g} {c['unit']}", highlight=False)


def _with_owners(out: dict[str, Any], workloads: list[GPUWorkload]) -> dict[str, Any]:
    """Each placement carries its workload's team, kind and topology, so `awan deploy --plan` tags the
    machines with the same workload key the service would (not under the team 'default')."""
    by_name = {w.name: w for w in workloads}
    for p in out.get("placements", []):
        w = by_name.get(p.get("workload"))
        if w is not None:
            p.update(team=w.team, kind=str(w.spec.kind), topology=str(w.spec.topology.domain))
    return out


def plan(
    files: Annotated[list[Path], typer.Option("--file", "-f", help="workload manifest (YAML/JSON); repeatable")],
    policies: Annotated[Path | None, typer.Option("--policies", help="policy file or directory "
                                                  "(default: ./policies if present)")] = None,
    capacity: Annotated[CapacitySource, typer.Option("--capacity", help="live: ask the providers; "
                                                     "catalog: capacity seeded from the catalog")] = CapacitySource.live,
    output: Annotated[OutputFormat, typer.Option("--output", "-o", help="table or json")] = OutputFormat.table,
    config: Annotated[str | None, typer.Option("--config", "-c", help="awan.yaml for --capacity live (default: "
                                               "$AWAN_CONFIG, ./awan.yaml)")] = None,
    mock: MockOpt = False,
) -> None:
    """Show where each workload would be placed and why (nothing is provisioned).

    \b
    Examples:
      awan plan -f examples/finetune-eu.yaml --capacity catalog     # offline, from the catalog
      awan plan -f examples/inference-spread.yaml -o json         # live capacity (./awan.yaml)
    """
    from controlplane.model import ManifestError
    from controlplane.placement import FleetSnapshot, place
    from controlplane.policy import PolicyError, PolicySet, load_policies
    from controlplane.policy.admission import first_error
    from providers.catalog import default_catalog

    try:
        workloads = read_workloads(files)
        if policies is not None:
            ps = load_policies(policies)
        elif DEFAULT_POLICY_DIR.is_dir():
            ps = load_policies(DEFAULT_POLICY_DIR)
        else:
            ps = PolicySet.default()
    except (ManifestError, PolicyError) as e:
        fail(str(e))
    except OSError as e:
        fail(f"{e.filename or ''}: {e.strerror}")
    # fail closed: an unknown data class, region or geography is refused here, as the API refuses it
    refused = first_error(workloads, default_catalog(), ps)
    if refused:
        fail(refused)
    if capacity == CapacitySource.catalog:
        snap = FleetSnapshot.from_catalog(default_catalog())
    else:
        from providers.config import ConfigError
        from providers.errors import ProviderError
        path = require_clouds(config, mock)
        try:
            snap = live_snapshot(path)
        except (ConfigError, ProviderError) as e:
            fail(str(e))
    result = place(workloads, snap, ps)
    if output == OutputFormat.json:
        print_json(_with_owners(result.to_json(), workloads))
    else:
        _table(result)


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
