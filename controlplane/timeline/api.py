"""/v1/commitments: each contract burned down over its term (burndown.py), and the same figures as
Prometheus gauges at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from controlplane.api import schemas
from controlplane.api.context import ServiceContext, ctx
from controlplane.api.security import principal
from controlplane.auth.tokens import Principal
from controlplane.policy.model import Commitment
from controlplane.store.coltypes import utcnow
from controlplane.timeline.burndown import BurnDown, burndown
from controlplane.timeline.usage import history

router = APIRouter(prefix="/v1", tags=["fleet"])
_ERR: dict[int | str, dict[str, Any]] = {c: {"model": schemas.ErrorBody} for c in (401, 403, 404, 422)}


def burn_downs(c: ServiceContext, points: int = 0, name: str | None = None) -> list[BurnDown]:
    commitments: tuple[Commitment, ...] = c.policies.current().commitments
    if name is not None:
        commitments = tuple(cm for cm in commitments if cm.name == name)
    now = utcnow()
    with c.db.session() as s:
        hist = {(cm.provider, cm.gpu_model): history(s, cm.provider, cm.gpu_model) for cm in commitments}
    return [burndown(cm, hist[(cm.provider, cm.gpu_model)], now, points) for cm in commitments]


@router.get("/commitments", responses=_ERR)
def list_commitments(p: Principal = Depends(principal), c: ServiceContext = Depends(ctx)) -> dict[str, Any]:
    """Every contract in the policies: used against committed to date, forecast, take-or-pay shortfall."""
    return {"items": [b.to_json() for b in burn_downs(c)]}


@router.get("/commitments/{name}", responses=_ERR)
def get_commitment(name: str, points: int = Query(50, ge=2, le=1000), p: Principal = Depends(principal),
                   c: ServiceContext = Depends(ctx)) -> dict[str, Any]:
    """One contract with ``points`` points over its whole term (actual to now, then the forecast)."""
    got = burn_downs(c, points, name)
    if not got:
        raise HTTPException(404, f"commitment {name!r}: no such contract in the policies")
    return got[0].to_json()


class CommitmentCollector(Collector):
    """awan_commitment_* gauges, computed from the store's usage history at scrape time."""

    def __init__(self, c: ServiceContext) -> None:
        self.c = c

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["contract", "provider", "gpu_model"]
        fams = {
            "used_gpu_hours": GaugeMetricFamily("awan_commitment_used_gpu_hours",
                                                "GPU-hours of the contract used since its start", labels=labels),
            "committed_gpu_hours_to_date": GaugeMetricFamily(
                "awan_commitment_committed_gpu_hours_to_date", "GPU-hours committed from the start until now",
                labels=labels),
            "forecast_gpu_hours": GaugeMetricFamily(
                "awan_commitment_forecast_gpu_hours", "GPU-hours used by the end of the term at the recent rate",
                labels=labels),
            "used_dollars": GaugeMetricFamily("awan_commitment_used_dollars",
                                              "Dollars of the contract used since its start", labels=labels),
            "shortfall_dollars": GaugeMetricFamily(
                "awan_commitment_shortfall_dollars", "Take-or-pay dollars the forecast leaves unused at the end",
                labels=labels),
        }
        try:
            bds = burn_downs(self.c)
        except Exception:  # scrape must not fail because the DB or the policies blinked
            bds = []
        for b in bds:
            lab = [b.name, b.provider, b.gpu_model]
            fams["used_gpu_hours"].add_metric(lab, round(b.used_gpu_hours, 3))
            if b.committed_gpu_hours_to_date is not None:
                fams["committed_gpu_hours_to_date"].add_metric(lab, round(b.committed_gpu_hours_to_date, 3))
            fams["forecast_gpu_hours"].add_metric(lab, round(b.forecast_gpu_hours, 3))
            fams["used_dollars"].add_metric(lab, round(b.used_dollars, 2))
            fams["shortfall_dollars"].add_metric(lab, round(b.shortfall_dollars, 2))
        yield from fams.values()
