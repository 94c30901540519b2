"""`awan serve` and `awan db upgrade`: the service and its store. Every option also has an ``AWAN_*``
variable (docs/settings.md lists them all)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from controlplane.cli.output import fail

if TYPE_CHECKING:
    from controlplane.api.context import LoopFactory, ServiceContext, ServiceLoop
    from controlplane.settings import Settings

db_app = typer.Typer(help="The store: migrations.", no_args_is_help=True)


def serve(
    host: Annotated[str | None, typer.Option(
        "--host", help="bind address [env var: AWAN_HOST; default 127.0.0.1]. Use 0.0.0.0 in a container or "
        "behind a load balancer; then serve TLS (--tls-cert/--tls-key) or terminate it at an ingress")] = None,
    port: Annotated[int | None, typer.Option("--port", help="port [env var: AWAN_PORT; default 8080]")] = None,
    db: Annotated[str | None, typer.Option(
        "--db", help="database URL [env var: AWAN_DB_URL; default sqlite:///.awan/awan.db]; PostgreSQL for "
        "several replicas")] = None,
    config: Annotated[str | None, typer.Option(
        "--config", "-c", help="awan.yaml with the clouds [env var: AWAN_CONFIG; default ./awan.yaml]")] = None,
    tls_cert: Annotated[str | None, typer.Option("--tls-cert", help="PEM certificate [env var: AWAN_TLS_CERT_FILE]")]
    = None,
    tls_key: Annotated[str | None, typer.Option("--tls-key", help="PEM private key [env var: AWAN_TLS_KEY_FILE]")]
    = None,
    log_format: Annotated[str | None, typer.Option("--log-format", help="json or console "
                                                   "[env var: AWAN_LOG_FORMAT; default json]")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", help="API worker processes sharing the port [env var: AWAN_API_WORKERS; default 1]; the "
        "reconcile loop stays one process")] = None,
    mock: Annotated[bool, typer.Option("--mock", help="no awan.yaml: serve against embedded mock clouds "
                                       "(local trials only)")] = False,
) -> None:
    """Run the API, the dashboard and (as leader) the reconcile loop until SIGTERM/Ctrl-C.

    \b
    The loop runs in a child process of its own (AWAN_CONTROLLER_PROCESS=inline: in this one).
    --workers N: N API processes share the port, the loop is still one process.

    \b
    Examples:
      awan serve                                   # loopback, SQLite, the clouds in ./awan.yaml
      awan serve --config awan.yaml --db postgresql+psycopg://awan@db:5432/awan
      awan serve --host 0.0.0.0 --tls-cert tls.crt --tls-key tls.key
      AWAN_LOG_FORMAT=console awan serve
      awan serve --workers 2 --db postgresql+psycopg://awan@db:5432/awan
    """
    import uvicorn
    from pydantic import ValidationError

    from controlplane.logs import configure_logging, get_logger
    from controlplane.settings import Settings

    given: dict[str, Any] = {"host": host, "port": port, "db_url": db, "config": config, "tls_cert_file": tls_cert,
                             "tls_key_file": tls_key, "log_format": log_format, "api_workers": workers}
    try:
        settings = Settings(**{k: v for k, v in given.items() if v is not None})
        configure_logging(settings.log_level, fmt=settings.log_format, sdk_http=settings.log_sdk_http)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(map(str, err["loc"]))
        fail(f"serve: {where} (AWAN_{where.upper()}): {err['msg']}")
    except ValueError as e:
        fail(f"serve: {e}")
    if bool(settings.tls_cert_file) != bool(settings.tls_key_file):
        fail("serve: --tls-cert and --tls-key go together")
    if settings.api_workers > 1 and settings.reconcile and settings.controller_process != "process":
        fail("serve: --workers (AWAN_API_WORKERS) above 1 needs the loop in its own process: unset "
             "AWAN_CONTROLLER_PROCESS=inline (inline, every worker would run a loop)")
    if settings.runner_processes and not settings.db_url.startswith("postgresql"):
        fail("serve: runner processes (AWAN_RUNNER_PROCESSES) need PostgreSQL (shared stack runs); set it to 0 "
             "or unset it on SQLite")
    log = get_logger("awan.serve")
    from controlplane.api import create_app
    from controlplane.cli.clouds import require_clouds
    from controlplane.environment import open_environment

    clouds = require_clouds(settings.config, mock)

    from controlplane.reconcile import wake

    scheme = "https" if settings.tls_cert_file else "http"
    try:
        with wake.service_address(settings.wake_socket, loop=settings.reconcile) as wake_at, \
                open_environment(clouds) as env:
            settings = settings.model_copy(update={"wake_socket": wake_at})
            log.info("clouds", source=env.note)
            base = f"{scheme}://{settings.host}:{settings.port}"
            if settings.api_workers > 1:
                from controlplane.api.workers import Supervisor

                log.info("serving", api=f"{base}/docs", dashboard=f"{base}/dashboard", metrics=f"{base}/metrics",
                         workers=settings.api_workers)
                Supervisor(settings, env.config, settings.api_workers).run()
                log.info("stopped")
                return
            application = create_app(settings, providers=env.providers, config=env.config,
                                     controller_factory=loop_factory(settings))
            log.info("serving", api=f"{base}/docs", dashboard=f"{base}/dashboard", metrics=f"{base}/metrics")
            from controlplane.api.workers import uvicorn_options

            # uvicorn turns SIGTERM into a graceful shutdown; the app's lifespan stops the loop.
            uvicorn.run(application, host=settings.host, port=settings.port, **uvicorn_options(settings))
            log.info("stopped")
    except ImportError as e:   # an adapter missing from this build
        fail(f"serve: cannot load a provider adapter: {e}")
    except (ValueError, OSError) as e:
        fail(f"serve: {e}")


def loop_factory(settings: Settings) -> LoopFactory | None:
    """The reconcile loop in a process of its own (controlplane/reconcile/child.py says why), at
    ``AWAN_BACKGROUND_NICE`` below the API (controlplane/priority.py), unless
    ``AWAN_CONTROLLER_PROCESS=inline``; None: create_app's own choice (in process, or none)."""
    if not settings.reconcile or settings.controller_process != "process":
        return None
    from controlplane.reconcile.runner import service_loop

    def build(c: ServiceContext) -> ServiceLoop:
        loop = service_loop(c.settings, c.config)
        c.metrics_sources.append(loop.exposition)    # with runners: theirs merged in (WithRunners.exposition)
        return loop

    return build


@db_app.command("upgrade")
def db_upgrade(db: Annotated[str | None, typer.Option("--db", envvar="AWAN_DB_URL", show_envvar=True,
                                                      help="database URL")] = None) -> None:
    """Create the database if needed and apply the schema migrations.

    \b
    Examples:
      awan db upgrade --db sqlite:///.awan/awan.db
      AWAN_DB_URL=postgresql+psycopg://awan@db:5432/awan awan db upgrade
    """
    from controlplane.settings import Settings
    from controlplane.store import make_engine, upgrade
    from controlplane.store.migrate import current

    url = db or Settings().db_url
    try:
        eng = make_engine(url)
        upgrade(eng)
        sys.stdout.write(f"database at revision {current(eng)}\n")
    except Exception as e:
        fail(f"db upgrade: {type(e).__name__}: {e}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(db_app, name="db")
