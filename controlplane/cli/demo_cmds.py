"""`awan demo` (what `make run` runs): the whole flow on one laptop, against embedded mock clouds.

It serves first and works after: within seconds the API, the dashboard and a client context are ready
(so `awan get workloads` works in another terminal without any export), then the examples are submitted
through the API as their teams and their progress is shown as the reconcile loop places and provisions
them. Every step says what it does, with a spinner while it runs and its duration when done; Ctrl-C (or
SIGTERM) stops the service and the mock clouds and says so.

URLs and tokens are written as plain lines, never wrapped, so they can be copied from any terminal.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from controlplane.cli.output import console, fail

SETTLED = {"Running", "Failed", "Deleted"}
CONTEXT = "demo"


def _port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return int(s.getsockname()[1])
        except OSError:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])


@contextmanager
def step(what: str) -> Iterator[None]:
    """A spinner while ``what`` runs, then one line with its duration (a plain line when piped)."""
    t0 = time.monotonic()
    with console.status(f"{what}...", spinner="dots"):
        yield
    console.print(f"[green]✓[/] {what} [dim]({time.monotonic() - t0:.1f} s)[/]", highlight=False)


def plain(line: str) -> None:
    """A line no console may wrap or style: URLs and tokens must copy whole."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _progress(rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    t = Table(title="workloads (through the API)", expand=False)
    t.add_column("workload", no_wrap=True)
    t.add_column("team", no_wrap=True)
    t.add_column("state", no_wrap=True)
    t.add_column("where", overflow="fold")
    t.add_column("message", overflow="fold", max_width=60)
    for w in sorted(rows, key=lambda w: w["name"]):
        where = ", ".join(sorted({f"{a['provider']}/{a['region']}" for a in w.get("assignments") or []}))
        style = {"Running": "green", "Failed": "red", "Pending": "yellow"}.get(w["state"], "cyan")
        t.add_row(w["name"], w["team"], f"[{style}]{w['state']}[/]", where, (w.get("message") or "")[:120])
    return t


def _write_context(url: str, token: str) -> Path:
    from controlplane.cli.client import ClientConfig

    cfg = ClientConfig.load()
    cfg.contexts[CONTEXT] = {"server": url, "token": token}
    cfg.current = CONTEXT
    return cfg.save()


def _stop_on_sigterm(stop: Callable[[], None]) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop())


def demo(
    examples: Annotated[Path, typer.Option(help="directory of GPUWorkload manifests")] = Path("examples"),
    policies: Annotated[Path, typer.Option(help="directory of policy files")] = Path("policies"),
    port: Annotated[int, typer.Option(help="API port (a free one is picked if taken)")] = 8080,
    db: Annotated[str, typer.Option(help="database URL (the demo starts it afresh)")] = "sqlite:///.awan/demo.db",
    timeout: Annotated[float, typer.Option(help="seconds to show progress before just serving")] = 300.0,
    exit_when_settled: Annotated[bool, typer.Option(help="stop once every workload settled")] = False,
    write_context: Annotated[bool, typer.Option(help="write the 'demo' context to the client config")] = True,
) -> None:
    """Run Awan end to end on embedded mock clouds (what `make run` runs).

    \b
    Examples:
      make run
      awan demo --port 9090
      awan demo --exit-when-settled --no-write-context     # scripts and CI
    """
    files = sorted(examples.glob("*.yaml")) + sorted(examples.glob("*.json"))
    if not files:
        fail(f"{examples}: no manifests (*.yaml, *.json)")
    with step("reading the example workloads and policies"):
        from controlplane.cli.plan_cmds import read_workloads
        from controlplane.logs import configure_logging, redact
        from controlplane.model import ManifestError
        from controlplane.policy import PolicyError, load_policies

        policy_files = sorted(str(p) for p in policies.glob("*.yaml"))
        try:
            workloads = read_workloads(files)
            if policy_files:
                load_policies([Path(p) for p in policy_files])   # a bad policy fails here, not in the loop
        except (ManifestError, PolicyError) as e:
            fail(str(e))
        configure_logging("WARNING", fmt="console")

    console.rule("1. mock clouds", style="dim")
    with step("starting AWS, GCE + TPU, Azure and CoreWeave mocks on loopback"):
        from mockclouds.launcher import MOCK_SECRETS, MockClouds

        redact(v for creds in MOCK_SECRETS.values() for v in creds.values())
        mocks = MockClouds().start()
    for name, url in mocks.urls.items():
        plain(f"  {name:<10} {url}   fault API: POST {url}/_mock/faults")
    server = thread = None
    providers: dict[str, Any] = {}
    stopping = threading.Event()
    try:
        with step("connecting the four adapters (official SDKs)"):
            from providers.registry import build_providers

            cfg = mocks.config()
            providers = build_providers(cfg)

        console.rule("2. service", style="dim")
        with step(f"creating {db} and a token per team"):
            import uvicorn

            from controlplane.api import create_app
            from controlplane.auth import create_token
            from controlplane.settings import Settings
            from controlplane.store import Database, upgrade

            if db.startswith("sqlite:///"):
                path = Path(db.removeprefix("sqlite:///"))
                path.parent.mkdir(parents=True, exist_ok=True)
                for suffix in ("", "-wal", "-shm"):
                    Path(str(path) + suffix).unlink(missing_ok=True)
            database = Database.from_url(db)
            upgrade(database.engine)
            teams = sorted({w.team for w in workloads})
            with database.session() as s:
                admin, _ = create_token(s, "ops", "cluster-admin", "awan demo")
                tokens = {t: create_token(s, t, "member", "awan demo")[0] for t in teams}
            redact([admin, *tokens.values()])
        with step("starting the API, the dashboard and the reconcile loop"):
            port = _port(port)
            settings = Settings(db_url=db, port=port, policies=policy_files, reconcile_interval_s=1.0)
            app = create_app(settings, db=database, providers=providers, config=cfg, migrate=False)
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                                   access_log=False))
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            while not server.started:
                if not thread.is_alive():
                    fail(f"the service did not start on 127.0.0.1:{port}")
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        where = _write_context(url, admin) if write_context else None

        console.rule("3. Awan is serving", style="dim")
        plain(f"API        {url}/docs")
        plain(f"dashboard  {url}/dashboard?token={admin}")
        plain(f"metrics    {url}/metrics")
        if where:
            plain(f"CLI        context '{CONTEXT}' written to {where}: in another terminal, "
                  ".venv/bin/awan get workloads")
        else:
            plain(f"CLI        AWAN_URL={url} AWAN_TOKEN={admin} .venv/bin/awan get workloads")
        plain(f"tokens     cluster-admin (team ops): {admin}")
        for t in teams:
            plain(f"           team {t}: {tokens[t]}")

        console.rule("4. the examples, submitted as their teams", style="dim")
        _stop_on_sigterm(stopping.set)
        _submit_and_follow(url, workloads, tokens, admin, timeout, stopping)
        if exit_when_settled:
            return
        console.print("Serving until Ctrl-C. The dashboard and the CLI work as long as this runs.", highlight=False)
        while thread.is_alive() and not stopping.is_set():
            stopping.wait(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        console.rule("stopping", style="dim")
        if server is not None and thread is not None:
            with step("stopping the service (running stack operations finish first)"):
                server.should_exit = True
                thread.join(timeout=60)
        with step("stopping the mock clouds (their machines go with them)"):
            for p in providers.values():
                p.close()
            mocks.stop()
        plain(f"stopped. The database stays at {db}; `make run` starts afresh.")


def _submit_and_follow(url: str, workloads: list[Any], tokens: dict[str, str], admin: str, timeout: float,
                       stopping: threading.Event) -> None:
    import httpx
    import yaml
    from rich.live import Live

    by_team: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for w in workloads:
        by_team[w.team].append(w.to_manifest())
    with httpx.Client(base_url=url, timeout=30) as c:
        for team, docs in sorted(by_team.items()):
            r = c.post("/v1/workloads", content=yaml.safe_dump_all(docs, sort_keys=False),
                       headers={"Authorization": f"Bearer {tokens[team]}", "Content-Type": "application/yaml"})
            if r.status_code >= 400:
                fail(f"submit as team {team}: {r.status_code} {r.text}")
            console.print(f"submitted {len(docs)} workload(s) as team {team}: "
                          + ", ".join(d["metadata"]["name"] for d in docs), highlight=False)
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        t0 = time.monotonic()
        with Live(_progress(rows), console=console.real(), refresh_per_second=4, transient=False) as live:
            while time.monotonic() < deadline and not stopping.is_set():
                rows = c.get("/v1/workloads", headers={"Authorization": f"Bearer {admin}"}).json()["items"]
                live.update(_progress(rows))
                unplaced = [w for w in rows if w["state"] == "Pending" and w.get("message")]
                if rows and all(w["state"] in SETTLED or w in unplaced for w in rows):
                    break
                time.sleep(0.5)
        if not console.is_terminal:   # Live leaves its last frame without a line end when piped
            console.print()
        states: dict[str, int] = defaultdict(int)
        for w in rows:
            states[w["state"]] += 1
        console.print(f"settled in {time.monotonic() - t0:.0f} s: "
                      + ", ".join(f"{n} {s}" for s, n in sorted(states.items())), highlight=False)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
