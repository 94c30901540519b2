"""A point-in-time view of the fleet: capacity pools, quotas, provider health and blocked pools.

Pure data. Built from the catalog (``--capacity catalog``, tests, the bench) or from live provider reports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from controlplane.placement.results import Assignment
from providers.catalog import CapacityType, Catalog, InstanceType
from providers.catalog.fabric import ultraserver_type
from providers.catalog.seed import nominal_free_nodes
from providers.model import CapacityPool, CapacityReport, HealthStatus, ProviderHealth, Quota

PoolKey = tuple[str, str, str, str, str]   # provider, zone, instance type, capacity type, reservation id


def pool_key(p: CapacityPool) -> PoolKey:
    return (p.provider, p.zone, p.instance_type, p.capacity_type.value, p.reservation_id)


catalog_seed_nodes = nominal_free_nodes    # the mock clouds seed their pools by the same rule


def scaled_seed_nodes(it: InstanceType, scale: float) -> int:
    """``catalog_seed_nodes x scale``, rounded down; NVLink rack types stay whole racks."""
    per = it.nodes_per_domain
    return int(catalog_seed_nodes(it) * scale + 1e-9) // per * per


@dataclass(frozen=True, eq=False)
class FleetSnapshot:
    """Compared by identity (``eq=False``: two snapshots taken apart are two facts, even when equal); what
    placement may reuse between snapshots is keyed on ``structure``, not on the snapshot."""

    catalog: Catalog
    pools: tuple[CapacityPool, ...]
    quotas: tuple[Quota, ...] = ()
    health: Mapping[str, HealthStatus] = field(default_factory=dict)          # provider -> status
    region_health: Mapping[tuple[str, str], HealthStatus] = field(default_factory=dict)
    blocked: frozenset[PoolKey] = frozenset()     # failover: pools that failed recently
    taken_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @cached_property
    def structure(self) -> tuple[Any, ...]:
        """The snapshot's shape without its free capacity and quota use: the catalog (by identity: one is
        built per process and never changed), the pools in order with their price overrides and terms, quota
        scopes, health and blocked pools. A capacity refresh keeps it; placement keys its reusable index on it
        (``candidates.structure_key``, ``cache.IndexCache``). Computed once per snapshot."""
        return (id(self.catalog),
                tuple((p.provider, p.zone, p.instance_type, p.capacity_type, p.reservation_id, p.region,
                       p.price_per_hour, p.starts_at, p.ends_at) for p in self.pools),
                tuple((q.provider, q.region, q.unit, q.instance_types, q.capacity_types) for q in self.quotas),
                tuple(sorted(self.health.items())), tuple(sorted(self.region_health.items())), self.blocked)

    @classmethod
    def from_catalog(cls, catalog: Catalog, scale: float = 1.0, taken_at: datetime | None = None,
                     health: Mapping[str, HealthStatus] | None = None) -> FleetSnapshot:
        """Capacity seeded like the mock clouds: every offering becomes a pool with
        ``scaled_seed_nodes(type, scale)`` nodes (whole NVLink racks for rack-scale types, TPU slices by chips, see ``catalog_seed_nodes``). Reserved offerings
        become pools with a reservation id ``catalog:<zone>:<type>`` (capacity blocks / UltraServers)."""
        pools = []
        for o in sorted(catalog.offerings, key=lambda o: o.key):
            it = catalog.instance_type(o.provider, o.instance_type)
            nodes = scaled_seed_nodes(it, scale)
            reserved = o.capacity_type == CapacityType.RESERVED
            pools.append(CapacityPool(
                provider=o.provider, region=o.region, zone=o.zone, instance_type=o.instance_type,
                capacity_type=o.capacity_type, available_nodes=nodes,
                reservation_id=f"catalog:{o.zone}:{o.instance_type}" if reserved else "",
                ultraserver_type=ultraserver_type(it), capacity_known=True))
        return cls(catalog=catalog, pools=tuple(pools), health=dict(health or {}),
                   taken_at=taken_at or datetime.now(UTC))

    @classmethod
    def from_reports(cls, catalog: Catalog, reports: Sequence[CapacityReport],
                     health: Mapping[str, ProviderHealth] | None = None,
                     blocked: Iterable[PoolKey] = ()) -> FleetSnapshot:
        pools = tuple(p for r in sorted(reports, key=lambda r: r.provider) for p in r.pools)
        quotas = tuple(q for r in sorted(reports, key=lambda r: r.provider) for q in r.quotas)
        status = {name: h.status for name, h in (health or {}).items()}
        region_health = {(name, reg): st for name, h in (health or {}).items() for reg, st in h.regions.items()}
        taken = max((r.taken_at for r in reports), default=datetime.now(UTC))
        return cls(catalog=catalog, pools=pools, quotas=quotas, health=status, region_health=region_health,
                   blocked=frozenset(blocked), taken_at=taken)

    def provider_status(self, provider: str, region: str) -> HealthStatus:
        st = self.health.get(provider, HealthStatus.OK)
        reg = self.region_health.get((provider, region), HealthStatus.OK)
        order = (HealthStatus.OK, HealthStatus.DEGRADED, HealthStatus.DOWN)
        return max(st, reg, key=order.index)

    def with_blocked(self, keys: Iterable[PoolKey]) -> FleetSnapshot:
        blocked = self.blocked | frozenset(keys)
        if blocked == self.blocked:
            return self   # nothing new blocked: the same snapshot (its structure, and so its index, kept)
        return dataclasses.replace(self, blocked=blocked)

    def with_usage(self, placements: Iterable[Assignment]) -> FleetSnapshot:
        """Capacity and quota left after ``placements`` (for catalog snapshots; a live report already
        excludes what is running)."""
        placements = list(placements)   # read twice (capacity, then quota): a generator would be spent
        taken: dict[PoolKey, int] = {}
        for a in placements:
            k = (a.provider, a.zone, a.instance_type, str(a.capacity_type), a.reservation)
            taken[k] = taken.get(k, 0) + a.nodes
        # Only the pools placed on are touched, found by the snapshot's index of pool positions (a catalog
        # snapshot has thousands of pools; the loop's woken passes call this every pass).
        positions = self.positions
        listed = list(self.pools)
        for k, n in taken.items():
            for i in positions.get(k, ()):
                listed[i] = dataclasses.replace(listed[i], available_nodes=max(0, listed[i].available_nodes - n))
        out = dataclasses.replace(self, pools=tuple(listed), quotas=self._quotas_after(placements))
        # Free nodes and quota use are neither in the structure nor in the pools' keys or order: the child's
        # are the parent's, the same objects (the same structure object is what lets placement's index cache
        # see at once that it may rebase its index).
        out.__dict__["positions"] = positions
        if "structure" in self.__dict__:
            out.__dict__["structure"] = self.__dict__["structure"]
        return out

    def with_quota_use(self, placements: Iterable[Assignment]) -> FleetSnapshot:
        """Quota left after ``placements``, free nodes as they are: for a live report, whose quota use counts
        the nodes that exist but not those placed and not yet asked of the cloud (learned caps already count
        every assigned node against a pool; a region's quota is shared by all its pools and needs this)."""
        out = dataclasses.replace(self, quotas=self._quotas_after(list(placements)))
        out.__dict__["positions"] = self.positions
        if "structure" in self.__dict__:
            out.__dict__["structure"] = self.__dict__["structure"]
        return out

    def _quotas_after(self, placements: list[Assignment]) -> tuple[Quota, ...]:
        used = _quota_usage(self, placements)
        return tuple(dataclasses.replace(q, used=q.used + used[i]) if used.get(i) else q
                     for i, q in enumerate(self.quotas))

    @cached_property
    def positions(self) -> Mapping[PoolKey, tuple[int, ...]]:
        """Where each pool key is in ``pools`` (computed once per snapshot, shared with ``with_usage``'s)."""
        at: dict[PoolKey, tuple[int, ...]] = {}
        for i, p in enumerate(self.pools):
            k = pool_key(p)
            at[k] = (*at.get(k, ()), i)
        return at

    def total_gpus(self) -> int:
        return sum(p.available_nodes * self.catalog.instance_type(p.provider, p.instance_type).gpus
                   for p in self.pools)


def quota_units(q: Quota, it: InstanceType) -> float:
    """How much of quota ``q`` one node of ``it`` uses."""
    return {"vcpus": float(it.vcpus), "gpus": float(it.gpus)}.get(q.unit, 1.0)


def quota_applies(q: Quota, provider: str, region: str, instance_type: str, capacity_type: str) -> bool:
    # Reserved capacity (reservations, capacity blocks, contracts) is already paid for and not held
    # against the on-demand/spot quotas the clouds expose.
    return (q.provider == provider and q.region == region and capacity_type != CapacityType.RESERVED.value
            and (not q.instance_types or instance_type in q.instance_types)
            and (not q.capacity_types or capacity_type in q.capacity_types))


def _quota_usage(snap: FleetSnapshot, placements: Iterable[Assignment]) -> dict[int, float]:
    # Only the quotas of an assignment's provider and region can apply (quota_applies), found by a
    # (provider, region) index: an interval pass adds every Placed workload's assignment, thousands during a
    # burst, against hundreds of quotas.
    by_place: dict[tuple[str, str], list[int]] = {}
    for i, q in enumerate(snap.quotas):
        by_place.setdefault((q.provider, q.region), []).append(i)
    used: dict[int, float] = {}
    for a in placements:
        near = by_place.get((a.provider, a.region))
        if not near:
            continue
        it = snap.catalog.instance_type(a.provider, a.instance_type)
        ct = str(a.capacity_type)
        for i in near:
            q = snap.quotas[i]
            if quota_applies(q, a.provider, a.region, a.instance_type, ct):
                used[i] = used.get(i, 0.0) + a.nodes * quota_units(q, it)
    return used
