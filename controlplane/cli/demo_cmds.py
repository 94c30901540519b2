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

SETTLED = {"Running", "Succeeded", "Failed", "Deleted"}
FINISHED = {"Succeeded", "Failed", "Deleted"}
# The Secrets examples/jobs reference (envFrom hf-token, secretKeyRef wandb/api-key). On a real cluster the
# platform team creates them; the demo does, in each cluster a run is placed in, with made-up values.
DEMO_SECRETS = {"hf-token": {"HF_TOKEN": "hf_demo_not_a_real_token"}, "wandb": {"api-key": "demo-not-a-real-key"}}
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
    jobs: Annotated[Path, typer.Option(help="directory of runs (manifests with spec.template): they run, "
                                            "finish and print logs")] = Path("examples/jobs"),
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
    job_files = sorted(jobs.glob("*.yaml")) + sorted(jobs.glob("*.json")) if jobs.is_dir() else []
    with step("reading the example workloads and policies"):
        from controlplane.cli.plan_cmds import read_workloads
        from controlplane.logs import configure_logging, redact
        from controlplane.model import ManifestError
        from controlplane.policy import PolicyError, load_policies

        policy_files = sorted(str(p) for p in policies.glob("*.yaml"))
        try:
            workloads = read_workloads(files + job_files)
            if policy_files:
                load_policies([Path(p) for p in policy_files])   # a bad policy fails here, not in the loop
        except (ManifestError, PolicyError) as e:
            fail(str(e))
        configure_logging("WARNING", fmt="console")

    console.rule("1. mock clouds", style="dim")
    with step("starting AWS, GCE + TPU, Azure, CoreWeave and OCI mocks on loopback"):
        from mockclouds.launcher import MOCK_SECRETS, MockClouds

        redact(v for creds in MOCK_SECRETS.values() for v in creds.values())
        mocks = MockClouds().start()
    for name, url in mocks.urls.items():
        plain(f"  {name:<10} {url}   fault API: POST {url}/_mock/faults")
    server = thread = None
    providers: dict[str, Any] = {}
    stopping = threading.Event()
    try:
        with step("connecting the five adapters (official SDKs)"):
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
        _submit_and_follow(url, files + job_files, tokens, admin, timeout, stopping, cfg)
        runs = [w.name for w in workloads if w.spec.template is not None]
        if runs:
            console.rule("5. the runs: pods on the mock clusters", style="dim")
            _show_runs(url, admin, runs, cfg, timeout, stopping)
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


def _seed_secrets(cfg: Any, rows: list[dict[str, Any]], seeded: set[tuple[str, str]]) -> None:
    """DEMO_SECRETS in the cluster of every region a run is placed in (once per cluster)."""
    from kubernetes import client

    from controlplane.dispatch.kube import KubeCluster

    for w in rows:
        if w.get("capacityOnly"):
            continue
        for a in w.get("assignments") or []:
            where = (a["provider"], a["region"])
            cc = cfg.cluster_for(*where)
            if where in seeded or cc is None:
                continue
            seeded.add(where)
            kc = KubeCluster(cc)
            try:
                core = client.CoreV1Api(kc.api)
                for name, data in DEMO_SECRETS.items():
                    try:
                        core.create_namespaced_secret(cc.namespace, client.V1Secret(
                            metadata=client.V1ObjectMeta(name=name), string_data=data))
                    except client.exceptions.ApiException as e:
                        if e.status != 409:
                            raise
            finally:
                kc.close()


def _submit_and_follow(url: str, files: list[Path], tokens: dict[str, str], admin: str, timeout: float,
                       stopping: threading.Event, cfg: Any) -> None:
    import httpx
    import yaml
    from rich.live import Live

    # The documents as written (already validated above), grouped by team: what a user would submit.
    by_team: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            if isinstance(doc, dict):
                by_team[str((doc.get("metadata") or {}).get("team") or "default")].append(doc)
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
        seeded: set[tuple[str, str]] = set()
        with Live(_progress(rows), console=console.real(), refresh_per_second=4, transient=False) as live:
            while time.monotonic() < deadline and not stopping.is_set():
                rows = c.get("/v1/workloads", headers={"Authorization": f"Bearer {admin}"}).json()["items"]
                _seed_secrets(cfg, rows, seeded)
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


def _show_runs(url: str, admin: str, names: list[str], cfg: Any, timeout: float, stopping: threading.Event) -> None:
    """Follow the runs until each job finished and each inference service is Running (its replicas ready),
    then print what each job printed and where each service answers."""
    import httpx

    def kind(w: dict[str, Any]) -> str:          # the API returns the stored manifest as "spec"
        return str((w["spec"].get("spec") or {}).get("kind") or "")

    auth = {"Authorization": f"Bearer {admin}"}
    want = set(names)
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    seeded: set[tuple[str, str]] = set()
    with httpx.Client(base_url=url, timeout=30, headers=auth) as c:
        with step(f"waiting for {len(want)} run(s): jobs to finish, services to be ready"):
            while time.monotonic() < deadline and not stopping.is_set():
                rows = [w for w in c.get("/v1/workloads", params={"limit": 500}).json()["items"] if w["name"] in want]
                _seed_secrets(cfg, rows, seeded)
                if rows and all(w["state"] in FINISHED or (kind(w) == "inference" and w["state"] == "Running")
                                for w in rows):
                    break
                time.sleep(1.0)
        for w in sorted(rows, key=lambda w: (kind(w) == "inference", w["name"])):
            where = ", ".join(sorted({f"{a['provider']}/{a['region']}" for a in w.get("assignments") or []}))
            extra = f", exit code {w['exitCode']}" if w.get("exitCode") is not None else ""
            console.print(f"[bold]{w['name']}[/] ({kind(w)}, team {w['team']}) on {where or '-'}: "
                          f"{w['state']}{extra}" + (f" ({w['reason']})" if w.get("reason") else ""), highlight=False)
            if kind(w) == "inference":
                _show_service(cfg, w)
                continue
            r = c.get(f"/v1/workloads/{w['name']}/logs", params={"team": w["team"]})
            if r.status_code != 200:
                plain(f"    (no logs: {r.status_code} {r.text[:200]})")
                continue
            for item in r.json()["items"][:2]:
                plain(f"    --- rank {item['rank']}, pod {item['pod']} ({'live' if item['live'] else 'kept'}) ---")
                # The mock kubelet echoes the container's environment first; the rest is what ran.
                lines = item["text"].splitlines()
                shown = [ln for ln in lines if not ln.startswith("[mock-kubelet] env ")]
                for line in shown[-12:]:
                    plain(f"    {line}")
                if len(shown) < len(lines):
                    plain(f"    ({len(lines) - len(shown)} env lines not shown)")
    console.print("awan logs workload NAME [--follow] [--rank K] shows these logs from any terminal.",
                  highlight=False)


def _show_service(cfg: Any, w: dict[str, Any]) -> None:
    """An inference service's readiness, read from its cluster: the Deployment's ready replicas and the
    Service address clients use."""
    from kubernetes import client

    from controlplane.dispatch.kube import KubeCluster
    from controlplane.dispatch.render import L_WORKLOAD

    for a in {(a["provider"], a["region"]) for a in w.get("assignments") or []}:
        cc = cfg.cluster_for(*a)
        if cc is None:
            continue
        kc = KubeCluster(cc)
        try:
            sel = "app.kubernetes.io/managed-by=awan"
            apps, core = client.AppsV1Api(kc.api), client.CoreV1Api(kc.api)
            # as the API's JSON (camelCase dicts), like the rest of the dispatch code reads objects
            as_json = kc.api.sanitize_for_serialization
            deps = as_json(apps.list_namespaced_deployment(cc.namespace, label_selector=sel))["items"]  # type: ignore[no-untyped-call]
            svcs = as_json(core.list_namespaced_service(cc.namespace, label_selector=sel))["items"]  # type: ignore[no-untyped-call]
            for d in deps:
                if w["name"] in (d["metadata"].get("labels") or {}).get(L_WORKLOAD, ""):
                    ready = (d.get("status") or {}).get("readyReplicas", 0)
                    want = int(d["spec"].get("replicas") or 0)
                    passed = " (readiness probe passed)" if want and ready >= want else ""
                    plain(f"    {a[0]}/{a[1]}: Deployment {d['metadata']['name']}: {ready}/{want} replicas ready{passed}")
            for sv in svcs:
                if w["name"] in (sv["metadata"].get("labels") or {}).get(L_WORKLOAD, ""):
                    ports = ", ".join(f"{p.get('port')}->{p.get('targetPort')}" for p in sv["spec"].get("ports") or [])
                    plain(f"    {a[0]}/{a[1]}: Service {sv['metadata']['name']} answers at "
                          f"{sv['spec'].get('clusterIP')} port {ports}")
        finally:
            kc.close()


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
