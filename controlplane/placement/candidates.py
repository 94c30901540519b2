"""Candidates: the snapshot's pools joined with the catalog, and per workload *class* the pools that pass
every hard constraint, grouped by (provider, region, instance type).

A workload class is everything placement reads from a workload except its name (see ``WorkloadClass``);
the class's candidate list is computed once per (snapshot, policies) and reused by every decision, so a
decision never rescans the catalog. CEL rules run here, at most once per (rule, class, pool), and once for
all inputs that agree on the fields a rule reads (celkeys.py).

Everything a decision reads that does not change while placing (a pool's quotas, rack size and health term,
a group's packing plan, a class's budget) is worked out here once, so the per-decision path in
placer.py/gangs.py is plain arithmetic over free nodes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controlplane.model.workload import GPUWorkload, TopologyDomain
from controlplane.placement.celkeys import project, rule_fields
from controlplane.placement.rules import (
    STATIC_RULES,
    gang_shape,
    r_fabric,
    r_gpu,
    r_provider,
    r_residency,
    r_shape,
    region_matches,
)
from controlplane.placement.scoring import group_upper_bound, locality, lowest_rate
from controlplane.placement.snapshot import FleetSnapshot, quota_applies, quota_units
from controlplane.placement.views import ClassCandidates, ClassKey, Group, PoolView, WorkloadClass
from controlplane.policy.model import Commitment, PolicySet
from providers.catalog import CapacityType, InstanceType
from providers.model import CapacityPool, HealthStatus

# The views are defined in views.py; they are re-exported here for callers that found them here first.
__all__ = ["ClassCandidates", "Group", "PoolView", "SnapshotIndex", "WorkloadClass", "in_term", "structure_key"]

# What makes a provider able to serve a class (SnapshotIndex.sellers): the catalog sells the shape, and the
# policies allow the provider and the region for the class's data (ProviderShareCap's sole-provider rule).
_SELLER_RULES = (r_gpu, r_shape, r_fabric, r_provider, r_residency)


def in_term(p: CapacityPool, at: datetime) -> bool:
    """Whether pool ``p`` can be launched into at ``at``: dated capacity (blocks, reservations) only between
    its start and its end."""
    return (p.starts_at is None or p.starts_at <= at) and (p.ends_at is None or at < p.ends_at)


def _commitments_for(pv_pool: CapacityPool, it: InstanceType, ps: PolicySet, snap: FleetSnapshot
                     ) -> tuple[Commitment, ...]:
    return tuple(
        c for c in ps.commitments
        if c.provider == pv_pool.provider and c.gpu_model == it.gpu_model and c.active(snap.taken_at)
        and pv_pool.capacity_type.value in c.capacity_types
        and (c.regions is None or any(region_matches(p, pv_pool.provider, pv_pool.region) for p in c.regions)))


class SnapshotIndex:
    """Pool views of one snapshot under one policy set, and the candidate lists per workload class."""

    def __init__(self, snap: FleetSnapshot, ps: PolicySet) -> None:
        self.snapshot, self.policies = snap, ps
        self.views: list[PoolView] = []
        cat = snap.catalog
        od_price = {(o.provider, o.zone, o.instance_type): o.price_per_hour for o in cat.offerings
                    if o.capacity_type == CapacityType.ON_DEMAND}
        price = {(o.provider, o.zone, o.instance_type, o.capacity_type.value): o.price_per_hour
                 for o in cat.offerings}
        # live pools may name a zone the catalog lacks: fall back to the region's price (lowest zone's)
        region_price: dict[tuple[str, str, str, str], float] = {}
        for o in cat.offerings:
            k = (o.provider, o.region, o.instance_type, o.capacity_type.value)
            region_price[k] = min(region_price.get(k, o.price_per_hour), o.price_per_hour)
        quotas = snap.quotas
        for i, p in enumerate(snap.pools):
            it = cat.instance_types.get((p.provider, p.instance_type))
            reg = cat.regions.get((p.provider, p.region))
            if it is None or reg is None:
                continue  # a pool the catalog does not know cannot be priced or located: not a candidate
            if not in_term(p, snap.taken_at):
                continue  # capacity that has not started (a Capacity Block next week) or has ended: never used
            nprice = p.price_per_hour
            if nprice is None:
                nprice = price.get((p.provider, p.zone, p.instance_type, p.capacity_type.value),
                                   od_price.get((p.provider, p.zone, p.instance_type)))
            if nprice is None:
                nprice = region_price.get((p.provider, p.region, p.instance_type, p.capacity_type.value),
                                          region_price.get((p.provider, p.region, p.instance_type, "on-demand")))
            if nprice is None:
                continue
            pv = PoolView(idx=i, pool=p, it=it, region=reg, price=nprice, price_per_gpu_hour=nprice / it.gpus,
                          capacity_type=p.capacity_type.value, health=snap.provider_status(p.provider, p.region),
                          blocked=(p.provider, p.zone, p.instance_type, p.capacity_type.value,
                                   p.reservation_id) in snap.blocked)
            pv.commitments = _commitments_for(p, it, ps, snap)
            pv.quotas = tuple((qi, quota_units(q, it)) for qi, q in enumerate(quotas)
                              if quota_applies(q, p.provider, p.region, p.instance_type, pv.capacity_type))
            pv.reserved = bool(p.reservation_id)
            pv.nodes_per_domain = it.nodes_per_domain
            pv.health_term = 0.0 if pv.health == HealthStatus.DEGRADED else 1.0
            pv.cel_map = {
                "provider": p.provider, "region": p.region, "zone": p.zone, "geo": reg.geo,
                "country": reg.country, "instanceType": p.instance_type, "gpuModel": it.gpu_model,
                "gpusPerNode": it.gpus, "capacityType": pv.capacity_type, "reserved": bool(p.reservation_id),
                "reservation": p.reservation_id, "pricePerHour": nprice, "pricePerGpuHour": pv.price_per_gpu_hour,
                "fabric": it.fabric, "nvlinkDomainGpus": it.nvlink_domain_gpus, "gpuMemory": it.gpu_memory_gib,
                "committed": bool(pv.commitments) or bool(p.reservation_id)}
            self.views.append(pv)
        self.views.sort(key=lambda v: (v.pool.provider, v.pool.region, v.pool.zone, v.pool.instance_type,
                                       v.capacity_type, v.pool.reservation_id))
        self._classes: dict[WorkloadClass, ClassCandidates] = {}
        self._by_key: dict[ClassKey, ClassCandidates] = {}      # WorkloadClass.key_of -> the same candidates
        self._cel_cache: dict[tuple[int, WorkloadClass, int], tuple[bool, str]] = {}
        # CEL results shared between inputs that agree on what the rule reads (celkeys.py):
        # (rule idx, workload fields read, candidate fields read) -> result; per rule, the fields or None
        self._cel_shared: dict[tuple[int, tuple[Any, ...], tuple[Any, ...]], tuple[bool, str]] = {}
        self._cel_fields = [rule_fields(r.expr) for r in ps.rules]
        self._catalog_views: dict[str, list[PoolView]] | None = None

    def rebased(self, snap: FleetSnapshot) -> SnapshotIndex:
        """This index for a snapshot that differs only in free capacity and quota use (a capacity refresh):
        pool views, class candidates and CEL results are shared, since none of them reads free capacity.
        The caller checks that with ``structure_key`` (which covers quota scopes, so ``PoolView.quotas`` hold).
        ``pv.pool.available_nodes`` then is stale: capacity is read from the snapshot by FleetState, never
        from a view."""
        new = object.__new__(SnapshotIndex)
        new.snapshot, new.policies = snap, self.policies
        new.views, new._classes, new._by_key, new._cel_cache = self.views, self._classes, self._by_key, self._cel_cache
        new._cel_shared, new._cel_fields = self._cel_shared, self._cel_fields
        new._catalog_views = self._catalog_views
        return new

    def candidates(self, wc: WorkloadClass) -> ClassCandidates:
        got = self._classes.get(wc)
        if got is None:
            got = self._classes[wc] = self._build(wc)
        return got

    def lookup(self, w: GPUWorkload) -> ClassCandidates:
        """The candidates of ``w``'s class (``.wc``), found by the class's plain-tuple key."""
        key = WorkloadClass.key_of(w)
        got = self._by_key.get(key)
        if got is None:
            got = self._by_key[key] = self.candidates(WorkloadClass(*key))
        return got

    def _first_failure(self, wc: WorkloadClass, pv: PoolView, wmap: dict[str, Any]) -> tuple[int, str | None]:
        ps = self.policies
        for stage, rule in enumerate(STATIC_RULES):
            why = rule(wc, pv, ps)
            if why:
                return stage, why
        for j, r in enumerate(ps.rules):
            fields = self._cel_fields[j]
            if fields is None:      # the rule may read anything: one result per (class, pool)
                key = (j, wc, pv.idx)
                res = self._cel_cache.get(key)
                if res is None:
                    res = self._cel_cache[key] = r.evaluate({"workload": wmap, "candidate": pv.cel_map})
            else:
                shared = (j, project(wmap, fields["workload"]), project(pv.cel_map, fields["candidate"]))
                res = self._cel_shared.get(shared)
                if res is None:
                    res = self._cel_shared[shared] = r.evaluate({"workload": wmap, "candidate": pv.cel_map})
            if not res[0]:
                return len(STATIC_RULES) + j, res[1]
        return -1, None

    def sellers(self, wc: WorkloadClass) -> set[str]:
        """The providers whose catalog sells what ``wc`` asks for (GPU model, shape, fabric) somewhere the
        policies allow (provider lists, residency). The workload's own location does not narrow it, or
        pinning would be a way around the provider share cap; nor does this snapshot's capacity or health
        (a provider that did not report is still a seller)."""
        if self._catalog_views is None:
            self._catalog_views = _catalog_views(self.snapshot)
        ps, out = self.policies, set()
        for pv in (v for m in wc.models for v in self._catalog_views.get(m, ())):
            if pv.pool.provider in out:
                continue
            if all(rule(wc, pv, ps) is None for rule in _SELLER_RULES):
                out.add(pv.pool.provider)
        return out

    def _build(self, wc: WorkloadClass) -> ClassCandidates:
        best_fail: dict[str, tuple[int, str]] = {}
        passing: dict[tuple[str, str, str], list[PoolView]] = {}
        wmap = wc.cel_map()
        for pv in self.views:
            stage, why = self._first_failure(wc, pv, wmap)
            key = f"{pv.pool.provider}/{pv.pool.region}"
            if why is None:
                passing.setdefault((pv.pool.provider, pv.pool.region, pv.pool.instance_type), []).append(pv)
            elif key not in best_fail or stage > best_fail[key][0]:
                best_fail[key] = (stage, why)
        cap = self.policies.provider_share
        exempt = cap is not None and cap.sole_provider == "exempt" and len(self.sellers(wc)) == 1
        groups = []
        for (prov, reg, _), pvs in passing.items():
            shape = gang_shape(wc, pvs[0])
            assert not isinstance(shape, str)
            groups.append(Group(prov, reg, pvs[0].it, pvs, shape[0], shape[1], cap_exempt=exempt))
        ref = max((pv.price_per_gpu_hour for g in groups for pv in g.pools), default=1.0) or 1.0
        loc = {pv.idx: locality(wc, pv, self.snapshot) for g in groups for pv in g.pools}
        for g in groups:
            g.upper_bound = group_upper_bound(g, wc, self.policies, ref, loc)
            if not any(pv.commitments for pv in g.pools):
                g.fixed_order = sorted(g.pools, key=static_order_key)
                if not any(pv.quotas for pv in g.pools):
                    g.plan = _plan(g, wc, g.fixed_order)
                    if g.units == 1:
                        g.first_fit = _first_fit(g, g.plan)
        groups.sort(key=lambda g: (-g.upper_bound, g.provider, g.region, g.it.name))
        ok_regions = {g.key for g in groups}
        rejections = {k: why for k, (_, why) in sorted(best_fail.items()) if k not in ok_regions}
        stages = {k: st for k, (st, _) in best_fail.items() if k not in ok_regions}
        # the least one replica can cost anywhere (every price at its lowest, capacity aside): batch.py skips
        # trying to move a workload that already pays it
        floor = min((g.need_nodes * g.it.gpus * min(lowest_rate(pv) for pv in g.pools) for g in groups), default=0.0)
        return ClassCandidates(groups, rejections, ref, loc, wc, self.policies.budget(wc.team), stages=stages,
                               price_floor=floor)


def _catalog_views(snap: FleetSnapshot) -> dict[str, list[PoolView]]:
    """One view per (provider, region, instance type) the catalog sells, by GPU model: what the seller
    rules read (the instance type, the region, the provider), no capacity."""
    out: dict[str, list[PoolView]] = {}
    seen: set[tuple[str, str, str]] = set()
    cat = snap.catalog
    for o in cat.offerings:
        key = (o.provider, o.region, o.instance_type)
        it, reg = cat.instance_types.get((o.provider, o.instance_type)), cat.regions.get((o.provider, o.region))
        if key in seen or it is None or reg is None:
            continue
        seen.add(key)
        pool = CapacityPool(o.provider, o.region, o.zone, o.instance_type, o.capacity_type, 0)
        out.setdefault(it.gpu_model, []).append(PoolView(
            idx=-1, pool=pool, it=it, region=reg, price=o.price_per_hour, price_per_gpu_hour=o.price_per_hour / it.gpus,
            capacity_type=o.capacity_type.value, health=HealthStatus.OK, blocked=False))
    return out


def _first_fit(g: Group, plan: list[list[tuple[int, int, int, PoolView]]]) -> list[tuple[int, int, PoolView]]:
    """With one unit to place, gangs.fill_plain takes it from the first pool, buckets in order, that holds a
    unit: ``free // nodes per unit >= 1``, or for a rack type ``(free // rack) * units per rack >= 1``."""
    out = []
    for bucket in plan:
        for idx, rack, per_rack, pv in bucket:
            if not rack:
                out.append((idx, g.nodes_per_unit, pv))
            elif per_rack >= 1:
                out.append((idx, rack, pv))
    return out


def _plan(g: Group, wc: WorkloadClass, pools: list[PoolView]) -> list[list[tuple[int, int, int, PoolView]]]:
    """The buckets of gangs._buckets over a fixed pool order, each pool with what gangs._units_in reads."""
    def entry(pv: PoolView) -> tuple[int, int, int, PoolView]:
        npd = pv.nodes_per_domain
        if wc.domain == TopologyDomain.NVLINK and npd > 1:
            return pv.idx, npd, npd // g.nodes_per_unit, pv
        return pv.idx, 0, 0, pv
    if wc.domain == TopologyDomain.CLUSTER:
        return [[entry(pv)] for pv in pools]
    if wc.domain == TopologyDomain.ZONE:
        zones: dict[str, list[tuple[int, int, int, PoolView]]] = {}
        for pv in pools:
            zones.setdefault(pv.pool.zone, []).append(entry(pv))
        return list(zones.values())
    return [[entry(pv) for pv in pools]]


def static_order_key(pv: PoolView) -> tuple[float, int, str, str, int]:
    """Packing order of a pool no commitment covers: cheapest per GPU, reserved first, then zone (the same
    key as gangs._order_key gives it)."""
    return (pv.price / pv.it.gpus, 0 if pv.pool.reservation_id else 1, pv.pool.zone, pv.capacity_type, pv.idx)


StructureKey = tuple[Any, ...]


def structure_key(snap: FleetSnapshot, ps: PolicySet) -> StructureKey:
    """Everything a SnapshotIndex reads from a snapshot except free capacity and quota use: the pools (in
    order, with price overrides), quota scopes, health, blocked pools, which commitments are active. Two
    snapshots with equal keys under one policy set share their index's candidates (``SnapshotIndex.rebased``)."""
    return (snap.structure, tuple(c.name for c in ps.commitments if c.active(snap.taken_at)),
            tuple(in_term(p, snap.taken_at) for p in snap.pools))
