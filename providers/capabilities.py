"""Optional abilities of a provider, as typed interfaces with dataclass requests and results.

The common ``Provider`` answers questions and creates/deletes nodes. What only some clouds can do
(placement groups, capacity reservations, Capacity Blocks, TPU queued resources, scale sets, node
pools) is declared here, one Protocol per ability. An adapter states what it can do by inheriting
the Protocols (so mypy checks its signatures against them), the registry checks that at registration,
and the engines ask ``capability(provider, SupportsX)``: never a method looked up by name.

Requests carry the idempotency token the cloud honours (EC2 ClientToken, GCE requestId); results
carry the cloud id the engine records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar, runtime_checkable

from providers.catalog.model import CapacityType
from providers.model import Node

# -- placement groups (EC2 cluster placement groups, GCE compact placement policies) -------------


@dataclass(frozen=True, slots=True)
class PlacementGroupRequest:
    region: str
    name: str
    strategy: str = "cluster"
    vm_count: int | None = None          # GCE compact policies may bound the group's size
    tags: dict[str, str] = field(default_factory=dict)
    idempotency_token: str = ""


@dataclass(frozen=True, slots=True)
class PlacementGroup:
    region: str
    name: str
    id: str                              # what instances name when they join: EC2 name, GCE self link


@runtime_checkable
class SupportsRegionalListing(Protocol):
    """Listing one region's nodes where ``list_nodes`` walks every region (EC2 is regional: a stack run of
    one region then asks once, not once per region the adapter serves). Observation lists a provider with
    this region by region (controlplane/reconcile/observing): a slow or failing region is then "unknown"
    alone, and the regions of one cloud are shared among the replicas."""

    def list_nodes_in(self, region: str) -> list[Node]:
        """Every node Awan owns in ``region``, as ``list_nodes`` finds them there."""
        ...

    def configured_regions(self) -> list[str]:
        """The regions the provider's configuration names (``ProviderConfig.regions``); empty when it names
        none (then the adapter serves every catalog region). Observation lists these and the regions the
        store has stacks in, one by one (controlplane/reconcile/observing.scopes)."""
        ...


@runtime_checkable
class SupportsPlacementGroups(Protocol):
    def ensure_placement(self, request: PlacementGroupRequest) -> PlacementGroup:
        """Create the group unless it exists (idempotent by name and token)."""
        ...

    def delete_placement(self, region: str, name: str) -> None:
        """Delete it; one already gone is not an error."""
        ...


# -- capacity reservations (EC2 On-Demand Capacity Reservations) ---------------------------------


@dataclass(frozen=True, slots=True)
class ReservationRequest:
    region: str
    zone: str
    instance_type: str
    count: int
    idempotency_token: str               # EC2 ClientToken: a rerun after a crash gets the same reservation
    tags: dict[str, str] = field(default_factory=dict)
    ends_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Reservation:
    id: str
    region: str
    zone: str
    instance_type: str
    count: int
    capacity_block: bool = False         # launches into it need market type capacity-block
    ultraserver_type: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None


@runtime_checkable
class SupportsReservations(Protocol):
    def reserve(self, request: ReservationRequest) -> Reservation:
        """Reserve capacity; CapacityError when the cloud has none."""
        ...

    def release_reservation(self, region: str, reservation_id: str) -> None:
        """Cancel it (running instances go on as on-demand); already gone is not an error."""
        ...

    def find_reservation(self, region: str, tag_key: str, tag_value: str) -> Reservation | None:
        """The active reservation tagged ``tag_key=tag_value`` (what a killed run may have made)."""
        ...


# -- Capacity Blocks for ML (incl. UltraServers) --------------------------------------------------


@dataclass(frozen=True, slots=True)
class CapacityBlockQuery:
    region: str
    instance_type: str
    count: int = 1
    ultraservers: int = 0                # whole UltraServers for NVL72 types (0: enough for count)
    hours: int = 24
    start_after: datetime | None = None


@dataclass(frozen=True, slots=True)
class CapacityBlockOffer:
    id: str
    region: str
    zone: str
    instance_type: str
    instance_count: int
    starts_at: datetime
    ends_at: datetime
    hours: int
    upfront_fee: float
    ultraserver_type: str = ""
    ultraserver_count: int = 0


@dataclass(frozen=True, slots=True)
class CapacityBlockPurchase:
    """Buy this offering (found by ``find_capacity_blocks``); ``tags`` mark it as ours, so a rerun after
    a crash finds the block instead of buying a second one (PurchaseCapacityBlock takes no token)."""

    offer: CapacityBlockOffer
    tags: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class SupportsCapacityBlocks(Protocol):
    def find_capacity_blocks(self, query: CapacityBlockQuery) -> list[CapacityBlockOffer]: ...

    def purchase_capacity_block_offer(self, purchase: CapacityBlockPurchase) -> Reservation:
        """Buy it; the result is the block's reservation (launch into it with market type capacity-block)."""
        ...


# -- future reservations (GCE) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FutureReservationRequest:
    """Ask for ``count`` VMs of ``instance_type`` in ``zone`` for [starts_at, ends_at). ``reservation_name``
    is the name the cloud gives the reservation it creates at the start (else one it chooses)."""

    zone: str
    name: str
    instance_type: str
    count: int
    starts_at: datetime
    ends_at: datetime
    reservation_name: str = ""
    idempotency_token: str = ""          # GCE requestId
    calendar: bool = False               # GCE calendar mode: GPU VMs for a fixed window, deleted at its end


@dataclass(frozen=True, slots=True)
class FutureReservation:
    zone: str
    name: str
    instance_type: str
    count: int
    starts_at: datetime
    ends_at: datetime
    status: str                          # the cloud's procurement status (APPROVED, FULFILLED, ...)
    reservation_id: str                  # what capacity() reports it under, before and after the start
    delivered: tuple[str, ...] = ()      # the reservations the cloud created at the start


@runtime_checkable
class SupportsFutureReservations(Protocol):
    def request_future_reservation(self, request: FutureReservationRequest) -> FutureReservation:
        """Request it (idempotent by name and token); capacity() then reports a pool dated by its window."""
        ...

    def find_future_reservation(self, zone: str, name: str) -> FutureReservation | None:
        """The future reservation of that name in ``zone``, or None when the cloud has none (a buyer's
        look-up before it requests one again after a crash)."""
        ...


# -- TPU queued resources (GCP) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueuedSlicesRequest:
    zone: str
    name: str
    instance_type: str
    slices: int = 1
    spot: bool = False
    pool: str = ""
    workload: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    valid_for_s: int | None = None


@dataclass(frozen=True, slots=True)
class QueuedSlices:
    zone: str
    name: str
    state: str                           # ACCEPTED, WAITING_FOR_RESOURCES, ACTIVE, FAILED, ...


@runtime_checkable
class SupportsQueuedResources(Protocol):
    def queue_slices(self, request: QueuedSlicesRequest) -> QueuedSlices: ...

    def delete_queued_resource(self, zone: str, name: str) -> None: ...


# -- scale sets (Azure Flexible VMSS) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScaleSetRequest:
    region: str
    name: str
    sku: str
    capacity: int
    spot: bool = False
    zone: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScaleSetState:
    """A Flexible scale set as the cloud reports it, with its member VMs' resource ids."""

    id: str
    name: str
    region: str
    sku: str
    capacity: int
    spot: bool
    provisioning_state: str
    members: tuple[str, ...]


@runtime_checkable
class SupportsScaleSets(Protocol):
    def ensure_scale_set(self, request: ScaleSetRequest) -> ScaleSetState:
        """Create or resize (idempotent PUT by name); CapacityError/QuotaError when refused."""
        ...

    def get_scale_set(self, name: str) -> ScaleSetState:
        """Raises NotFoundError when it does not exist."""
        ...

    def delete_scale_set(self, name: str) -> None: ...


# -- node pools (CoreWeave CKS NodePool) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodePoolRequest:
    name: str
    instance_type: str
    zone: str
    target_nodes: int
    labels: dict[str, str] = field(default_factory=dict)
    capacity_type: CapacityType = CapacityType.ON_DEMAND
    annotations: dict[str, str] = field(default_factory=dict)
    reservation_id: str = ""             # the committed capacity it draws on (a CoreWeave contract)


@dataclass(frozen=True, slots=True)
class NodePoolState:
    name: str
    instance_type: str
    zone: str
    target_nodes: int
    current_nodes: int


@runtime_checkable
class SupportsNodePools(Protocol):
    def ensure_node_pool(self, request: NodePoolRequest) -> NodePoolState: ...

    def node_pool(self, name: str) -> NodePoolState | None: ...

    def remove_node_pool(self, name: str) -> bool:
        """False when it was already gone."""
        ...


# -- cluster networks (OCI: one instance pool on the RDMA fabric, for training gangs) ----------------


@dataclass(frozen=True, slots=True)
class ClusterNetworkRequest:
    region: str
    zone: str
    name: str                            # the network's identity: applying the same name again resizes it
    instance_type: str
    size: int
    idempotency_token: str               # OCI opc-retry-token: a rerun after a crash creates nothing twice
    tags: dict[str, str] = field(default_factory=dict)
    reservation_id: str = ""             # draw the hosts from this capacity reservation


@dataclass(frozen=True, slots=True)
class ClusterNetwork:
    id: str
    name: str
    region: str
    zone: str
    instance_type: str
    size: int
    state: str
    members: tuple[str, ...]


@runtime_checkable
class SupportsClusterNetworks(Protocol):
    def ensure_cluster_network(self, request: ClusterNetworkRequest) -> ClusterNetwork:
        """Create or resize; growth is all or nothing (CapacityError changes nothing)."""
        ...

    def find_cluster_network(self, region: str, name: str) -> ClusterNetwork | None: ...

    def delete_cluster_network(self, region: str, name: str) -> None:
        """Terminate it and its instances; already gone is not an error."""
        ...


CAPABILITIES: tuple[type, ...] = (SupportsPlacementGroups, SupportsReservations, SupportsCapacityBlocks,
                                  SupportsFutureReservations, SupportsQueuedResources, SupportsScaleSets, SupportsNodePools,
                                  SupportsClusterNetworks)

C = TypeVar("C")


def capability_names(provider: object) -> list[str]:
    """What ``provider`` can do beyond the common interface, by Protocol name (for reports and errors)."""
    return [c.__name__ for c in CAPABILITIES if isinstance(provider, c)]
