"""`awan serve`, `awan db upgrade`, `awan token create`, and the API client commands (`submit`, `get
workloads`, `describe workload`, `delete workload`). The client reads AWAN_URL/AWAN_TOKEN or
~/.config/awan/client.yaml; every failure is one line and a non-zero exit."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.table import Table

from controlplane.cli.output import OutputFormat, console, fail, print_json

CLIENT_CONFIG = Path("~/.config/awan/client.yaml")


def _client() -> Any:
    import httpx

    cfg: dict[str, Any] = {}
    path = CLIENT_CONFIG.expanduser()
    if path.exists():
        try:
            cfg = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            fail(f"{path}: not valid YAML: {e}")
    url = os.environ.get("AWAN_URL") or cfg.get("url") or "http://127.0.0.1:8080"
    token = os.environ.get("AWAN_TOKEN") or cfg.get("token")
    if not token:
        fail(f"no API token: set AWAN_TOKEN or 'token:' in {path}")
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _call(method: str, path: str, **kw: Any) -> Any:
    import httpx

    try:
        with _client() as c:
            r = c.request(method, path, **kw)
    except httpx.HTTPError as e:
        fail(f"cannot reach the Awan API: {e}")
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail", r.text)
        except ValueError:
            detail = r.text
        fail(f"{r.status_code}: {detail}")
    return r.json()


def _where(w: dict[str, Any]) -> str:
    return ", ".join(f"{a['provider']}/{a['region']} {a['instanceType']}x{a['nodes']}" for a in w["assignments"])


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(help="The store: migrations.", no_args_is_help=True)
    token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
    get_app = typer.Typer(help="List things through the API.", no_args_is_help=True)
    describe_app = typer.Typer(help="Show one thing in detail.", no_args_is_help=True)
    delete_app = typer.Typer(help="Delete things through the API.", no_args_is_help=True)
    app.add_typer(db_app, name="db")
    app.add_typer(token_app, name="token")
    app.add_typer(get_app, name="get")
    app.add_typer(describe_app, name="describe")
    app.add_typer(delete_app, name="delete")

    @app.command()
    def serve(host: str = typer.Option(None, help="Bind address (default 127.0.0.1)"),
              port: int = typer.Option(None, help="Port (default 8080)"),
              db: str = typer.Option(None, "--db", help="Database URL (default sqlite:///.awan/awan.db)"),
              config: str = typer.Option(None, "--config", help="awan.yaml; none = embedded mock clouds")) -> None:
        """Run the API, the dashboard and (as leader) the reconcile loop until SIGTERM/Ctrl-C."""
        import uvicorn

        from controlplane.api import create_app
        from controlplane.environment import open_environment
        from controlplane.logs import configure_logging
        from controlplane.settings import Settings

        given: dict[str, Any] = {"host": host, "port": port, "db_url": db, "config": config}
        over = {k: v for k, v in given.items() if v is not None}
        settings = Settings(**over)
        configure_logging(settings.log_level)
        try:
            with open_environment(settings.config) as env:
                console.print(f"[dim]{env.note}[/]")
                application = create_app(settings, providers=env.providers, config=env.config)
                console.print(f"API http://{settings.host}:{settings.port}/docs · dashboard "
                              f"http://{settings.host}:{settings.port}/dashboard")
                # uvicorn turns SIGTERM into a graceful shutdown; the app's lifespan stops the loop.
                uvicorn.run(application, host=settings.host, port=settings.port, log_level="warning")
        except ImportError as e:   # an adapter missing from this build
            fail(f"serve: cannot load a provider adapter: {e}")
        except (ValueError, OSError) as e:
            fail(f"serve: {e}")

    @db_app.command("upgrade")
    def db_upgrade(db: str = typer.Option(None, "--db", help="Database URL")) -> None:
        """Apply the schema migrations."""
        from controlplane.settings import Settings
        from controlplane.store import make_engine, upgrade
        from controlplane.store.migrate import current

        url = db or Settings().db_url
        try:
            eng = make_engine(url)
            upgrade(eng)
            console.print(f"database at revision {current(eng)}")
        except Exception as e:
            fail(f"db upgrade: {type(e).__name__}: {e}")

    @token_app.command("create")
    def token_create(team: str = typer.Option(..., "--team"), role: str = typer.Option("member", "--role"),
                     db: str = typer.Option(None, "--db", help="Database URL")) -> None:
        """Create a token for TEAM with ROLE (admin|member|viewer); it is printed once, never stored."""
        from controlplane.auth import TokenError, create_token
        from controlplane.settings import Settings
        from controlplane.store import Database, upgrade

        d = Database.from_url(db or Settings().db_url)
        try:
            upgrade(d.engine)
            with d.session() as s:
                token, _ = create_token(s, team, role)
        except TokenError as e:
            fail(str(e))
        print(token)

    @app.command()
    def submit(file: Path = typer.Option(..., "-f", "--file", help="Manifest (YAML or JSON), '-' for stdin")) -> None:
        """Submit GPUWorkload manifests."""
        import sys

        try:
            text = sys.stdin.read() if str(file) == "-" else file.read_text()
        except OSError as e:
            fail(f"{file}: {e.strerror}")
        ctype = "application/json" if text.lstrip().startswith(("{", "[")) else "application/yaml"
        res = _call("POST", "/v1/workloads", content=text, headers={"Content-Type": ctype})
        for n in res["created"]:
            console.print(f"workload/{n} submitted")
        for n in res["unchanged"]:
            console.print(f"workload/{n} unchanged")

    @get_app.command("workloads")
    def get_workloads(output: OutputFormat = typer.Option(OutputFormat.table, "-o", "--output")) -> None:
        items = _call("GET", "/v1/workloads")["items"]
        if output == OutputFormat.json:
            print_json(items)
            return
        t = Table("NAME", "TEAM", "STATE", "GPUS", "WHERE", "MESSAGE")
        for w in items:
            t.add_row(w["name"], w["team"], w["state"], str(w["gpus"]), _where(w), w["message"][:60])
        console.print(t)

    team_opt = typer.Option(None, "--team", help="The workload's team (admins: names are unique per team)")

    @describe_app.command("workload")
    def describe_workload(name: str, team: str = team_opt) -> None:
        """Placement, explanation and events of one workload."""
        q = {"params": {"team": team}} if team else {}
        w = _call("GET", f"/v1/workloads/{name}", **q)
        pl = _call("GET", f"/v1/workloads/{name}/placement", **q)
        evs = _call("GET", f"/v1/workloads/{name}/events", **q)["items"]
        console.print(f"[bold]{w['name']}[/]  team={w['team']}  state={w['state']}  gpus={w['gpus']}")
        if w["message"]:
            console.print(f"message: {w['message']}")
        if w["assignments"]:
            t = Table("PROVIDER", "REGION", "ZONE", "TYPE", "NODES", "GPUS", "CAPACITY", "$/H")
            for a in w["assignments"]:
                t.add_row(a["provider"], a["region"], a["zone"], a["instanceType"], str(a["nodes"]),
                          str(a["gpus"]), a["capacityType"], f"{a['pricePerHour']:.2f}")
            console.print(t)
        ex = pl.get("explanation") or {}
        for r in ex.get("reasons", []):
            console.print(f"  why: {r}")
        for k, v in (ex.get("rejections") or {}).items():
            console.print(f"  rejected {k}: {v}")
        t = Table("WHEN", "ACTION", "ACTOR")
        for e in evs:
            t.add_row(e["at"], e["action"], e["actor"])
        console.print(t)

    @delete_app.command("workload")
    def delete_workload(name: str, team: str = team_opt) -> None:
        w = _call("DELETE", f"/v1/workloads/{name}", **({"params": {"team": team}} if team else {}))
        console.print(f"workload/{name} {w['state'].lower()}")
