"""The fleet's GPU usage over time, kept as a step function: one ``usage_changes`` row per (provider,
region, GPU model, capacity type) each time the GPUs in use there change. The controller records a pass's
usage (``record_usage``); contracts are burned down from it (burndown.py). A row holds the whole figure,
not a delta, so a lost or repeated pass never skews what follows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Float, Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, defer, mapped_column, selectinload

from controlplane.store.coltypes import UTCDateTime, utcnow
from controlplane.store.db import Database
from controlplane.store.models import ACTIVE_STATES, Base, Workload
from controlplane.store.workloads import StoredAssignment, StoredWorkload

UsageKey = tuple[str, str, str, str]      # provider, region, GPU model, capacity type


class UsageChange(Base):
    __tablename__ = "usage_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    region: Mapped[str] = mapped_column(String(64))
    gpu_model: Mapped[str] = mapped_column(String(32))
    capacity_type: Mapped[str] = mapped_column(String(16))
    gpus: Mapped[int] = mapped_column(Integer)
    dollars_per_hour: Mapped[float] = mapped_column(Float)    # at list price (what the GPUs are worth)


@dataclass(frozen=True, slots=True)
class Usage:
    """From ``at`` on, ``gpus`` in use at ``key`` worth ``dollars_per_hour`` at list price."""

    at: datetime
    key: UsageKey
    gpus: int
    dollars_per_hour: float


def usage_of(row: StoredWorkload) -> list[tuple[UsageKey, int, float]]:
    """One active workload's share of the usage: per assignment, its key, GPUs and list $/hour."""
    listed = [r.get("listPricePerHour") for r in ((row.placement or {}).get("assignments") or [])]
    out = []
    assigned: Sequence[StoredAssignment] = row.assignments
    for i, a in enumerate(assigned):
        price = listed[i] if i < len(listed) and listed[i] is not None else a.price_per_hour
        out.append(((a.provider, a.region, a.gpu_model, a.capacity_type), int(a.gpus), float(price)))
    return out


def current_usage(s: Session) -> dict[UsageKey, tuple[int, float]]:
    """GPUs and list $/hour held by active workloads now, per key."""
    out: dict[UsageKey, list[float]] = defaultdict(lambda: [0, 0.0])
    active = [st.value for st in ACTIVE_STATES]
    # Assignments in one query, not one per workload (this runs every pass, over every active workload).
    q = (select(Workload).where(Workload.state.in_(active), Workload.deleted_at.is_(None))
         .options(selectinload(Workload.assignments), defer(Workload.explanation), defer(Workload.spec)))
    for row in s.scalars(q):
        for k, gpus, dollars in usage_of(row):
            got = out[k]
            got[0] += gpus
            got[1] += dollars
    return {k: (int(v[0]), round(v[1], 6)) for k, v in out.items()}


def latest(s: Session) -> dict[UsageKey, tuple[int, float]]:
    """The last recorded figure per key."""
    last = select(func.max(UsageChange.id)).group_by(UsageChange.provider, UsageChange.region,
                                                      UsageChange.gpu_model, UsageChange.capacity_type)
    rows = s.scalars(select(UsageChange).where(UsageChange.id.in_(last)))
    return {(r.provider, r.region, r.gpu_model, r.capacity_type): (r.gpus, r.dollars_per_hour) for r in rows}


def record_usage(db: Database, at: datetime | None = None,
                 current: dict[UsageKey, tuple[int, float]] | None = None) -> int:
    """Write a row for every key whose figure changed since the last one (a key that went away gets 0).
    ``current``: the figure now, when the caller keeps it (the loop's index), else read from the store.
    Returns the rows written."""
    at = at or utcnow()
    with db.session() as s:
        now, before = (current_usage(s) if current is None else current), latest(s)
        changed = {k: v for k, v in now.items() if before.get(k) != v}
        changed.update({k: (0, 0.0) for k, v in before.items() if k not in now and v[0] != 0})
        for (prov, region, model, ctype), (gpus, dollars) in sorted(changed.items()):
            s.add(UsageChange(at=at, provider=prov, region=region, gpu_model=model, capacity_type=ctype,
                              gpus=gpus, dollars_per_hour=dollars))
        return len(changed)


def history(s: Session, provider: str, gpu_model: str) -> list[Usage]:
    """Every recorded change for one provider and GPU model, oldest first."""
    rows = s.scalars(select(UsageChange).where(UsageChange.provider == provider,
                                               UsageChange.gpu_model == gpu_model)
                     .order_by(UsageChange.at, UsageChange.id))
    return [Usage(r.at, (r.provider, r.region, r.gpu_model, r.capacity_type), r.gpus, r.dollars_per_hour)
            for r in rows]


def as_steps(changes: Sequence[Usage]) -> list[tuple[datetime, int, float]]:
    """The per-key changes folded into one step function of totals: (from, GPUs, $/hour)."""
    level: dict[UsageKey, tuple[int, float]] = {}
    out: list[tuple[datetime, int, float]] = []
    for u in changes:
        level[u.key] = (u.gpus, u.dollars_per_hour)
        total = (sum(g for g, _ in level.values()), sum(d for _, d in level.values()))
        if out and out[-1][0] == u.at:
            out[-1] = (u.at, *total)
        else:
            out.append((u.at, *total))
    return out
