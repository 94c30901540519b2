"""Providers (admin), offerings, capacity and the fleet summary the dashboard draws."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Depends

from controlplane.api import schemas
from controlplane.api.context import ServiceContext, ctx
from controlplane.api.security import admin, principal
from controlplane.auth.tokens import Principal
from controlplane.store import workloads as repo
from controlplane.store.coltypes import utcnow
from controlplane.store.models import ACTIVE_STATES

router = APIRouter(prefix="/v1", tags=["fleet"])
_ERR: dict[int | str, dict[str, Any]] = {c: {"model": schemas.ErrorBody} for c in (401, 403)}


def _v(x: object) -> str:
    return str(getattr(x, "value", x))


@router.get("/providers", response_model=schemas.ProviderList, responses=_ERR)
def providers(_: Principal = Depends(admin), c: ServiceContext = Depends(ctx)) -> schemas.ProviderList:
    out = []
    for name, p in sorted(c.providers.items()):
        try:
            h = p.health()
            out.append(schemas.ProviderOut(name=name, endpoint=h.endpoint, status=_v(h.status),
                                           latencyMs=h.latency_ms, message=h.message,
                                           regions={k: _v(v) for k, v in h.regions.items()}))
        except Exception as e:  # a provider that cannot answer is reported, not a 500
            out.append(schemas.ProviderOut(name=name, endpoint=getattr(p, "endpoint", ""), status="down",
                                           latencyMs=0.0, message=f"{type(e).__name__}: {e}", regions={}))
    return schemas.ProviderList(items=out)


@router.get("/offerings", response_model=schemas.OfferingList, responses=_ERR)
def offerings(provider: str | None = None, gpu_model: str | None = None, _: Principal = Depends(principal),
              c: ServiceContext = Depends(ctx)) -> schemas.OfferingList:
    from providers.catalog import default_catalog

    cat = default_catalog()
    items = []
    for o in cat.offerings:
        if provider and o.provider != provider:
            continue
        it = cat.instance_type(o.provider, o.instance_type)
        if gpu_model and it.gpu_model.upper() != gpu_model.upper():
            continue
        items.append(schemas.OfferingOut(provider=o.provider, region=o.region, zone=o.zone,
                                         instanceType=o.instance_type, gpuModel=it.gpu_model,
                                         gpusPerNode=it.gpus, capacityType=_v(o.capacity_type),
                                         pricePerHour=o.price_per_hour))
    return schemas.OfferingList(items=items)


@router.get("/capacity", response_model=schemas.CapacityOut, responses=_ERR)
def capacity(_: Principal = Depends(principal), c: ServiceContext = Depends(ctx)) -> schemas.CapacityOut:
    pools, errors = [], {}
    for name, p in sorted(c.providers.items()):
        try:
            rep = p.capacity()
        except Exception as e:
            errors[name] = f"{type(e).__name__}: {e}"
            continue
        pools += [schemas.PoolOut(provider=x.provider, region=x.region, zone=x.zone, instanceType=x.instance_type,
                                  capacityType=_v(x.capacity_type), availableNodes=x.available_nodes,
                                  reservationId=x.reservation_id, capacityKnown=x.capacity_known)
                  for x in rep.pools]
    return schemas.CapacityOut(pools=pools, errors=errors)


@router.get("/summary", response_model=schemas.SummaryOut, responses=_ERR)
def summary(p: Principal = Depends(principal), c: ServiceContext = Depends(ctx)) -> schemas.SummaryOut:
    """GPUs by provider/region/state, commitment burn-down and spend per team (the caller's team only,
    unless admin)."""
    gpus: dict[tuple[str, str, str], int] = defaultdict(int)
    spend: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    by_model: dict[tuple[str, str], int] = defaultdict(int)
    states: dict[str, int] = defaultdict(int)
    with c.db.session() as s:
        for row in repo.list_(s, team=None if p.is_admin else p.team, limit=1_000_000):
            states[row.state] += 1
            for a in row.assignments:
                gpus[(a.provider, a.region, row.state)] += a.gpus
                if row.state in [x.value for x in ACTIVE_STATES]:
                    spend[row.team][0] += a.price_per_hour
                    spend[row.team][1] += a.gpus
                    by_model[(a.provider, a.gpu_model)] += a.gpus
    commitments = []
    try:
        now = utcnow()
        for cm in c.policies.current().commitments:
            if cm.active(now) if cm.start.tzinfo else True:
                commitments.append(schemas.CommitmentOut(
                    name=cm.name, provider=cm.provider, gpuModel=cm.gpu_model, committedGpus=cm.gpus,
                    usedGpus=by_model.get((cm.provider, cm.gpu_model), 0), start=cm.start, end=cm.end))
    except Exception:  # policies unavailable or invalid: the summary still shows the fleet
        commitments = []
    return schemas.SummaryOut(
        gpus=[schemas.GpuCount(provider=k[0], region=k[1], state=k[2], gpus=v) for k, v in sorted(gpus.items())],
        commitments=commitments,
        spend=[schemas.SpendOut(team=t, dollarsPerHour=round(v[0], 2), gpus=int(v[1]))
               for t, v in sorted(spend.items())],
        workloads=dict(states))
