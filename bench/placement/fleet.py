"""The benchmark fleet: the shipped catalog's capacity seed, scaled until it holds a target number of GPUs.

Every provider's every region in ``providers/catalog/data`` is in it (TPU chips count as accelerators).
The snapshot is built by the placement engine's own ``FleetSnapshot.from_catalog``, so the benchmark
measures the engine on the structure it builds in production, not on a bench-only copy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from providers.catalog import Catalog, default_catalog

if TYPE_CHECKING:
    from controlplane.placement.snapshot import FleetSnapshot

FULL_FLEET_GPUS = 500_000


@dataclass(frozen=True, slots=True)
class FleetStats:
    gpus: int                      # physical accelerators (a spot and an on-demand pool of one zone share them)
    pools: int                     # CapacityPool rows in the snapshot
    scale: float
    by_provider: dict[str, int] = field(default_factory=dict)
    regions: int = 0


def physical_gpus(pools: list, catalog: Catalog) -> tuple[int, dict[str, int], int]:
    """(GPUs, GPUs per provider, regions) of a pool list. Spot and on-demand offerings of one zone and
    instance type draw on one physical pool (as in mockclouds), so each (zone, type, reservation) counts once,
    at the largest figure any of its capacity types reports."""
    nodes: dict[tuple[str, str, str, str], int] = {}
    for p in pools:
        key = (p.provider, p.zone, p.instance_type, p.reservation_id)
        nodes[key] = max(nodes.get(key, 0), int(p.available_nodes))
    per_provider: Counter[str] = Counter()
    for (provider, _zone, itype, _res), n in nodes.items():
        per_provider[provider] += n * catalog.instance_type(provider, itype).gpus
    regions = {(p.provider, p.region) for p in pools}
    return sum(per_provider.values()), dict(per_provider), len(regions)


def build_fleet(target_gpus: int = FULL_FLEET_GPUS, catalog: Catalog | None = None) -> tuple[FleetSnapshot, FleetStats]:
    """A snapshot of the whole catalog holding about ``target_gpus`` accelerators, and what it holds."""
    from controlplane.placement.snapshot import FleetSnapshot

    cat = catalog or default_catalog()
    base = FleetSnapshot.from_catalog(cat, scale=1.0)
    base_gpus, _, _ = physical_gpus(list(base.pools), cat)
    if base_gpus <= 0:
        raise RuntimeError("FleetSnapshot.from_catalog(scale=1.0) holds no GPUs: nothing to benchmark")
    scale = target_gpus / base_gpus
    # from_catalog rounds nodes down (whole NVLink racks), so a small fleet comes out short: correct the
    # scale a few times until the fleet is within 1% of the target.
    for _ in range(4):
        snap = FleetSnapshot.from_catalog(cat, scale=scale)
        gpus, per_provider, regions = physical_gpus(list(snap.pools), cat)
        if gpus <= 0 or abs(gpus - target_gpus) <= 0.01 * target_gpus:
            break
        scale *= target_gpus / gpus
    return snap, FleetStats(gpus=gpus, pools=len(snap.pools), scale=round(scale, 4),
                            by_provider=per_provider, regions=regions)
