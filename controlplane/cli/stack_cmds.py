"""`awan stack list|preview|up|destroy|refresh` and `awan deploy`: drive the Pulumi stacks, one per
(provider, region), with the counts of creates, updates and deletes as Pulumi prints them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from controlplane.cli.clouds import HINT
from controlplane.cli.output import console, err_console, fail, print_json

if TYPE_CHECKING:   # infra and the providers load inside the commands (`awan --help` stays fast)
    from infra.engines.base import ChangeSet, DriftReport, Engine, UpResult
    from infra.spec import NodePoolSpec, StackSpec
    from providers.config import AwanConfig

stack_app = typer.Typer(help="Provisioning stacks, one per (provider, region).", no_args_is_help=True)

ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="awan.yaml (default: $AWAN_CONFIG or ./awan.yaml)")]
EngineOpt = Annotated[str, typer.Option("--engine", help="auto (pulumi if its CLI is installed, else local), pulumi, local")]
StateOpt = Annotated[str | None, typer.Option("--state-dir", help="local engine state (default: $AWAN_STATE_DIR or ~/.awan/stacks)")]
ProviderOpt = Annotated[str, typer.Option("--provider", "-p", help="aws, gcp, azure, coreweave or oci")]
RegionOpt = Annotated[str, typer.Option("--region", "-r", help="the provider's region name")]
PlanOpt = Annotated[Path | None, typer.Option("--plan", help="placements: the JSON of `awan plan -o json`")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _config(path: str | None) -> AwanConfig:
    from controlplane.environment import config_path
    from providers.config import load_config

    p = config_path(path)
    if p is None:
        fail(HINT.replace(", or --mock to start throw-away mock clouds for this command", ""))
    return load_config(p)


def _provider_config(cfg: AwanConfig, provider: str) -> dict[str, str]:
    pc = cfg.providers.get(provider)
    if pc is None:
        return {}
    out = {"resource_group": pc.resource_group, "namespace": pc.namespace}
    if pc.project:
        out["project"] = pc.project
    if pc.subscription:
        out["subscription"] = pc.subscription
    if pc.secret("ssh_public_key"):         # a public key: safe in the stack's config
        out["ssh_public_key"] = pc.secret("ssh_public_key")
    return out


def _engine(kind: str, cfg: AwanConfig, state_dir: str | None) -> Engine:
    from infra.engines.select import select_engine
    from infra.engines.state import FileStateStore

    def show(line: str) -> None:
        err_console.print(line, style="dim", highlight=False, soft_wrap=True, markup=False)

    return select_engine(kind, config=cfg, store=FileStateStore(state_dir) if state_dir else None,  # type: ignore[arg-type]
                         on_output=show)


def _pools_from_plan(path: Path) -> list[NodePoolSpec]:
    from controlplane.reconcile.desired import pools_from_plan

    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except json.JSONDecodeError as e:
        fail(f"{path}: not valid JSON ({e})")
    return pools_from_plan(data, source=str(path))


def _stack(provider: str, region: str, cfg: AwanConfig, plan: Path | None) -> StackSpec:
    from infra.spec import StackSpec

    pools = [p for p in _pools_from_plan(plan) if (p.provider, p.region) == (provider, region)] if plan else []
    return StackSpec(provider, region, tuple(pools), config=_provider_config(cfg, provider))


def _counts_line(c: dict[str, int], past: bool) -> str:
    verbs = ("created", "updated", "deleted") if past else ("to create", "to update", "to delete")
    return (f"[green]+ {c['create']} {verbs[0]}[/], [yellow]~ {c['update']} {verbs[1]}[/], "
            f"[red]- {c['delete']} {verbs[2]}[/], {c['same']} unchanged")


def _show_changes(title: str, cs: ChangeSet, past: bool) -> None:
    from rich.table import Table

    marks = {"create": "[green]+[/]", "update": "[yellow]~[/]", "delete": "[red]-[/]"}
    if cs.changed:
        t = Table(title=title, show_lines=False)
        for col in ("", "type", "name", "detail"):
            t.add_column(col)
        for ch in [*cs.creates, *cs.updates, *cs.deletes]:
            t.add_row(marks.get(ch.op, "~"), ch.type, ch.name, ch.detail)
        console.print(t)
    console.print(f"{title}: Resources: " + _counts_line(cs.counts, past), highlight=False)


def _result_json(r: UpResult) -> dict[str, Any]:
    return {"stack": r.stack, "counts": r.counts, "outputs": r.outputs, "durationS": round(r.duration_s, 3),
            "notApplied": [{"urn": c.urn, "reason": c.detail} for c in r.not_applied], "messages": r.messages}


def _show_up(r: UpResult) -> None:
    _show_changes(r.stack, r.changes, past=True)
    for c in r.not_applied:
        console.print(f"[yellow]not applied:[/] {c.type} {c.name}: {c.detail}", highlight=False)
    console.print(f"[dim]duration {r.duration_s:.1f}s[/]")


def _show_drift(rep: DriftReport) -> None:
    from rich.table import Table

    if not rep.drifted:
        console.print(f"{rep.stack}: no drift")
        return
    t = Table(title=f"{rep.stack}: drift")
    for col in ("kind", "type", "cloud id", "detail"):
        t.add_column(col)
    for d in [*rep.missing, *rep.changed, *rep.unmanaged]:
        t.add_row(d.kind, d.type, d.cloud_id, d.detail)
    console.print(t)
    console.print(f"{len(rep.missing)} missing, {len(rep.changed)} changed, {len(rep.unmanaged)} unmanaged; "
                  "`awan stack up` repairs missing and changed resources")


def _run(fn: Any) -> Any:
    from infra.engines.base import EngineError
    from infra.spec import SpecError
    from providers.config import ConfigError
    from providers.errors import ProviderError

    try:
        return fn()
    except (ConfigError, SpecError, EngineError, ProviderError) as e:
        fail(str(e))


@stack_app.command("list")
def list_cmd(config: ConfigOpt = None, engine: EngineOpt = "auto", state_dir: StateOpt = None,
             as_json: JsonOpt = False) -> None:
    """List the stacks the engine knows.

    \b
    Examples:
      awan stack list --config awan.yaml
    """
    from rich.table import Table

    from infra.spec import parse_stack_name

    eng = _run(lambda: _engine(engine, _config(config), state_dir))
    names = _run(eng.list_stacks)
    if as_json:
        print_json({"stacks": names})
        return
    t = Table(title=f"stacks ({eng.name} engine)")
    for col in ("stack", "provider", "region", "pools"):
        t.add_column(col)
    for n in names:
        prov, region = parse_stack_name(n)
        pools = (_run(lambda n=n: eng.outputs(n)) or {}).get("pools") or {}
        t.add_row(n, prov, region, ", ".join(sorted(pools)) or "-")
    console.print(t)


def _one(action: str, provider: str, region: str, config: str | None, engine: str, state_dir: str | None,
         plan: Path | None, as_json: bool) -> None:
    cfg = _run(lambda: _config(config))
    eng = _run(lambda: _engine(engine, cfg, state_dir))
    spec = _run(lambda: _stack(provider, region, cfg, plan))
    if action == "preview":
        cs = _run(lambda: eng.preview(spec))
        if as_json:
            print_json({"stack": spec.name, "counts": cs.counts})
        else:
            _show_changes(spec.name, cs, past=False)
    elif action == "up":
        r = _run(lambda: eng.up(spec))
        print_json(_result_json(r)) if as_json else _show_up(r)
    elif action == "destroy":
        from infra.spec import stack_name

        r = _run(lambda: eng.destroy(stack_name(provider, region)))
        print_json(_result_json(r)) if as_json else _show_up(r)
    else:
        rep = _run(lambda: eng.refresh(spec))
        if as_json:
            print_json({"stack": rep.stack, "missing": [d.cloud_id or d.urn for d in rep.missing],
                        "changed": [d.urn for d in rep.changed], "unmanaged": [d.cloud_id for d in rep.unmanaged]})
        else:
            _show_drift(rep)


@stack_app.command("preview")
def preview_cmd(provider: ProviderOpt, region: RegionOpt, plan: PlanOpt = None, config: ConfigOpt = None,
                engine: EngineOpt = "auto", state_dir: StateOpt = None, as_json: JsonOpt = False) -> None:
    """What `up` would change in one stack (pools from --plan; none: the stack's pools would be deleted).

    \b
    Examples:
      awan plan -f examples/finetune-eu.yaml -o json > plan.json
      awan stack preview -p gcp -r europe-west4 --plan plan.json
    """
    _one("preview", provider, region, config, engine, state_dir, plan, as_json)


@stack_app.command("up")
def up_cmd(provider: ProviderOpt, region: RegionOpt, plan: PlanOpt = None, config: ConfigOpt = None,
           engine: EngineOpt = "auto", state_dir: StateOpt = None, as_json: JsonOpt = False) -> None:
    """Bring one stack in line with the placements in --plan.

    \b
    Examples:
      awan stack up -p aws -r us-east-1 --plan plan.json
    """
    _one("up", provider, region, config, engine, state_dir, plan, as_json)


@stack_app.command("destroy")
def destroy_cmd(provider: ProviderOpt, region: RegionOpt, config: ConfigOpt = None, engine: EngineOpt = "auto",
                state_dir: StateOpt = None, as_json: JsonOpt = False) -> None:
    """Delete everything one stack holds.

    \b
    Examples:
      awan stack destroy -p azure -r eastus
    """
    _one("destroy", provider, region, config, engine, state_dir, None, as_json)


@stack_app.command("refresh")
def refresh_cmd(provider: ProviderOpt, region: RegionOpt, plan: PlanOpt = None, config: ConfigOpt = None,
                engine: EngineOpt = "auto", state_dir: StateOpt = None, as_json: JsonOpt = False) -> None:
    """Compare one stack's state with the cloud: missing, changed and unmanaged resources.

    \b
    Examples:
      awan stack refresh -p coreweave -r US-EAST-04 --json
    """
    _one("refresh", provider, region, config, engine, state_dir, plan, as_json)


def deploy(plan: PlanOpt = None, config: ConfigOpt = None, engine: EngineOpt = "auto", state_dir: StateOpt = None,
           as_json: JsonOpt = False) -> None:
    """Bring every stack in line with the current placements (--plan: `awan plan -o json` output).
    Stacks that no longer get any pool are brought to empty, deleting their pools.

    \b
    Examples:
      awan plan -f examples/inference-spread.yaml -o json > plan.json
      awan deploy --plan plan.json
    """
    from infra.spec import desired_stacks

    if plan is None:
        fail("--plan: required for now (the JSON of `awan plan -o json`)")
    cfg = _run(lambda: _config(config))
    eng = _run(lambda: _engine(engine, cfg, state_dir))
    pools = _run(lambda: _pools_from_plan(plan))
    stacks = _run(lambda: desired_stacks(pools, existing=eng.list_stacks(),
                                         config={p: _provider_config(cfg, p) for p in cfg.providers}))
    results = [_run(lambda s=s: eng.up(s)) for s in stacks]
    if as_json:
        print_json({"stacks": [_result_json(r) for r in results]})
        return
    for r in results:
        _show_up(r)
    total = {k: sum(r.counts[k] for r in results) for k in ("create", "update", "delete", "same")}
    console.print(f"deploy: {len(results)} stacks; Resources: " + _counts_line(total, past=True), highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(stack_app, name="stack")
    app.command("deploy")(deploy)
