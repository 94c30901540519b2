"""A circuit breaker per provider, so one sick cloud cannot stall the reconcile loop.

Closed: calls go through; ``failure_threshold`` consecutive retryable failures (throttled, unavailable)
open it. Open: calls fail at once with UnavailableError for ``reset_after_s``. Half-open: one trial call;
success closes it, failure opens it again. Capacity, quota and request errors are answers, not sickness,
and never trip it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, TypeVar

from providers.base import Provider
from providers.capabilities import (
    CapacityBlockOffer,
    CapacityBlockPurchase,
    CapacityBlockQuery,
    ClusterNetwork,
    ClusterNetworkRequest,
    FutureReservation,
    FutureReservationRequest,
    NodePoolRequest,
    NodePoolState,
    PlacementGroup,
    PlacementGroupRequest,
    QueuedSlices,
    QueuedSlicesRequest,
    Reservation,
    ReservationRequest,
    ScaleSetRequest,
    ScaleSetState,
    SupportsCapacityBlocks,
    SupportsClusterNetworks,
    SupportsFutureReservations,
    SupportsNodePools,
    SupportsPlacementGroups,
    SupportsQueuedResources,
    SupportsRegionalListing,
    SupportsReservations,
    SupportsScaleSets,
)
from providers.catalog.model import Offering
from providers.errors import ProviderError, UnavailableError
from providers.model import CapacityReport, Node, NodeRequest, ProviderHealth

T = TypeVar("T")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass
class CircuitBreaker:
    name: str
    failure_threshold: int = 5
    reset_after_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _admit(self) -> bool:
        with self._lock:
            if self.state is BreakerState.OPEN and self.clock() - self.opened_at >= self.reset_after_s:
                self.state = BreakerState.HALF_OPEN
                return True
            return self.state is not BreakerState.OPEN

    def _record(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self.state, self.failures = BreakerState.CLOSED, 0
                return
            self.failures += 1
            if self.state is BreakerState.HALF_OPEN or self.failures >= self.failure_threshold:
                self.state, self.opened_at = BreakerState.OPEN, self.clock()

    def call(self, fn: Callable[[], T], endpoint: str = "") -> T:
        if not self._admit():
            wait = self.reset_after_s - (self.clock() - self.opened_at)
            raise UnavailableError(f"circuit open after {self.failures} failures; next try in {wait:.0f} s",
                                   provider=self.name, endpoint=endpoint, code="CircuitOpen",
                                   retry_after=max(0.0, wait))
        try:
            result = fn()
        except ProviderError as e:
            self._record(not e.retryable)
            raise
        self._record(True)
        return result


class GuardedProvider(Provider):
    """The same Provider, every call through its breaker, its optional abilities included: each
    ``supports_*`` hands out a guarded view of the adapter's ability (or None when it has none), so
    nothing reaches the cloud around the breaker."""

    def __init__(self, inner: Provider, breaker: CircuitBreaker | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.endpoint = inner.endpoint
        self.breaker = breaker or CircuitBreaker(inner.name)
        self._regional: dict[str, CircuitBreaker] = {}
        self._regional_lock = threading.Lock()

    def _call(self, fn: Callable[[], T]) -> T:
        return self.breaker.call(fn, self.endpoint)

    def offerings(self) -> list[Offering]:
        return self._call(self.inner.offerings)

    def capacity(self) -> CapacityReport:
        return self._call(self.inner.capacity)

    def list_nodes(self) -> list[Node]:
        return self._call(self.inner.list_nodes)

    def health(self) -> ProviderHealth:
        return self._call(self.inner.health)

    def create_nodes(self, request: NodeRequest) -> list[Node]:
        return self._call(lambda: self.inner.create_nodes(request))

    def delete_nodes(self, nodes: Sequence[Node]) -> None:
        self._call(lambda: self.inner.delete_nodes(nodes))

    def close(self) -> None:
        self.inner.close()

    def supports_regional_listing(self) -> SupportsRegionalListing | None:
        cap = self.inner.supports_regional_listing()
        return None if cap is None else _GuardedRegionalListing(cap, self._regional_call)

    def _regional_call(self, region: str, fn: Callable[[], T]) -> T:
        # A breaker per region for regional lists: one sick region must not open the provider's breaker
        # (observation lists region by region so that the others stay known).
        with self._regional_lock:
            breaker = self._regional.get(region)
            if breaker is None:
                breaker = self._regional[region] = CircuitBreaker(
                    f"{self.name}/{region}", self.breaker.failure_threshold, self.breaker.reset_after_s,
                    self.breaker.clock)
        return breaker.call(fn, self.endpoint)

    def supports_placement_groups(self) -> SupportsPlacementGroups | None:
        cap = self.inner.supports_placement_groups()
        return None if cap is None else _GuardedPlacementGroups(cap, self._call)

    def supports_reservations(self) -> SupportsReservations | None:
        cap = self.inner.supports_reservations()
        return None if cap is None else _GuardedReservations(cap, self._call)

    def supports_capacity_blocks(self) -> SupportsCapacityBlocks | None:
        cap = self.inner.supports_capacity_blocks()
        return None if cap is None else _GuardedCapacityBlocks(cap, self._call)

    def supports_future_reservations(self) -> SupportsFutureReservations | None:
        cap = self.inner.supports_future_reservations()
        return None if cap is None else _GuardedFutureReservations(cap, self._call)

    def supports_queued_resources(self) -> SupportsQueuedResources | None:
        cap = self.inner.supports_queued_resources()
        return None if cap is None else _GuardedQueuedResources(cap, self._call)

    def supports_scale_sets(self) -> SupportsScaleSets | None:
        cap = self.inner.supports_scale_sets()
        return None if cap is None else _GuardedScaleSets(cap, self._call)

    def supports_node_pools(self) -> SupportsNodePools | None:
        cap = self.inner.supports_node_pools()
        return None if cap is None else _GuardedNodePools(cap, self._call)

    def supports_cluster_networks(self) -> SupportsClusterNetworks | None:
        cap = self.inner.supports_cluster_networks()
        return None if cap is None else _GuardedClusterNetworks(cap, self._call)


class _Guard(Protocol):
    def __call__(self, fn: Callable[[], T]) -> T: ...


class _RegionGuard(Protocol):
    def __call__(self, region: str, fn: Callable[[], T]) -> T: ...


class _GuardedRegionalListing(SupportsRegionalListing):
    def __init__(self, inner: SupportsRegionalListing, guard: _RegionGuard) -> None:
        self.inner, self.guard = inner, guard

    def list_nodes_in(self, region: str) -> list[Node]:
        return self.guard(region, lambda: self.inner.list_nodes_in(region))

    def configured_regions(self) -> list[str]:
        return self.inner.configured_regions()   # configuration, not a call to the cloud


class _GuardedPlacementGroups(SupportsPlacementGroups):
    def __init__(self, inner: SupportsPlacementGroups, guard: _Guard) -> None:
        self.inner, self.guard = inner, guard

    def ensure_placement(self, request: PlacementGroupRequest) -> PlacementGroup:
        return self.guard(lambda: self.inner.ensure_placement(request))

    def delete_placement(self, region: str, name: str) -> None:
        self.guard(lambda: self.inner.delete_placement(region, name))


class _GuardedReservations(SupportsReservations):
    def __init__(self, inner: SupportsReservations, guard: _Guard) -> None:
        self.inner, self.guard = inner, guard

    def reserve(self, request: ReservationRequest) -> Reservation:
        return self.guard(lambda: self.inner.reserve(request))

    def release_reservation(self, region: str, reservation_id: str) -> None:
        self.guard(lambda: self.inner.release_reservation(region, reservation_id))

    def find_reservation(self, region: str, tag_key: str, tag_value: str) -> Reservation | None:
        return self.guard(lambda: self.inner.find_reservation(region, tag_key, tag_value))


class _GuardedCapacityBlocks(SupportsCapacityBlocks):
    def __init__(self, inner: SupportsCapacityBlocks, guard: _Guard) -> None:
        self.inner, self.guard = inner, guard

    def find_capacity_blocks(self, query: CapacityBlockQuery) -> list[CapacityBlockOffer]:
        return self.guard(lambda: self.inner.find_capacity_blocks(query))

    def purchase_capacity_block_offer(self, purchase: CapacityBlockPurchase) -> Reservation:
        return self.guard(lambda: self.inner.purchase_capacity_block_offer(purchase))


class _GuardedFutureReservations(SupportsFutureReservations):
    def __init__(self, inner: SupportsFutureReservations, guard: _Guard) -> None:
        self.inner, self.guard = inner, guard

    def request_future_reservation(self, request: FutureReservationRequest) -> FutureReservation:
        return self.guard(lambda: self.inner.request_future_reservation(request))

    def find_future_reservation(self, zone: str, name: str) -> FutureReservation | None:
        return self.guard(lambda: self.inner.find_future_reservation(zone, name))


class _GuardedQueuedResources(SupportsQueuedResources):
    def __init__(self, inner: SupportsQueuedResources, guard: _Guard) -> None:
        self.inner, self.guard = inner, guard

    def queue_slices(self, request: QueuedSlicesRequest) -> QueuedSlices:
        return self.guard(lambda: self.inner.queue_slices(request))

    def delete_queued_resource(self, zone: str, name: str) -> None:
        self.guard(lambda: self.inner.delete_queued_resource(zone, name))


class _GuardedScaleSets(SupportsScaleSets):
    def __init__(self, inner: SupportsScaleSets, guard: _Guard) -> None:
        self.inner, self.guard = inner, guard

    def ensure_scale_set(self, request: ScaleSetRequest) -> ScaleSetState:
        return self.guard(lambda: self.inner.ensure_scale_set(request))

    def get_scale_set(self, name: str) -> ScaleSetState:
        return self.guard(lambda: self.inner.get_scale_set(name))

    def delete_scale_set(self, name: str) -> None:
        self.guard(lambda: self.inner.delete_scale_set(name))


class _GuardedClusterNetworks(SupportsClusterNetworks):
    def __init__(self, inner: SupportsClusterNetworks, guard: _Guard) -> None:
        self.inner, self.guard = inner, guard

    def ensure_cluster_network(self, request: ClusterNetworkRequest) -> ClusterNetwork:
        return self.guard(lambda: self.inner.ensure_cluster_network(request))

    def find_cluster_network(self, region: str, name: str) -> ClusterNetwork | None:
        return self.guard(lambda: self.inner.find_cluster_network(region, name))

    def delete_cluster_network(self, region: str, name: str) -> None:
        self.guard(lambda: self.inner.delete_cluster_network(region, name))


class _GuardedNodePools(SupportsNodePools):
    def __init__(self, inner: SupportsNodePools, guard: _Guard) -> None:
        self.inner, self.guard = inner, guard

    def ensure_node_pool(self, request: NodePoolRequest) -> NodePoolState:
        return self.guard(lambda: self.inner.ensure_node_pool(request))

    def node_pool(self, name: str) -> NodePoolState | None:
        return self.guard(lambda: self.inner.node_pool(name))

    def remove_node_pool(self, name: str) -> bool:
        return self.guard(lambda: self.inner.remove_node_pool(name))


def guard_all(providers: Mapping[str, Provider]) -> dict[str, Provider]:
    """Wrap each provider in its breaker once (already guarded ones are kept as they are)."""
    return {n: p if isinstance(p, GuardedProvider) else GuardedProvider(p) for n, p in providers.items()}


def unguarded(provider: Provider) -> Provider:
    """The adapter behind a breaker (health probes must see the cloud as it is now, not the breaker's
    memory of it)."""
    return provider.inner if isinstance(provider, GuardedProvider) else provider
