"""The one interface every cloud adapter implements, in the spirit of Karpenter's CloudProvider.

Questions (offerings, capacity, nodes, health) are apart from side effects (create, delete), as in
SkyPilot's clouds/ vs provision/ split; placement only ever sees the questions' answers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from providers.capabilities import (
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
from providers.model import CapacityReport, Node, NodeRequest, ProviderHealth


class Provider(ABC):
    name: str
    endpoint: str

    # -- questions -----------------------------------------------------------------------------
    @abstractmethod
    def offerings(self) -> list[Offering]:
        """What the provider sells now, per (zone, instance type, capacity type), with prices:
        the catalog refreshed from the provider's live API."""

    @abstractmethod
    def capacity(self) -> CapacityReport:
        """Live capacity: free pools, reservations and capacity blocks, quotas with headroom."""

    @abstractmethod
    def list_nodes(self) -> list[Node]:
        """Every node Awan owns at this provider, found by its owner tag/label."""

    @abstractmethod
    def health(self) -> ProviderHealth:
        """Whether the provider (and each configured region) answers."""

    # -- side effects --------------------------------------------------------------------------
    @abstractmethod
    def create_nodes(self, request: NodeRequest) -> list[Node]:
        """Create the nodes of one request, idempotently; raise CapacityError/QuotaError when refused."""

    @abstractmethod
    def delete_nodes(self, nodes: Sequence[Node]) -> None:
        """Delete these nodes; deleting what is already gone is not an error."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients and connections."""

    # -- optional abilities (providers/capabilities.py) -----------------------------------------
    # An adapter has an ability when it implements its Protocol; these accessors are how callers reach
    # it, so a wrapper (the circuit breaker) can hand out a guarded view instead of the adapter itself.
    def supports_placement_groups(self) -> SupportsPlacementGroups | None:
        return self if isinstance(self, SupportsPlacementGroups) else None

    def supports_regional_listing(self) -> SupportsRegionalListing | None:
        return self if isinstance(self, SupportsRegionalListing) else None

    def supports_reservations(self) -> SupportsReservations | None:
        return self if isinstance(self, SupportsReservations) else None

    def supports_capacity_blocks(self) -> SupportsCapacityBlocks | None:
        return self if isinstance(self, SupportsCapacityBlocks) else None

    def supports_future_reservations(self) -> SupportsFutureReservations | None:
        return self if isinstance(self, SupportsFutureReservations) else None

    def supports_queued_resources(self) -> SupportsQueuedResources | None:
        return self if isinstance(self, SupportsQueuedResources) else None

    def supports_scale_sets(self) -> SupportsScaleSets | None:
        return self if isinstance(self, SupportsScaleSets) else None

    def supports_node_pools(self) -> SupportsNodePools | None:
        return self if isinstance(self, SupportsNodePools) else None

    def supports_cluster_networks(self) -> SupportsClusterNetworks | None:
        return self if isinstance(self, SupportsClusterNetworks) else None
