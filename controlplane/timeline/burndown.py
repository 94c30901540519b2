"""A contract over its term: GPU-hours and dollars used against committed to date, a forecast to the end
of the term from the recent rate, and the take-or-pay shortfall that forecast implies.

Pure: usage comes in as a step function of GPUs in use (usage.as_steps over the contract's scope). Usage
above the committed volume runs outside the contract (on-demand) and does not burn it down, so each step
counts at most ``gpus`` GPUs. Dollars are GPU-hours at the contract rate (``pricePerGpuHour``, else
``dollarsPerHour / gpus``); a contract by dollars alone burns the recorded list $/hour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from controlplane.placement.rules import region_matches
from controlplane.policy.model import Commitment
from controlplane.timeline.usage import Usage, as_steps

RECENT = timedelta(days=7)       # the window the forecast's rate is taken over


@dataclass(frozen=True, slots=True)
class BurnPoint:
    at: datetime
    used_gpu_hours: float
    used_dollars: float
    committed_gpu_hours: float | None
    committed_dollars: float | None
    forecast: bool                 # True past "now": the recent rate carried forward


@dataclass(slots=True)
class BurnDown:
    name: str
    provider: str
    gpu_model: str
    start: datetime
    end: datetime
    take_or_pay: bool
    at: datetime
    committed_gpus: int | None
    used_gpu_hours: float
    used_dollars: float
    committed_gpu_hours_to_date: float | None
    committed_dollars_to_date: float | None
    committed_gpu_hours_total: float | None
    committed_dollars_total: float | None
    recent_gpus: float               # average GPUs in use over the recent window
    forecast_gpu_hours: float        # used by the end of the term at the recent rate
    forecast_dollars: float
    shortfall_gpu_hours: float       # committed but (by the forecast) never used
    shortfall_dollars: float         # paid for anyway when take-or-pay
    series: list[BurnPoint] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        r = round
        return {
            "name": self.name, "provider": self.provider, "gpuModel": self.gpu_model,
            "start": self.start.isoformat(), "end": self.end.isoformat(), "takeOrPay": self.take_or_pay,
            "at": self.at.isoformat(), "committedGpus": self.committed_gpus,
            "usedGpuHours": r(self.used_gpu_hours, 2), "usedDollars": r(self.used_dollars, 2),
            "committedGpuHoursToDate": None if self.committed_gpu_hours_to_date is None
            else r(self.committed_gpu_hours_to_date, 2),
            "committedDollarsToDate": None if self.committed_dollars_to_date is None
            else r(self.committed_dollars_to_date, 2),
            "committedGpuHoursTotal": None if self.committed_gpu_hours_total is None
            else r(self.committed_gpu_hours_total, 2),
            "committedDollarsTotal": None if self.committed_dollars_total is None
            else r(self.committed_dollars_total, 2),
            "recentGpus": r(self.recent_gpus, 3), "forecastGpuHours": r(self.forecast_gpu_hours, 2),
            "forecastDollars": r(self.forecast_dollars, 2), "shortfallGpuHours": r(self.shortfall_gpu_hours, 2),
            "shortfallDollars": r(self.shortfall_dollars, 2),
            "series": [{"at": p.at.isoformat(), "usedGpuHours": r(p.used_gpu_hours, 2),
                        "usedDollars": r(p.used_dollars, 2),
                        "committedGpuHours": None if p.committed_gpu_hours is None else r(p.committed_gpu_hours, 2),
                        "committedDollars": None if p.committed_dollars is None else r(p.committed_dollars, 2),
                        "forecast": p.forecast} for p in self.series],
        }


def in_scope(c: Commitment, u: Usage) -> bool:
    provider, region, model, ctype = u.key
    return (provider == c.provider and model == c.gpu_model and ctype in c.capacity_types
            and (c.regions is None or any(region_matches(p, provider, region) for p in c.regions)))


def _hours(a: datetime, b: datetime) -> float:
    return max(0.0, (b - a).total_seconds() / 3600)


def rate_per_gpu_hour(c: Commitment) -> float | None:
    if c.price_per_gpu_hour is not None:
        return c.price_per_gpu_hour
    if c.dollars_per_hour is not None and c.gpus:
        return c.dollars_per_hour / c.gpus
    return None


class _Integral:
    """Cumulative GPU-hours and list dollars of a step function, capped at ``cap`` GPUs, from ``start``."""

    def __init__(self, steps: list[tuple[datetime, int, float]], start: datetime, cap: int | None) -> None:
        self.steps, self.start, self.cap = steps, start, cap

    def upto(self, t: datetime) -> tuple[float, float]:
        gh = dollars = 0.0
        for i, (at, gpus, dph) in enumerate(self.steps):
            until = self.steps[i + 1][0] if i + 1 < len(self.steps) else t
            a, b = max(at, self.start), min(until, t)
            if b <= a:
                continue
            use = min(gpus, self.cap) if self.cap is not None else gpus
            h = _hours(a, b)
            gh += use * h
            dollars += (dph * use / gpus if gpus else 0.0) * h
        return gh, dollars


def burndown(c: Commitment, changes: Sequence[Usage], at: datetime, points: int = 0,
             recent: timedelta = RECENT) -> BurnDown:
    """The contract ``c`` as of ``at`` (clamped to its term), with ``points`` series points over the whole
    term (actual up to ``at``, forecast after it)."""
    steps = as_steps([u for u in changes if in_scope(c, u)])
    now = min(max(at, c.start), c.end)
    integ = _Integral(steps, c.start, c.gpus)
    rate = rate_per_gpu_hour(c)

    def dollars(gh: float, listed: float) -> float:
        return gh * rate if rate is not None else listed

    used_gh, used_list = integ.upto(now)
    since = max(c.start, now - recent)
    window_h = _hours(since, now)
    recent_gh = used_gh - integ.upto(since)[0]
    recent_gpus = recent_gh / window_h if window_h else 0.0
    recent_dph = (used_list - integ.upto(since)[1]) / window_h if window_h else 0.0
    left_h = _hours(now, c.end)
    forecast_gh = used_gh + recent_gpus * left_h
    forecast_dollars = dollars(used_gh, used_list) + (recent_gpus * left_h * rate if rate is not None
                                                       else recent_dph * left_h)
    term_h = _hours(c.start, c.end)
    elapsed_h = _hours(c.start, now)
    total_gh = c.gpus * term_h if c.gpus is not None else None
    total_dollars = (c.dollars_per_hour * term_h if c.dollars_per_hour is not None
                     else total_gh * rate if total_gh is not None and rate is not None else None)
    short_gh = max(0.0, total_gh - forecast_gh) if total_gh is not None else 0.0
    short_dollars = 0.0
    if c.take_or_pay and total_dollars is not None:
        short_dollars = max(0.0, total_dollars - forecast_dollars)
    out = BurnDown(
        name=c.name, provider=c.provider, gpu_model=c.gpu_model, start=c.start, end=c.end,
        take_or_pay=c.take_or_pay, at=now, committed_gpus=c.gpus, used_gpu_hours=used_gh,
        used_dollars=dollars(used_gh, used_list),
        committed_gpu_hours_to_date=c.gpus * elapsed_h if c.gpus is not None else None,
        committed_dollars_to_date=total_dollars * elapsed_h / term_h if total_dollars is not None and term_h else None,
        committed_gpu_hours_total=total_gh, committed_dollars_total=total_dollars, recent_gpus=recent_gpus,
        forecast_gpu_hours=forecast_gh, forecast_dollars=forecast_dollars, shortfall_gpu_hours=short_gh,
        shortfall_dollars=short_dollars)
    if points >= 2:
        step = (c.end - c.start) / (points - 1)
        for i in range(points):
            t = c.start + step * i
            if t <= now:
                gh, listed = integ.upto(t)
                d, fc = dollars(gh, listed), False
            else:
                ahead = _hours(now, t)
                gh = used_gh + recent_gpus * ahead
                d = out.used_dollars + (recent_gpus * ahead * rate if rate is not None else recent_dph * ahead)
                fc = True
            frac = _hours(c.start, t) / term_h if term_h else 1.0
            out.series.append(BurnPoint(t, gh, d, total_gh * frac if total_gh is not None else None,
                                        total_dollars * frac if total_dollars is not None else None, fc))
    return out
