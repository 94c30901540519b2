"""/healthz (process is up), /readyz (store reachable and migrated), /metrics (Prometheus)."""

from __future__ import annotations

import platform
from collections import defaultdict
from collections.abc import Iterator

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

from controlplane.api import schemas
from controlplane.api.context import ServiceContext, ctx
from controlplane.store import workloads as repo
from controlplane.store.coltypes import utcnow
from controlplane.store.migrate import current

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=schemas.Health)
async def healthz() -> schemas.Health:
    """On the event loop itself (it blocks on nothing): it answers even while every worker thread of the
    pool is busy, which is what a liveness probe should measure."""
    return schemas.Health(status="ok")


@router.get("/readyz", response_model=schemas.Health, responses={503: {"model": schemas.Health}})
def readyz(c: ServiceContext = Depends(ctx)) -> JSONResponse | schemas.Health:
    checks: dict[str, str] = {}
    try:
        with c.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["db"] = "ok"
        checks["schema"] = current(c.db.engine) or "missing"
    except Exception as e:
        checks["db"] = f"{type(e).__name__}"
    leader = c.controller.elector.is_leader if c.controller else None
    ok = checks.get("db") == "ok" and checks.get("schema") not in (None, "missing")
    body = schemas.Health(status="ok" if ok else "unavailable", leader=leader, checks=checks)
    return body if ok else JSONResponse(body.model_dump(), status_code=503)


class StoreCollector(Collector):
    """Gauges computed from the store at scrape time, so every replica reports the same fleet."""

    def __init__(self, c: ServiceContext) -> None:
        self.c = c

    def collect(self) -> Iterator[GaugeMetricFamily | InfoMetricFamily]:
        from controlplane import __version__

        info = InfoMetricFamily("awan_build", "The running build", labels=["version", "python"])
        info.add_metric([__version__, platform.python_version()], {})
        yield info
        leader = GaugeMetricFamily("awan_leader", "1 while this replica holds the reconcile lease, else 0",
                                   labels=["replica"])
        loop = self.c.controller
        leader.add_metric([self.c.settings.replica_id], 1.0 if loop is not None and loop.elector.is_leader else 0.0)
        yield leader
        gpus = GaugeMetricFamily("awan_gpus", "GPUs held by workloads", labels=["provider", "region", "state"])
        by_team = GaugeMetricFamily("awan_workloads", "Workloads by team and state", labels=["team", "state"])
        spend = GaugeMetricFamily("awan_spend_dollars_per_hour", "Marginal $/hour of active workloads",
                                  labels=["team", "provider"])
        burn = GaugeMetricFamily("awan_commitment_remaining_gpus", "Committed GPUs not yet used",
                                 labels=["contract", "provider", "gpu_model"])
        totals: dict[tuple[str, str, str], int] = defaultdict(int)
        teams: dict[tuple[str, str], int] = defaultdict(int)
        dollars: dict[tuple[str, str], float] = defaultdict(float)
        used: dict[tuple[str, str], int] = defaultdict(int)
        try:
            with self.c.db.session() as s:
                for row in repo.list_(s, limit=1_000_000, light=True):
                    teams[(row.team, row.state)] += 1
                    for a in row.assignments:
                        totals[(a.provider, a.region, row.state)] += a.gpus
                        # Held capacity costs whatever runs on it: a finished run's idle nodes too.
                        if row.state in ("Placed", "Provisioning", "Starting", "Running", "Succeeded", "Failed"):
                            used[(a.provider, a.gpu_model)] += a.gpus
                            dollars[(row.team, a.provider)] += a.price_per_hour
        except Exception:  # scrape must not fail because the DB blinked
            return
        for (prov, region, state), n in sorted(totals.items()):
            gpus.add_metric([prov, region, state], n)
        for (team, state), n in sorted(teams.items()):
            by_team.add_metric([team, state], n)
        for (team, prov), d in sorted(dollars.items()):
            spend.add_metric([team, prov], round(d, 4))
        yield gpus
        yield by_team
        yield spend
        try:
            now = utcnow()
            for cm in self.c.policies.current().commitments:
                if cm.gpus is not None and (not cm.start.tzinfo or cm.active(now)):
                    burn.add_metric([cm.name, cm.provider, cm.gpu_model],
                                    max(0, cm.gpus - used.get((cm.provider, cm.gpu_model), 0)))
        except Exception:
            pass
        yield burn


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics(c: ServiceContext = Depends(ctx)) -> Response:
    own = generate_latest(c.metrics.registry) + generate_latest(c.scrape)
    if c.metrics_sources or c.metrics_peers:
        from controlplane.api.metricsmerge import merge

        own = merge(own, [source() for source in c.metrics_sources],
                    [text for peers in c.metrics_peers for text in peers()])
    return Response(own, media_type=CONTENT_TYPE_LATEST)
