"""Ask every configured provider, concurrently, what it sells, what is free and whether it is well.

One bad provider never hides the others: its error is kept beside the answers of the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from controlplane.placement.snapshot import quota_applies
from providers.base import Provider
from providers.catalog import Catalog, Offering, default_catalog
from providers.errors import ProviderError
from providers.model import CapacityPool, CapacityReport, ProviderHealth, Quota

T = TypeVar("T")


@dataclass
class Survey:
    offerings: dict[str, list[Offering]] = field(default_factory=dict)
    capacity: dict[str, CapacityReport] = field(default_factory=dict)
    health: dict[str, ProviderHealth] = field(default_factory=dict)
    errors: dict[str, ProviderError] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class OfferingRow:
    """One offering joined with live capacity and quota headroom (what `awan offerings` prints)."""

    offering: Offering
    gpu_model: str
    gpus_per_node: int
    available_nodes: int | None     # None: the provider reports no pool for it
    capacity_known: bool            # False: derived from quota headroom (EC2/GCE/ARM have no free-capacity API)
    quota_headroom_nodes: int | None
    reservation: str = ""

    @property
    def price_per_gpu_hour(self) -> float:
        return self.offering.price_per_hour / max(1, self.gpus_per_node)


def _guard(name: str, fn: Callable[[], T], errors: dict[str, ProviderError]) -> T | None:
    try:
        return fn()
    except ProviderError as e:
        errors.setdefault(name, e)
    return None


def survey(providers: Mapping[str, Provider], *, offerings: bool = True, capacity: bool = True,
           health: bool = True) -> Survey:
    out = Survey()
    t0 = time.perf_counter()

    def one(name: str, p: Provider) -> None:
        if health:
            h = _guard(name, p.health, out.errors)
            if h is not None:
                out.health[name] = h
        if name in out.errors:
            return
        if offerings:
            o = _guard(name, p.offerings, out.errors)
            if o is not None:
                out.offerings[name] = o
        if capacity:
            c = _guard(name, p.capacity, out.errors)
            if c is not None:
                out.capacity[name] = c

    with ThreadPoolExecutor(max_workers=max(1, len(providers))) as pool:
        list(pool.map(lambda kv: one(*kv), providers.items()))
    out.seconds = time.perf_counter() - t0
    return out


def _quota_nodes(quotas: list[Quota], o: Offering, vcpus: int, gpus: int) -> int | None:
    """Nodes of offering ``o`` the quotas still allow (None: no quota meters it). The clouds meter spot and
    on-demand apart and hold no quota against reserved capacity: the placement engine's rule decides
    which quotas apply, so a spot row never shows the on-demand headroom."""
    best: int | None = None
    for q in quotas:
        if not quota_applies(q, o.provider, o.region, o.instance_type, o.capacity_type.value):
            continue
        per_node = {"vcpus": vcpus, "gpus": gpus, "nodes": 1}.get(q.unit)
        if not per_node:
            continue
        n = int(q.headroom // per_node)
        best = n if best is None else min(best, n)
    return best


def offering_rows(s: Survey, catalog: Catalog | None = None, gpu: str | None = None) -> list[OfferingRow]:
    cat = catalog or default_catalog()
    rows: list[OfferingRow] = []
    for provider, offers in sorted(s.offerings.items()):
        report = s.capacity.get(provider)
        pools: dict[tuple[str, str, str], list[CapacityPool]] = {}
        quotas: list[Quota] = list(report.quotas) if report else []
        for p in report.pools if report else ():
            pools.setdefault((p.zone, p.instance_type, p.capacity_type.value), []).append(p)
        for o in offers:
            it = cat.instance_types.get((provider, o.instance_type))
            if it is None:
                continue
            if gpu and it.gpu_model.lower() != gpu.lower():
                continue
            found = pools.get((o.zone, o.instance_type, o.capacity_type.value), [])
            avail = sum(p.available_nodes for p in found) if found else None
            known = all(p.capacity_known for p in found) if found else False
            rows.append(OfferingRow(
                offering=o, gpu_model=it.gpu_model, gpus_per_node=it.gpus, available_nodes=avail,
                capacity_known=known,
                quota_headroom_nodes=_quota_nodes(quotas, o, it.vcpus, it.gpus),
                reservation=",".join(p.reservation_id for p in found if p.reservation_id),
            ))
    rows.sort(key=lambda r: (r.price_per_gpu_hour, r.offering.provider, r.offering.zone, r.offering.instance_type))
    return rows
