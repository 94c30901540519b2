"""Find the offering that serves one workload's demand within the policy: Capacity Block offerings of the
policy's providers, regions and types (through the typed capability, SupportsCapacityBlocks), and GCP
future reservation requests of its futureReservations (futures.py), sized for the workload, starting inside
the lead-time window (and early enough for its schedule), at or under the policy's and the workload's price
per GPU-hour. The cheapest per GPU-hour wins, then the earliest."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from controlplane.purchasing import futures
from controlplane.purchasing.demand import Demand
from controlplane.purchasing.model import (
    CAPACITY_BLOCK,
    FUTURE_RESERVATION,
    FutureTarget,
    PurchasingConfig,
    Target,
)
from providers.base import Provider
from providers.capabilities import CapacityBlockOffer, CapacityBlockQuery
from providers.catalog import Catalog, default_catalog
from providers.errors import ProviderError


@dataclass(frozen=True, slots=True)
class Found:
    offer: CapacityBlockOffer
    target: Target | FutureTarget
    gpus: int
    price_per_gpu_hour: float
    kind: str = CAPACITY_BLOCK        # or FUTURE_RESERVATION: a request priced from the catalog (futures.py)


@dataclass(slots=True)
class Search:
    found: Found | None = None
    notes: list[str] = field(default_factory=list)     # why offerings were passed over (for the reason/logs)


def _region_ok(d: Demand, provider: str, region: str, cat: Catalog) -> bool:
    loc = d.workload.spec.location
    if loc.regions and not any(fnmatch.fnmatch(f"{provider}:{region}", pat) or fnmatch.fnmatch(region, pat)
                               for pat in loc.regions):
        return False
    r = cat.regions.get((provider, region))
    return not (loc.geo and (r is None or r.geo not in loc.geo))


def hours_for(d: Demand, cfg: PurchasingConfig) -> int:
    sched = d.workload.spec.schedule
    if sched is not None and sched.duration is not None:
        return max(1, math.ceil(sched.duration.total_seconds() / 3600))
    return cfg.hours


def latest_start(d: Demand, cfg: PurchasingConfig, now: datetime) -> datetime:
    latest = now + cfg.lead_max
    sched = d.workload.spec.schedule
    if sched is not None:
        if sched.max_wait is not None:
            latest = min(latest, now + sched.max_wait)
        if sched.deadline is not None and sched.duration is not None:
            latest = min(latest, sched.deadline - sched.duration)
    return latest


def search(d: Demand, cfg: PurchasingConfig, providers: Mapping[str, Provider], now: datetime,
           catalog: Catalog | None = None) -> Search:
    cat = catalog or default_catalog()
    w = d.workload
    models = {m.upper() for m in w.spec.gpus.model}
    cap_price = min(cfg.max_price_per_gpu_hour, w.spec.max_price_per_gpu_hour or math.inf)
    hours = hours_for(d, cfg)
    latest = latest_start(d, cfg, now)
    out = Search()
    best: Found | None = None
    for t in cfg.targets:
        if t.gpu_model.upper() not in models:
            continue
        p = providers.get(t.provider)
        blocks = p.supports_capacity_blocks() if p is not None else None
        if blocks is None:
            out.notes.append(f"{t.provider}: not configured or cannot sell Capacity Blocks")
            continue
        nodes = math.ceil(w.total_gpus / t.gpus_per_node)
        ultra = math.ceil(nodes / t.nodes_per_ultraserver) if t.ultraserver else 0
        for provider, region in cfg.regions:
            if provider != t.provider or not _region_ok(d, provider, region, cat) \
                    or not d.region_wants_block(provider, region):
                continue
            try:
                offers = blocks.find_capacity_blocks(CapacityBlockQuery(
                    region, t.instance_type, count=nodes, ultraservers=ultra, hours=hours,
                    start_after=now + cfg.lead_min if cfg.lead_min else None))
            except ProviderError as e:
                out.notes.append(f"{provider}/{region} {t.instance_type}: {e}")
                continue
            for o in offers:
                gpus = o.instance_count * t.gpus_per_node
                if gpus < w.total_gpus:
                    continue
                per = o.upfront_fee / max(1, gpus * o.hours)
                if o.starts_at > latest:
                    out.notes.append(f"{o.id} starts {o.starts_at.isoformat()}, after {latest.isoformat()}")
                    continue
                if per > cap_price + 1e-9:
                    out.notes.append(f"{o.id} costs ${per:,.2f}/GPU-hour, over the limit ${cap_price:,.2f}")
                    continue
                f = Found(o, t, gpus, per)
                if best is None or (per, o.starts_at) < (best.price_per_gpu_hour, best.offer.starts_at):
                    best = f
    for f in _future_requests(d, cfg, providers, now, cat, hours, latest, cap_price, models, out.notes):
        if best is None or (f.price_per_gpu_hour, f.offer.starts_at) < (best.price_per_gpu_hour, best.offer.starts_at):
            best = f
    out.found = best
    if best is None and not out.notes:
        out.notes.append("no offering of the policy's types and regions fits this workload")
    return out


def _future_requests(d: Demand, cfg: PurchasingConfig, providers: Mapping[str, Provider], now: datetime,
                     cat: Catalog, hours: int, latest: datetime, cap_price: float, models: set[str],
                     notes: list[str]) -> list[Found]:
    """GCP future reservations that would serve ``d``: one request per allowed zone, its cheapest first."""
    out: list[Found] = []
    w = d.workload
    for t in cfg.future:
        if t.gpu_model.upper() not in models:
            continue
        p = providers.get(t.provider)
        if p is None or p.supports_future_reservations() is None:
            notes.append(f"{t.provider}: not configured or cannot request future reservations")
            continue
        start = futures.earliest_start(now, cfg.lead_min)
        length = futures.window_hours(hours)
        if length > futures.MAX_HOURS:
            notes.append(f"{t.instance_type}: {length}h is longer than a future reservation may last "
                         f"({futures.MAX_HOURS}h)")
            continue
        if start > latest:
            notes.append(f"a future reservation of {t.instance_type} starts {start.isoformat()} at the "
                         f"earliest (87h ahead), after {latest.isoformat()}")
            continue
        for region in t.regions:
            if not _region_ok(d, t.provider, region, cat) or not d.region_wants_block(t.provider, region):
                continue
            for zone, price in futures.zones_for(t, region, cat):
                o = futures.request_for(t, region, zone, price, w.total_gpus, length, start)
                gpus = o.instance_count * t.gpus_per_node
                per = o.upfront_fee / max(1, gpus * o.hours)
                if per > cap_price + 1e-9:
                    notes.append(f"{o.id} costs ${per:,.2f}/GPU-hour, over the limit ${cap_price:,.2f}")
                    continue
                out.append(Found(o, t, gpus, per, FUTURE_RESERVATION))
    return out


def reason(d: Demand, f: Found, now: datetime) -> str:
    o = f.offer
    wait = o.starts_at - now
    when = "now" if wait <= timedelta(minutes=1) else f"in {_human(wait)}"
    what = f"{o.ultraserver_count}x {o.ultraserver_type}" if o.ultraserver_type else f"{o.instance_count}x {o.instance_type}"
    why = {"no-capacity": "no capacity", "waiting": "for capacity that starts later",
           "nothing-matches": "no reserved capacity"}.get(d.why, d.why)
    return (f"{d.key} waits ({why}) for {d.workload.total_gpus} {'/'.join(d.workload.spec.gpus.model)} GPUs; "
            f"{'future reservation' if f.kind == FUTURE_RESERVATION else 'Capacity Block'} {what} in {o.zone} "
            f"starts {when} for {o.hours}h at ${o.upfront_fee:,.2f} (${f.price_per_gpu_hour:,.2f}/GPU-hour"
            f"{', on-demand price' if f.kind == FUTURE_RESERVATION else ''})")


def _human(d: timedelta) -> str:
    from controlplane.timeline.timing import human

    return human(d)
