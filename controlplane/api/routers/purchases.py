"""Purchases on policy (controlplane/purchasing): the proposals the loop made, and a person's approval or
rejection. Cluster-admin only: a purchase spends the organisation's money. Approving does not buy; the
loop's next pass does, as the leader, through the crash-safe path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query
from prometheus_client.core import GaugeMetricFamily, Metric
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from controlplane.api import schemas
from controlplane.api.context import ServiceContext, ctx
from controlplane.api.security import admin
from controlplane.auth.tokens import Principal
from controlplane.purchasing.decide import Conflict, NotFound, decide
from controlplane.purchasing.model import kind_of
from controlplane.store.models import Purchase, PurchaseState

router = APIRouter(prefix="/v1", tags=["purchases"])
_ERR: dict[int | str, dict[str, Any]] = {cd: {"model": schemas.ErrorBody} for cd in (401, 403, 404, 409, 422)}
_BODY_ERR = {**_ERR, 400: {"model": schemas.ErrorBody, "description": "body is not JSON"}}


class PurchaseOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    state: str
    mode: str
    policy: str
    provider: str
    kind: str = Field(description="capacity-block (AWS) or future-reservation (GCP)")
    region: str
    zone: str
    instance_type: str = Field(alias="instanceType")
    ultraserver_type: str = Field(alias="ultraserverType")
    ultraserver_count: int = Field(alias="ultraserverCount")
    instance_count: int = Field(alias="instanceCount")
    gpus: int
    offering: str
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime = Field(alias="endsAt")
    hours: int
    price: float
    price_per_gpu_hour: float = Field(alias="pricePerGpuHour")
    reason: str
    workloads: list[str]
    reservation: str
    message: str
    decided_by: str = Field(alias="decidedBy")
    decided_at: datetime | None = Field(alias="decidedAt")
    bought_at: datetime | None = Field(alias="boughtAt")
    created_at: datetime = Field(alias="createdAt")


class PurchaseList(BaseModel):
    items: list[PurchaseOut]


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=500)


def out(r: Purchase) -> PurchaseOut:
    return PurchaseOut(
        id=r.id, state=r.state, mode=r.mode, policy=r.policy, provider=r.provider, kind=kind_of(r.provider),
        region=r.region, zone=r.zone,
        instanceType=r.instance_type, ultraserverType=r.ultraserver_type, ultraserverCount=r.ultraserver_count,
        instanceCount=r.instance_count, gpus=r.gpus, offering=r.offering_id, startsAt=r.starts_at, endsAt=r.ends_at,
        hours=r.hours, price=r.price, pricePerGpuHour=r.price_per_gpu_hour, reason=r.reason,
        workloads=list((r.demand or {}).get("workloads", [])), reservation=r.reservation_id, message=r.message,
        decidedBy=r.decided_by, decidedAt=r.decided_at, boughtAt=r.bought_at, createdAt=r.created_at)


_STATES = "|".join(s.value for s in PurchaseState)


@router.get("/purchases", response_model=PurchaseList, responses=_ERR, response_model_by_alias=True)
def list_purchases(state: str | None = Query(None, pattern=f"^({_STATES})$"), limit: int = Query(500, ge=1, le=5000),
                   _: Principal = Depends(admin), c: ServiceContext = Depends(ctx)) -> PurchaseList:
    with c.db.session() as s:
        q = select(Purchase).order_by(Purchase.created_at.desc(), Purchase.id).limit(limit)
        if state is not None:
            q = q.where(Purchase.state == state)
        return PurchaseList(items=[out(r) for r in s.scalars(q)])


@router.get("/purchases/{purchase_id}", response_model=PurchaseOut, responses=_ERR, response_model_by_alias=True)
def get_purchase(purchase_id: str, _: Principal = Depends(admin), c: ServiceContext = Depends(ctx)) -> PurchaseOut:
    with c.db.session() as s:
        r = s.get(Purchase, purchase_id)
        if r is None:
            raise HTTPException(404, f"id: no purchase {purchase_id!r}")
        return out(r)


def _decide(c: ServiceContext, purchase_id: str, approve: bool, p: Principal, body: Decision | None) -> PurchaseOut:
    try:
        r = decide(c.db, purchase_id, approve=approve, actor=p.actor, note=body.note if body else "")
    except NotFound as e:
        raise HTTPException(404, str(e)) from None
    except Conflict as e:
        raise HTTPException(409, str(e)) from None
    return out(r)


@router.post("/purchases/{purchase_id}/approve", response_model=PurchaseOut, responses=_BODY_ERR,
             response_model_by_alias=True)
def approve(purchase_id: str, body: Decision | None = Body(None), p: Principal = Depends(admin),
            c: ServiceContext = Depends(ctx)) -> PurchaseOut:
    return _decide(c, purchase_id, True, p, body)


@router.post("/purchases/{purchase_id}/reject", response_model=PurchaseOut, responses=_BODY_ERR,
             response_model_by_alias=True)
def reject(purchase_id: str, body: Decision | None = Body(None), p: Principal = Depends(admin),
           c: ServiceContext = Depends(ctx)) -> PurchaseOut:
    return _decide(c, purchase_id, False, p, body)


class PurchaseCollector:
    """``awan_purchases_count{state}`` and ``awan_purchases_dollars{state}``, read from the store at scrape
    time (every replica reports the same numbers, whichever bought)."""

    def __init__(self, c: ServiceContext) -> None:
        self.c = c

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        n = GaugeMetricFamily("awan_purchases_count", "Capacity purchases by state", labels=["state"])
        dollars = GaugeMetricFamily("awan_purchases_dollars", "Upfront dollars of purchases by state",
                                    labels=["state"])
        with self.c.db.session() as s:
            rows = {st: (cnt, total) for st, cnt, total in s.execute(
                select(Purchase.state, func.count(), func.coalesce(func.sum(Purchase.price), 0.0))
                .group_by(Purchase.state))}
        for st in PurchaseState:
            cnt, total = rows.get(st.value, (0, 0.0))
            n.add_metric([st.value], float(cnt))
            dollars.add_metric([st.value], float(total))
        yield n
        yield dollars
