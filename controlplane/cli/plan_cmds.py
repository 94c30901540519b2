"""`awan plan`: a dry run of placement, like `terraform plan`. Nothing is provisioned.

``--capacity catalog`` plans against capacity seeded from the catalog (offline, deterministic);
``--capacity live`` asks every configured provider for capacity and health, concurrently. A provider that
fails is named in one line and left out; if none answers, the command fails.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from controlplane.cli.clouds import MockOpt, require_clouds
from controlplane.cli.output import OutputFormat, err_console, fail

if TYPE_CHECKING:   # placement, CEL and the providers load inside the command (`awan --help` stays fast)
    from controlplane.model import GPUWorkload
    from controlplane.placement import FleetSnapshot, PlacementResult
    from controlplane.placement.explain import RuleCounter
    from controlplane.placement.results import Decision
    from providers.base import Provider

DEFAULT_POLICY_DIR = Path("policies")


class CapacitySource(StrEnum):
    live = "live"
    catalog = "catalog"


class ExplainLevel(StrEnum):
    """How much of each decision's rejections a plan writes. ``summary``: per rule, how many provider/regions
    it ruled out and one of them with its text; ``full``: that, and every provider/region with its rule."""

    summary = "summary"
    full = "full"


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


TABLE_COLUMNS = ("workload", "placed", "where", "instance type", "nodes", "GPUs", "capacity", "$/h", "score")


def _table_rows(result: PlacementResult) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for d in result.decisions:
        if not d.placed:
            rows.append((d.workload, "no", d.unplaced_kind, "", "", "", "", "", ""))
            continue
        a = d.assignments
        rows.append((d.workload, "yes", ", ".join(sorted({f"{x.provider}/{x.zone}" for x in a})),
                     ", ".join(sorted({x.instance_type for x in a})), str(sum(x.nodes for x in a)), str(d.gpus),
                     "/".join(sorted({str(x.capacity_type) for x in a})), f"{d.price_per_hour:,.2f}",
                     f"{d.score:.3f}"))
    return rows


def _table(result: PlacementResult, explain: ExplainLevel = ExplainLevel.summary) -> None:
    """The plan as text: a table (kubectl's layout: columns padded to their widest cell, nothing truncated),
    then each workload's reasons, runners-up and rejections counted by rule (``--explain full``: each
    provider/region with its rule, under its rule), then the totals.

    Written as plain lines, not through rich: a rich Table measures and wraps every cell to the terminal,
    which took 75 s for 10,000 workloads (issue 17); this is one pass over the decisions. Lines are written
    in chunks, so memory holds one chunk of text, not the whole plan."""
    from controlplane.placement.explain import RuleCounter, group_rejections

    count_by_rule = RuleCounter()
    out = sys.stdout
    rows = _table_rows(result)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(TABLE_COLUMNS)]
    out.write("awan plan (dry run: nothing is provisioned)\n")
    buf: list[str] = []
    for r in (TABLE_COLUMNS, *rows):
        buf.append("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if len(buf) >= 2048:
            out.write("\n".join(buf) + "\n")
            buf.clear()
    for d in result.decisions:
        # as write_json: the explanation is built for the writer, not kept; counted by rule from the engine's
        # captured data where it gives that (Decision.summarize)
        if explain == ExplainLevel.summary and d.summarize is not None:
            why, counts = d.summarize()
        else:
            why = d.explain() if d.explain is not None else d.explanation()
            counts = count_by_rule(why.rejections) if explain == ExplainLevel.summary else []
        buf.append(d.workload)
        buf.extend(f"  {r}" for r in why.reasons)
        buf.extend(f"  runner-up: {ru['provider']}/{ru['region']} {ru['instanceType']} "
                   f"${ru['pricePerHour']:,.2f}/h score {ru['score']:.3f}" for ru in why.runners_up)
        if explain == ExplainLevel.full:
            rej = why.rejections
            groups = group_rejections(rej)
            by_rule = ", ".join(f"{rule} {len(keys)}" for rule, keys, _ in groups)
            buf.append(f"  {len(rej)} provider/regions ruled out ({by_rule}):")
            buf.extend(f"    {k}: {rej[k]}" for _, keys, _ in groups for k in keys)
        else:
            by_rule = ", ".join(f"{rule} {n}" for rule, n, _, _ in counts)
            total = sum(n for _, n, _, _ in counts)
            buf.append(f"  {total} provider/regions ruled out ({by_rule}; --explain full lists each)")
        if len(buf) >= 2048:
            out.write("\n".join(buf) + "\n")
            buf.clear()
    s = result.summary()
    buf.append(f"placed {s['placed']}/{s['workloads']} workloads, {s['gpusPlaced']} GPUs, "
               f"${s['costPerHour']:,.2f}/h marginal")
    buf.extend(f"commitment {name}: used {c['used']:g} of {c['committed']:g} {c['unit']}"
               for name, c in s["commitments"].items())
    out.write("\n".join(buf) + "\n")


def _owners(workloads: list[GPUWorkload]) -> dict[str, dict[str, str]]:
    """Each placement carries its workload's team, kind and topology, so `awan deploy --plan` tags the
    machines with the same workload key the service would (not under the team 'default')."""
    return {w.name: {"team": w.team, "kind": str(w.spec.kind), "topology": str(w.spec.topology.domain)}
            for w in workloads}


def plan_placement(d: Decision, owner: Mapping[str, str] | None, explain: ExplainLevel,
                   count_by_rule: RuleCounter) -> dict[str, Any]:
    """One ``placements[]`` entry: the decision's JSON (``Decision.to_json``), its workload's team, kind and
    topology, and its rejections counted by rule (``rejectedByRule``). The per provider/region map
    (``rejections``, ~90 entries a decision: 80% of the bytes) is kept with ``--explain full`` only."""
    if explain == ExplainLevel.summary and d.summarize is not None:
        # counted from the engine's captured data: the ~100 rejection texts are not built (explain.py)
        why, counts = d.summarize()
        doc = d.to_json(keep=False, why=why)
        del doc["rejections"]
    else:
        doc = d.to_json(keep=False)     # the explanation is written, not kept: memory stays flat
        rej = doc.pop("rejections")
        counts = count_by_rule(rej)
    if owner is not None:
        doc.update(owner)
    doc["rejectedByRule"] = [{"rule": r, "count": n, "example": k, "why": why_k} for r, n, k, why_k in counts]
    if explain == ExplainLevel.full:
        doc["rejections"] = rej
    return doc


def write_json(result: PlacementResult, workloads: list[GPUWorkload],
               explain: ExplainLevel = ExplainLevel.summary) -> None:
    """``{"placements": [...], "summary": {...}}`` (docs/plan-output.md), laid out as ``json.dumps(indent=2)``
    lays it out, streamed: each placement is made, serialised by pydantic-core (Rust) and written before the
    next, so the document never sits in memory whole (about 2.5 kB a workload; 11 kB with ``--explain
    full``, whose rejections name every provider/region: 116 MB for 10,000). The stdlib encoder with
    ``indent`` runs in Python and took 5.4 s for that; this is the same JSON value
    (tests/controlplane/cli/test_plan_cmds.py compares them)."""
    from pydantic_core import to_json

    from controlplane.placement.explain import RuleCounter

    count_by_rule = RuleCounter()
    out = sys.stdout
    owners = _owners(workloads)
    out.write('{\n  "placements": [')
    for i, d in enumerate(result.decisions):
        doc = plan_placement(d, owners.get(d.workload), explain, count_by_rule)
        text = to_json(doc, indent=2, fallback=str).decode().replace("\n", "\n    ")
        out.write((",\n    " if i else "\n    ") + text)
    out.write("\n  ]," if result.decisions else "],")
    summary = to_json(result.summary(), indent=2, fallback=str).decode().replace("\n", "\n  ")
    out.write(f'\n  "summary": {summary}\n}}\n')


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
    explain: Annotated[ExplainLevel, typer.Option("--explain", help="summary: the provider/regions ruled "
                                                  "out, counted by rule, one example each; full: also each "
                                                  "one with its rule (JSON: rejections)")] = ExplainLevel.summary,
) -> None:
    """Show where each workload would be placed and why (nothing is provisioned).

    \b
    Examples:
      awan plan -f examples/finetune-eu.yaml --capacity catalog     # offline, from the catalog
      awan plan -f examples/inference-spread.yaml -o json         # live capacity (./awan.yaml)
      awan plan -f examples/finetune-eu.yaml --capacity catalog --explain full   # every region ruled out
    """
    from infra.gcpause import collector_paused

    with collector_paused():
        _plan(files, policies, capacity, output, config, mock, explain)


def _plan(files: list[Path], policies: Path | None, capacity: CapacitySource, output: OutputFormat,
          config: str | None, mock: bool, explain: ExplainLevel) -> None:
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
        write_json(result, workloads, explain)
    else:
        _table(result, explain)


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
