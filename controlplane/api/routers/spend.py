"""/v1/spend: what the fleet costs, over time and per team, marginal against list price.

``marginal`` is what a placement adds to the bill: its pools' $/hour as placed (a node of take-or-pay
capacity already paid for counts at its contract price or nothing). ``list`` is the same nodes at the
pool's own price, whatever the contract says (the placement records it; the catalog's on-demand price when
it did not), so the difference is what commitments, reservations and spot save. The series is rebuilt from the stored placements: each workload's assignments count from
the time it was placed until now (workloads that were deleted no longer hold assignments and are not in it).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from fastapi import APIRouter, Depends, Query

from controlplane.api import schemas
from controlplane.api.context import ServiceContext, ctx
from controlplane.api.security import principal
from controlplane.auth.tokens import Principal
from controlplane.store import workloads as repo
from controlplane.store.coltypes import utcnow
from controlplane.store.models import ACTIVE_STATES

router = APIRouter(prefix="/v1", tags=["fleet"])
_ERR: dict[int | str, dict[str, Any]] = {c: {"model": schemas.ErrorBody} for c in (401, 403, 422)}
_ACTIVE = {s.value for s in ACTIVE_STATES}


@cache
def _list_prices() -> dict[tuple[str, str, str], float]:
    """Cheapest public on-demand $/node-hour per (provider, region, instance type)."""
    from providers.catalog import default_catalog

    out: dict[tuple[str, str, str], float] = {}
    for o in default_catalog().offerings:
        if o.capacity_type.value != "on-demand":
            continue
        k = (o.provider, o.region, o.instance_type)
        out[k] = min(out.get(k, o.price_per_hour), o.price_per_hour)
    return out


def list_price(provider: str, region: str, instance_type: str, nodes: int, placed: float) -> float:
    per_node = _list_prices().get((provider, region, instance_type))
    return per_node * nodes if per_node is not None else placed   # no public price: count it as placed


@router.get("/spend", response_model=schemas.SpendReport, responses=_ERR)
def spend(hours: int = Query(24, ge=1, le=24 * 90), points: int = Query(48, ge=2, le=500),
          p: Principal = Depends(principal), c: ServiceContext = Depends(ctx)) -> schemas.SpendReport:
    """$/hour over the last ``hours`` (``points`` samples) and per team now: marginal and at list price."""
    now = utcnow()
    start = now - timedelta(hours=hours)
    step = (now - start) / (points - 1)
    times = [start + step * i for i in range(points)]
    series: list[dict[str, float]] = [defaultdict(float) for _ in times]
    teams: dict[str, dict[str, Any]] = defaultdict(lambda: {"marginal": 0.0, "list": 0.0, "gpus": 0,
                                                             "states": defaultdict(int)})
    with c.db.session() as s:
        for row in repo.list_(s, team=None if p.is_admin else p.team, limit=1_000_000):
            t = teams[row.team]
            t["states"][row.state] += 1
            if row.state not in _ACTIVE or not row.assignments:
                continue
            marginal = sum(a.price_per_hour for a in row.assignments)
            placed_rows = (row.placement or {}).get("assignments") or []
            if placed_rows and all("listPricePerHour" in r for r in placed_rows):   # as placement priced it
                at_list = sum(float(r["listPricePerHour"]) for r in placed_rows)
            else:
                at_list = sum(list_price(a.provider, a.region, a.instance_type, a.nodes, a.price_per_hour)
                              for a in row.assignments)
            t["marginal"] += marginal
            t["list"] += at_list
            t["gpus"] += sum(a.gpus for a in row.assignments)
            since: datetime = row.placed_at or row.created_at
            for i, at in enumerate(times):
                if at >= since:
                    series[i][row.team] += marginal
    return schemas.SpendReport(
        hours=hours,
        series=[schemas.SpendPoint(at=at, dollarsPerHour=round(sum(v.values()), 2),
                                   byTeam={k: round(x, 2) for k, x in sorted(v.items())})
                for at, v in zip(times, series, strict=True)],
        teams=[schemas.TeamSpend(team=k, marginalDollarsPerHour=round(v["marginal"], 2),
                                 listDollarsPerHour=round(v["list"], 2), gpus=v["gpus"],
                                 workloads=dict(v["states"]))
               for k, v in sorted(teams.items())])
