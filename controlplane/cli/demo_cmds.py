"""`awan demo` (what `make run` runs): the whole flow on one laptop, against embedded mock clouds.

1. start the four mock clouds on loopback and read live offerings through the adapters;
2. plan the manifests in ``examples/`` against live mock capacity, with explanations (a dry run);
3. start the service (API, dashboard, reconcile loop; SQLite), submit the examples through the HTTP API as
   their teams, and show placement and provisioning progress until every workload settles;
4. print the API and dashboard URLs and keep serving until Ctrl-C (``--exit-when-settled`` for scripts).
"""

from __future__ import annotations

import socket
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.live import Live
from rich.table import Table

from controlplane.cli.output import console, fail

SETTLED = {"Running", "Failed", "Deleted"}


def _port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])


def _offerings_summary(providers: dict[str, Any]) -> None:
    from controlplane.survey import offering_rows, survey

    s = survey(providers)
    best: dict[tuple[str, str], tuple[float, int]] = {}
    for r in offering_rows(s):
        if r.offering.capacity_type.value != "on-demand":
            continue
        key = (r.gpu_model, r.offering.provider)
        free = (r.available_nodes or 0) * r.gpus_per_node
        old = best.get(key)
        best[key] = (min(old[0], r.price_per_gpu_hour) if old else r.price_per_gpu_hour, (old[1] if old else 0) + free)
    names = sorted(providers)
    t = Table(title="live on-demand offerings: cheapest $/GPU-hour and free GPUs, per provider")
    t.add_column("GPU")
    for n in names:
        t.add_column(n, justify="right")
    for gpu in sorted({g for g, _ in best}):
        t.add_row(gpu, *[f"{best[(gpu, n)][0]:.2f} / {best[(gpu, n)][1]:,}" if (gpu, n) in best else "-"
                         for n in names])
    console.print(t)
    for name, e in s.errors.items():
        console.print(f"[yellow]warning:[/] {name}: {e}", highlight=False)


def _progress(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="workloads (through the API)")
    for col in ("workload", "team", "state", "where", "message"):
        t.add_column(col, overflow="fold")
    for w in sorted(rows, key=lambda w: w["name"]):
        where = ", ".join(sorted({f"{a['provider']}/{a['zone']}" for a in w.get("assignments") or []}))
        style = {"Running": "green", "Failed": "red", "Pending": "yellow"}.get(w["state"], "cyan")
        t.add_row(w["name"], w["team"], f"[{style}]{w['state']}[/]", where, (w.get("message") or "")[:90])
    return t


def demo(
    examples: Annotated[Path, typer.Option(help="directory of GPUWorkload manifests")] = Path("examples"),
    policies: Annotated[Path, typer.Option(help="directory of policy files")] = Path("policies"),
    port: Annotated[int, typer.Option(help="API port (a free one is picked if taken)")] = 8080,
    db: Annotated[str, typer.Option(help="database URL (the demo starts it afresh)")] = "sqlite:///.awan/demo.db",
    timeout: Annotated[float, typer.Option(help="seconds to wait for workloads to settle")] = 180.0,
    exit_when_settled: Annotated[bool, typer.Option(help="stop once every workload settled")] = False,
) -> None:
    """Run Awan end to end on embedded mock clouds: offerings, plan, service, submit, progress, dashboard."""
    import httpx
    import uvicorn

    from controlplane.api import create_app
    from controlplane.auth import create_token
    from controlplane.cli.plan_cmds import _table, read_workloads, snapshot_from_providers
    from controlplane.logs import configure_logging, redact
    from controlplane.model import ManifestError
    from controlplane.placement import place
    from controlplane.policy import PolicyError, load_policies
    from controlplane.settings import Settings
    from controlplane.store import Database, upgrade
    from mockclouds.launcher import MOCK_SECRETS, MockClouds
    from providers.registry import build_providers

    files = sorted(examples.glob("*.yaml")) + sorted(examples.glob("*.json"))
    policy_files = sorted(str(p) for p in policies.glob("*.yaml"))
    if not files:
        fail(f"{examples}: no manifests (*.yaml, *.json)")
    try:
        workloads = read_workloads(files)
        ps = load_policies([Path(p) for p in policy_files]) if policy_files else None
    except (ManifestError, PolicyError) as e:
        fail(str(e))
    configure_logging("WARNING", json_output=False)
    redact(v for creds in MOCK_SECRETS.values() for v in creds.values())

    console.rule("1. mock clouds")
    mocks = MockClouds().start()
    for name, url in mocks.urls.items():
        console.print(f"  {name:<10} {url}  (fault API: POST {url}/_mock/faults)")
    cfg = mocks.config()
    providers = build_providers(cfg)
    try:
        _offerings_summary(providers)

        console.rule("2. plan (dry run against live mock capacity)")
        from controlplane.policy import PolicySet

        result = place(workloads, snapshot_from_providers(providers), ps or PolicySet.default())
        _table(result)

        console.rule("3. service: submit, place, provision")
        if db.startswith("sqlite:///"):
            path = Path(db.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        database = Database.from_url(db)
        upgrade(database.engine)
        teams = sorted({w.team for w in workloads})
        with database.session() as s:
            admin, _ = create_token(s, "ops", "cluster-admin")
            tokens = {t: create_token(s, t, "member")[0] for t in teams}
        redact([admin, *tokens.values()])
        port = _port(port)
        settings = Settings(db_url=db, port=port, policies=policy_files, reconcile_interval_s=1.0)
        app = create_app(settings, db=database, providers=providers, config=cfg)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                fail(f"the service did not start on 127.0.0.1:{port}")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        by_team: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for w in workloads:
            by_team[w.team].append(w.to_manifest())
        with httpx.Client(base_url=url, timeout=30) as c:
            for team, docs in sorted(by_team.items()):
                r = c.post("/v1/workloads", content=yaml.safe_dump_all(docs, sort_keys=False),
                           headers={"Authorization": f"Bearer {tokens[team]}", "Content-Type": "application/yaml"})
                if r.status_code >= 400:
                    fail(f"submit as team {team}: {r.status_code} {r.text}")
                console.print(f"submitted {len(docs)} workload(s) as team {team}")
            deadline = time.monotonic() + timeout
            rows: list[dict[str, Any]] = []
            with Live(_progress(rows), console=console, refresh_per_second=4, transient=False) as live:
                while time.monotonic() < deadline:
                    rows = c.get("/v1/workloads", headers={"Authorization": f"Bearer {admin}"}).json()["items"]
                    live.update(_progress(rows))
                    unplaced = [w for w in rows if w["state"] == "Pending" and w.get("message")]
                    if rows and all(w["state"] in SETTLED or w in unplaced for w in rows):
                        break
                    time.sleep(0.5)
            if not console.is_terminal:   # Live leaves its last frame without a line end when piped
                console.print()
        console.rule("4. Awan is serving")
        console.print(f"API       {url}/docs   (token for team X: `awan token create --team X --db {db}`)")
        console.print(f"dashboard {url}/dashboard?token={admin}")
        console.print(f"metrics   {url}/metrics")
        console.print(f"CLI       AWAN_URL={url} AWAN_TOKEN={tokens[teams[0]]} awan get workloads")
        if exit_when_settled:
            server.should_exit = True
            thread.join(timeout=60)
            return
        console.print("Ctrl-C stops the service and the mock clouds.")
        try:
            while thread.is_alive():
                thread.join(timeout=1)
        except KeyboardInterrupt:
            server.should_exit = True
            thread.join(timeout=60)
    finally:
        for p in providers.values():
            p.close()
        mocks.stop()


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
