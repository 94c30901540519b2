"""/v1/queues: queues, their quota use and borrowing, and who waits in them (position, reason, estimated
start). Anyone signed in sees every queue's totals (teams share the fleet); a team sees only its own
waiting workloads by name, a cluster-admin every team's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from controlplane.api import schemas
from controlplane.api.context import ServiceContext, ctx
from controlplane.api.security import principal
from controlplane.auth.tokens import Principal
from controlplane.queues import QueueConfig, QueueError
from controlplane.reconcile.admitting import QueueSource
from controlplane.reconcile.queue_status import QueueView, status

if TYPE_CHECKING:
    from prometheus_client.core import GaugeMetricFamily

router = APIRouter(prefix="/v1", tags=["queues"])
_ERR: dict[int | str, dict[str, Any]] = {c: {"model": schemas.ErrorBody} for c in (401, 403, 404, 409, 422)}


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class FlavourOut(_Out):
    flavour: str
    nominal: int
    borrowing_limit: int | None = Field(alias="borrowingLimit")
    lending_limit: int | None = Field(alias="lendingLimit")
    used: int
    borrowed: int


class WaitingOut(_Out):
    name: str
    team: str
    gpus: int
    priority: int
    position: int | None
    reason: str
    message: str
    estimated_start: datetime | None = Field(alias="estimatedStart")


class QueueOut(_Out):
    name: str
    cohort: str | None
    weight: float
    teams: list[str]
    flavours: list[FlavourOut]
    admitted: int
    preempting: int
    pending: int
    waiting: list[WaitingOut] | None = None


class QueueList(_Out):
    items: list[QueueOut]


def config_of(c: ServiceContext) -> QueueConfig:
    try:
        return QueueSource(c.policies.document).current()
    except QueueError as e:   # a broken stored document is the admin's to fix; say so, not a 500
        raise HTTPException(409, f"queue policy: {e}") from None


def _out(v: QueueView, p: Principal, with_waiting: bool, limit: int | None = None) -> QueueOut:
    mine = [w for w in v.waiting if p.is_admin or w.team == p.team][:limit]
    return QueueOut(
        name=v.name, cohort=v.cohort, weight=v.weight, teams=list(v.teams), admitted=v.admitted,
        preempting=v.preempting, pending=v.pending,
        flavours=[FlavourOut(flavour=f.flavour, nominal=f.nominal, borrowingLimit=f.borrowing_limit,
                             lendingLimit=f.lending_limit, used=f.used, borrowed=f.borrowed) for f in v.flavours],
        waiting=[WaitingOut(name=w.name, team=w.team, gpus=w.gpus, priority=w.priority, position=w.position,
                            reason=w.reason, message=w.message, estimatedStart=w.estimated_start)
                 for w in mine] if with_waiting else None)


@router.get("/queues", response_model=QueueList, response_model_by_alias=True, responses=_ERR)
async def list_queues(p: Principal = Depends(principal), c: ServiceContext = Depends(ctx),
                      waiting: int = Query(0, ge=0, le=1000, description="also list the first N waiting "
                                           "workloads of each queue (the dashboard's one request)")) -> QueueList:
    views = await run_in_threadpool(status, c.db, config_of(c))
    return QueueList(items=[_out(v, p, waiting > 0, waiting) for v in views])


@router.get("/queues/{name}", response_model=QueueOut, response_model_by_alias=True, responses=_ERR)
async def get_queue(name: str, p: Principal = Depends(principal), c: ServiceContext = Depends(ctx)) -> QueueOut:
    views = await run_in_threadpool(status, c.db, config_of(c))
    for v in views:
        if v.name == name:
            return _out(v, p, True)
    raise HTTPException(404, f"queue {name!r} not found")


class QueueCollector:
    """``/metrics`` gauges of the queues, computed from the store at scrape time (every replica agrees)."""

    def __init__(self, c: ServiceContext) -> None:
        self.c = c

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from prometheus_client.core import GaugeMetricFamily

        labels = ["queue", "flavour"]
        used = GaugeMetricFamily("awan_queue_gpus_used", "GPUs admitted workloads hold, per queue and flavour",
                                 labels=labels)
        borrowed = GaugeMetricFamily("awan_queue_gpus_borrowed", "GPUs used above the queue's nominal quota",
                                     labels=labels)
        nominal = GaugeMetricFamily("awan_queue_gpus_nominal", "The queue's nominal quota", labels=labels)
        pending = GaugeMetricFamily("awan_queue_pending_workloads", "Workloads waiting for admission",
                                    labels=["queue"])
        try:
            views = status(self.c.db, QueueSource(self.c.policies.document).current())
        except Exception:   # a scrape never fails because of the queues (a broken document, a busy store)
            views = []
        for v in views:
            pending.add_metric([v.name], v.pending)
            for f in v.flavours:
                used.add_metric([v.name, f.flavour], f.used)
                borrowed.add_metric([v.name, f.flavour], f.borrowed)
                nominal.add_metric([v.name, f.flavour], f.nominal)
        yield from (used, borrowed, nominal, pending)
