"""What the loop reads from the clouds: a capacity snapshot for placement and what observation saw.

Provider errors never stop the loop: they are counted (by provider and reason) and the provider is
left out of this pass; placement sees it as unhealthy, observation as "unknown", not as "no nodes" (the
listing itself is controlplane/reconcile/observing's, by scope: a region, or a provider listed whole).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from controlplane.logs import get_logger
from controlplane.reconcile.capacity_estimates import Learned
from controlplane.reconcile.metrics import LoopMetrics
from providers import fanout
from providers.base import Provider
from providers.model import CapacityReport, HealthStatus, Node, ProviderHealth

if TYPE_CHECKING:
    from controlplane.placement.results import Assignment as PlacedAssignment
    from controlplane.placement.snapshot import FleetSnapshot
    from controlplane.store.db import Database

log = get_logger("awan.fleet")


def error_reason(e: BaseException) -> str:
    return type(e).__name__


def scope_key(provider: str, region: str | None = None) -> str:
    """What one list call answers for: a whole provider ("gcp"), or one region of a provider that lists
    region by region ("gcp/us-central1"; providers.capabilities.SupportsRegionalListing). It keys the
    observe lease and the published observation alike."""
    return provider if region is None else f"{provider}/{region}"


def scope_of(key: str) -> tuple[str, str | None]:
    provider, _, region = key.partition("/")
    return provider, region or None


@dataclass
class Observation:
    nodes: list[Node] = field(default_factory=list)
    observed: set[str] = field(default_factory=set)       # scopes that answered (scope_key)
    failed: dict[str, str] = field(default_factory=dict)  # scope -> reason

    def covers(self, provider: str, region: str) -> bool:
        """Whether this observation knows ``provider``'s nodes in ``region``: its whole-provider list or that
        region's list answered. A failed or unlisted region is "unknown" while its provider's other
        regions are known."""
        return provider in self.observed or scope_key(provider, region) in self.observed

    _by_workload: dict[str, list[Node]] = field(default_factory=dict, repr=False, compare=False)
    _indexed: int = field(default=-1, repr=False, compare=False)

    def nodes_of(self, workload: str) -> list[Node]:
        # Indexed once per observation (re-indexed if nodes were added since): a comparison of N workloads
        # with N nodes is O(N), not O(N^2) (100,000 of each: a pass, not hours).
        if self._indexed != len(self.nodes):
            self._by_workload = {}
            for n in self.nodes:
                self._by_workload.setdefault(n.workload, []).append(n)
            self._indexed = len(self.nodes)
        return list(self._by_workload.get(workload, ()))


def probe_health(providers: Mapping[str, Provider], metrics: LoopMetrics) -> dict[str, Any]:
    """provider -> ProviderHealth, or the exception its health call raised (failover debounces both)."""
    names = list(providers)
    out: dict[str, Any] = {}
    for name, got in zip(names, fanout.each(names, lambda n: providers[n].health()), strict=True):   # at once
        out[name] = got
        if isinstance(got, Exception):
            metrics.provider_errors.labels(name, error_reason(got)).inc()
            log.warning("health failed", provider=name, error=str(got))
    return out


def capacity_snapshot(providers: Mapping[str, Provider], metrics: LoopMetrics,
                      health: Mapping[str, Any] | None = None, blocked: Iterable[Any] = (),
                      caps: Learned | None = None, failed: set[str] | None = None) -> FleetSnapshot:
    """A FleetSnapshot of live capacity (placement's type; imported lazily, it is the placement side's).
    ``health``: this pass's probe (else each provider is asked); ``blocked``: failover's pool keys;
    ``caps``: capacity_estimates' learned caps (applied with ``apply_caps``); ``failed``: the names of the
    providers whose capacity read failed are added to it (a snapshot without them is not worth keeping)."""
    from controlplane.placement.snapshot import FleetSnapshot
    from providers.catalog import default_catalog

    probed: Mapping[str, Any] = health if health is not None else {}

    def read(name: str) -> tuple[CapacityReport, ProviderHealth]:
        h = probed.get(name)
        return providers[name].capacity(), h if h is not None else providers[name].health()

    # A provider that did not answer this pass's probe is not asked: placement sees no capacity there.
    names = [n for n in providers if not isinstance(probed.get(n), BaseException)]
    reports, healthy = [], {}
    for name, got in zip(names, fanout.each(names, read), strict=True):   # the providers at once
        if isinstance(got, Exception):
            metrics.provider_errors.labels(name, error_reason(got)).inc()
            log.warning("capacity failed", provider=name, error=str(got))
            if failed is not None:
                failed.add(name)
            continue
        reports.append(got[0])
        healthy[name] = got[1]
    return apply_caps(FleetSnapshot.from_reports(default_catalog(), reports, healthy, blocked=blocked), caps)


def health_signature(health: Mapping[str, Any]) -> tuple[Any, ...]:
    """What of a health probe a capacity snapshot is built on (``FleetSnapshot.from_reports``: each provider's
    status and its regions' statuses, and which providers did not answer): a kept snapshot is good only
    while the probe says the same (latency and messages move every probe and are not in it)."""
    out: list[tuple[str, HealthStatus | None, tuple[tuple[str, HealthStatus], ...]]] = []
    for name in sorted(health):
        h = health[name]
        if isinstance(h, ProviderHealth):
            out.append((name, h.status, tuple(sorted(h.regions.items()))))
        else:   # it did not answer: the snapshot has no capacity there
            out.append((name, None, ()))
    return tuple(out)


def apply_caps(snap: FleetSnapshot, caps: Learned | None) -> FleetSnapshot:
    """``snap`` with each pool's free nodes at most what capacity_estimates allows: a cloud without a
    free-capacity API reports quota headroom, and stock-outs (or no confirmed node yet) say less."""
    if caps is None:
        return snap
    from controlplane.placement.snapshot import pool_key

    estimated = {k[0] for k in caps.caps}
    pools, hit = [], []
    for p in snap.pools:
        if p.provider not in estimated and (p.capacity_known or (caps.start is None
                                                                  and p.provider not in caps.starts)):
            # Learned.free would say None: no estimate of its provider's pools, and no start applies (its
            # capacity is published, or neither a slow start nor its cloud's stock-outs set one)
            pools.append(p)
            continue
        c = caps.free(pool_key(p), p.available_nodes, p.capacity_known)
        if c is not None:
            pools.append(dataclasses.replace(p, available_nodes=c[0]))
            hit.append(c[1])
        else:
            pools.append(p)
    if not hit:
        return snap   # nothing capped: the same snapshot (its structure, and so placement's index, kept)
    log.debug("pools capped by learned capacity", pools=len(hit), first=hit[0])
    return dataclasses.replace(snap, pools=tuple(pools))


def not_yet_asked(db: Database) -> list[PlacedAssignment]:
    """The assignments of workloads placed whose stacks have not applied yet (state Placed): nodes no cloud
    has been asked for, so no live report counts them against a quota. Without them an interval pass sees
    a region's quota as free again while a burst's stacks wait their turn, and places past it (a
    QuotaError, whole stacks moved: found by the rate benchmark at 1,000 workloads/s)."""
    from sqlalchemy import select

    from controlplane.placement.results import Assignment as PlacedAssignment
    from controlplane.store.models import Assignment, Workload, WorkloadState
    from providers.catalog import CapacityType

    a = Assignment
    with db.session() as s:
        rows = s.execute(select(Workload.name, a.provider, a.region, a.zone, a.instance_type, a.nodes, a.gpus,
                                a.gpu_model, a.capacity_type, a.reservation)
                         .join(Workload, Workload.id == a.workload_id)
                         .where(Workload.state == WorkloadState.PLACED.value)).all()
    return [PlacedAssignment(workload=r.name, provider=r.provider, region=r.region, zone=r.zone,
                             instance_type=r.instance_type, nodes=r.nodes, gpus=r.gpus, gpu_model=r.gpu_model,
                             capacity_type=CapacityType(r.capacity_type), reservation=r.reservation or "")
            for r in rows]
