"""/v1/workloads/{name}/logs: what a run printed, per rank. Live from its pods while they exist (and
``follow`` streams one), else the tail kept when it finished (its nodes may be gone)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from controlplane.api import schemas
from controlplane.api import workload_service as svc
from controlplane.api.context import ServiceContext, ctx
from controlplane.api.security import principal
from controlplane.auth.tokens import Principal
from controlplane.dispatch.clusters import ClusterSet
from controlplane.dispatch.kube import Cluster, ClusterError
from controlplane.dispatch.render import L_INCARNATION, L_WORKLOAD, label_value
from controlplane.dispatch.status import pod_view
from controlplane.store.models import RunLog, Workload

router = APIRouter(prefix="/v1/workloads", tags=["workloads"])
_ERR: dict[int | str, dict[str, Any]] = {c: {"model": schemas.ErrorBody} for c in (401, 403, 404, 409, 422)}
_TEAM = Query(None, max_length=63, description="the workload's team (admins; names are unique per team)")
_LIVE = ("Starting", "Running", "Succeeded", "Failed")


def clusters_of(c: ServiceContext) -> ClusterSet:
    if c.clusters is None:
        c.clusters = ClusterSet(c.config)
        c.closers.append(c.clusters)
    return c.clusters


def _live_pods(c: ServiceContext, row: Workload, rank: int | None) -> list[tuple[Cluster, int, str]]:
    """(cluster, rank, pod) of the current incarnation's pods, by rank; empty when none can be read."""
    if row.state not in _LIVE or row.released_at is not None or not row.assignments:
        return []
    selector = f"{L_WORKLOAD}={label_value(row.key)},{L_INCARNATION}={row.restarts or 0}"
    out: list[tuple[Cluster, int, str]] = []
    for cluster in clusters_of(c).for_regions((a.provider, a.region) for a in row.assignments):
        try:
            pods = cluster.owned(selector).pods
        except ClusterError:
            return []
        for p in pods:
            v = pod_view(p)
            if rank is None or v.rank == rank:
                out.append((cluster, v.rank, v.name))
    return sorted(out, key=lambda x: (x[1], x[2]))


def _row(c: ServiceContext, p: Principal, name: str, team: str | None) -> Workload:
    row = svc.get(c.db, p, name, team)
    if not svc.is_run(row.spec):
        raise HTTPException(409, f"workload {name!r} has no spec.template: a capacity reservation runs nothing, "
                                 "so it has no logs")
    return row


@router.get("/{name}/logs", response_model=schemas.LogList, responses=_ERR,
            summary="What the run printed, per rank (live, else the tail kept when it finished)")
def get_logs(name: str, rank: int | None = Query(None, ge=0, le=2**31 - 1),
             tail: int | None = Query(None, ge=1, le=100_000, description="last lines per pod"),
             follow: bool = Query(False, description="stream one pod's log (rank, default 0) as it grows"),
             team: str | None = _TEAM, p: Principal = Depends(principal),
             c: ServiceContext = Depends(ctx)) -> Any:
    row = _row(c, p, name, team)
    pods = _live_pods(c, row, rank if not follow else (rank or 0))
    if follow:
        if not pods:
            raise HTTPException(409, f"workload {name!r}: no running pod of rank {rank or 0} to follow "
                                     f"(state {row.state})")
        cluster, _, pod = pods[0]
        return StreamingResponse(_stream(cluster, pod), media_type="text/plain")
    items: list[schemas.LogOut] = []
    for cluster, r, pod in pods:
        try:
            text = cluster.log(pod, tail_lines=tail)
        except ClusterError:
            items = []
            break
        items.append(schemas.LogOut(rank=r, pod=pod, incarnation=row.restarts or 0, live=True, text=text))
    if not items:
        with c.db.session() as s:
            last = s.scalar(select(RunLog.incarnation).where(RunLog.workload_id == row.id)
                            .order_by(RunLog.incarnation.desc()).limit(1))
            q = select(RunLog).where(RunLog.workload_id == row.id, RunLog.incarnation == last)
            if rank is not None:
                q = q.where(RunLog.rank == rank)
            for lg in s.scalars(q.order_by(RunLog.rank, RunLog.pod)):
                text = lg.text if tail is None else "".join(lg.text.splitlines(keepends=True)[-tail:])
                items.append(schemas.LogOut(rank=lg.rank, pod=lg.pod, incarnation=lg.incarnation, live=False,
                                            text=text))
    if rank is not None and not items:
        raise HTTPException(404, f"workload {name!r}: no log of rank {rank}")
    return schemas.LogList(name=row.name, state=row.state, items=items)


def _stream(cluster: Cluster, pod: str) -> Iterator[bytes]:
    try:
        yield from cluster.follow(pod)
    except ClusterError as e:
        yield f"\n(log stream ended: {e})\n".encode()
