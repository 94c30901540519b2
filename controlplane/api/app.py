"""The FastAPI app factory. ``create_app(settings)`` migrates the store, builds the providers and, when
``settings.reconcile``, a reconcile loop that acts only while this replica holds the leader lease."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError

from controlplane import __version__
from controlplane.api import gcguard, gilshare
from controlplane.api.context import LoopFactory, ServiceContext
from controlplane.api.headers import SecurityHeaders
from controlplane.api.limits import BodyLimit
from controlplane.api.observability import AccessLog, HttpMetrics
from controlplane.api.routers import (
    admin,
    dashboard,
    docs,
    fleet,
    health,
    purchases,
    queues,
    runs,
    spend,
    tokens,
    workloads,
)
from controlplane.api.security import new_cache
from controlplane.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError, TooLarge, Unavailable
from controlplane.logs import get_logger
from controlplane.reconcile.metrics import LoopMetrics
from controlplane.reconcile.policy_source import PolicySource
from controlplane.settings import Settings
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from controlplane.timeline import api as commitments_api
from providers.base import Provider

if TYPE_CHECKING:
    from providers.config import AwanConfig

log = get_logger("awan.api")
DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard" / "static"
SWAGGER_UI = Path(__file__).resolve().parent / "static" / "swagger-ui"


def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    """One line naming the field, like every other error of the API."""
    err = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path"))
    return JSONResponse({"detail": f"{loc or 'request'}: {err.get('msg')}"}, status_code=422)


def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
    return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


# The one place a service error becomes an HTTP status (controlplane.errors says why they are not
# HTTPExceptions). Most specific first: a subclass of one of these maps as its base does.
STATUS: tuple[tuple[type[ServiceError], int], ...] = (
    (Invalid, 422), (NotFound, 404), (Conflict, 409), (Forbidden, 403), (TooLarge, 413), (Unavailable, 503))


def status_of(exc: ServiceError) -> int:
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return 400          # a refusal of a kind the edge does not know yet: still the client's error


def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))


def _too_deep(_: Request, exc: RecursionError) -> JSONResponse:
    """The YAML/JSON parsers recurse per nesting level: a hostile body nested thousands deep is the
    client's error (one line, 422), not a 500 with a traceback in the log."""
    return JSONResponse({"detail": "body: nested too deeply"}, status_code=422)


def _store_busy(_: Request, exc: OperationalError) -> JSONResponse:
    """SQLite's database-wide write lock held past the busy timeout (several API workers, the controller
    process and a burst of submits all write): the request did nothing, the client may retry. Any other
    operational error of the store is the server's (500, logged)."""
    if "database is locked" not in str(exc.orig):
        raise exc
    return JSONResponse({"detail": "store: busy (the database's write lock); retry"}, status_code=503,
                        headers={"Retry-After": "1"})


def create_app(settings: Settings | None = None, *, db: Database | None = None,
               providers: Mapping[str, Provider] | None = None, config: AwanConfig | None = None,
               controller_factory: LoopFactory | None = None,
               migrate: bool = True) -> FastAPI:
    """``providers`` None: built from ``settings.config`` at startup. ``controller_factory(ctx)`` returns a
    started-able Controller (default: the real one when ``settings.reconcile``)."""
    settings = settings or Settings()
    db = db or Database.from_url(settings.db_url, pool_size=settings.db_pool_size,
                                 max_overflow=settings.db_max_overflow, pool_timeout=settings.db_pool_timeout_s)
    if migrate:
        upgrade(db.engine)
    metrics = LoopMetrics()
    ctx = ServiceContext(settings=settings, db=db, providers=dict(providers or {}),
                         policies=PolicySource(db, settings.policies), metrics=metrics,
                         config=config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from controlplane.api.routers.health import StoreCollector
        from controlplane.timeline.api import CommitmentCollector

        ctx.scrape.register(StoreCollector(ctx))
        ctx.scrape.register(CommitmentCollector(ctx))
        ctx.scrape.register(queues.QueueCollector(ctx))
        ctx.scrape.register(purchases.PurchaseCollector(ctx))
        if providers is None and settings.config:
            from controlplane.environment import register_secrets
            from providers.config import load_config
            from providers.registry import build_providers

            ctx.config = load_config(settings.config)
            register_secrets(ctx.config)
            ctx.providers = build_providers(ctx.config)
            ctx.closers += list(ctx.providers.values())
        factory = controller_factory
        if factory is None and settings.reconcile:
            from controlplane.reconcile.runtime import build_controller

            factory = build_controller
        if factory is not None:
            ctx.controller = factory(ctx)
            ctx.controller.start()
        from controlplane.api.parsepool import ParsePool

        parsing = ctx.parsing = ParsePool(settings.submit_parse_processes, settings.background_nice)
        gcguard.freeze_startup()
        shares = gilshare.apply(settings.db_pool_size + settings.db_max_overflow)
        try:
            yield
        finally:
            gilshare.restore(shares)
            parsing.close()
            gcguard.unfreeze()
            if ctx.controller is not None:
                # Stop taking work; running stack runs get the grace period; the lease is released.
                ctx.controller.stop(grace_s=settings.shutdown_grace_s)
            for p in ctx.closers:
                p.close()

    app = FastAPI(title="Awan", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Places GPU workloads across clouds by policy and provisions them through Pulumi.")
    app.state.ctx = ctx
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(AccessLog, metrics=HttpMetrics(metrics.registry))
    app.state.token_cache = new_cache()
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(ServiceError, _service_error)  # type: ignore[arg-type]
    app.add_exception_handler(RecursionError, _too_deep)  # type: ignore[arg-type]
    app.add_exception_handler(OperationalError, _store_busy)  # type: ignore[arg-type]
    for r in (workloads.router, fleet.router, spend.router, admin.router, tokens.router, health.router,
              dashboard.router, docs.router, commitments_api.router, runs.router, queues.router, purchases.router):
        app.include_router(r)
    app.mount("/dashboard/static", StaticFiles(directory=DASHBOARD), name="dashboard-static")
    app.mount("/static/swagger-ui", StaticFiles(directory=SWAGGER_UI), name="swagger-ui")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard")

    return app
