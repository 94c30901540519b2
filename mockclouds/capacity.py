"""Finite capacity per (zone, instance type), seeded from the catalog: what makes a mock cloud run out.

Spot and on-demand draw on the same physical pool, as in a real cloud; reserved capacity
(capacity reservations, capacity blocks) is held apart by the cloud fakes that model it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from providers.catalog import Catalog, InstanceType, default_catalog
from providers.catalog.seed import nominal_free_nodes

default_seed = nominal_free_nodes


class CapacityExhausted(Exception):
    def __init__(self, zone: str, instance_type: str, wanted: int, free: int) -> None:
        super().__init__(f"{zone}/{instance_type}: wanted {wanted}, free {free}")
        self.zone, self.instance_type, self.wanted, self.free = zone, instance_type, wanted, free


class CapacityLedger:
    """Thread-safe counts of free nodes. ``take`` is all-or-nothing."""

    def __init__(self, provider: str, catalog: Catalog | None = None,
                 seed: Callable[[InstanceType], int] = default_seed) -> None:
        self.provider = provider
        self._catalog = catalog or default_catalog()
        self._seed = seed
        self._lock = threading.Lock()
        self._free: dict[tuple[str, str], int] = {}
        self.zones: dict[str, str] = {}            # zone -> region
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._free.clear()
            for o in self._catalog.for_provider(self.provider):
                self.zones[o.zone] = o.region
                key = (o.zone, o.instance_type)
                if key not in self._free:
                    self._free[key] = self._seed(self._catalog.instance_type(self.provider, o.instance_type))

    def offered(self, zone: str, instance_type: str) -> bool:
        return (zone, instance_type) in self._free

    def free(self, zone: str, instance_type: str) -> int:
        with self._lock:
            return self._free.get((zone, instance_type), 0)

    def take(self, zone: str, instance_type: str, n: int) -> None:
        with self._lock:
            have = self._free.get((zone, instance_type), 0)
            if n > have:
                raise CapacityExhausted(zone, instance_type, n, have)
            self._free[(zone, instance_type)] = have - n

    def give(self, zone: str, instance_type: str, n: int) -> None:
        with self._lock:
            if (zone, instance_type) in self._free:
                self._free[(zone, instance_type)] += n

    def set_free(self, n: int, zone: str | None = None, instance_type: str | None = None,
                 region: str | None = None) -> int:
        """Set the free count of every matching pool (a fault: capacity exhaustion is ``n=0``)."""
        hit = 0
        with self._lock:
            for (z, t) in self._free:
                if (zone is None or z == zone) and (instance_type is None or t == instance_type) and (
                        region is None or self.zones.get(z) == region):
                    self._free[(z, t)] = n
                    hit += 1
        return hit

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._free)
