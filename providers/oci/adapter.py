"""The OCI adapter: Core Services compute, Identity and Limits through the `oci` SDK, against real OCI or the
OCI mock.

    provider = OCIProvider(cfg)            # cfg: ProviderConfig (tenancy, credentials, endpoint, regions)
    provider.offerings()                   # the catalog kept where ListShapes offers the shape in the AD
    provider.capacity()                    # free hosts (capacity reports), reservations, GPU service limits
    provider.create_nodes(NodeRequest(...))

Beyond the Provider interface, OCI's own abilities as typed capabilities (providers/capabilities.py):
compute capacity reservations (SupportsReservations) and cluster networks, OCI's RDMA-connected instance
pools for training gangs (SupportsClusterNetworks). Every failure is a typed
ProviderError; "Out of host capacity." is a CapacityError, LimitExceeded a QuotaError, 429 ThrottledError.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from providers import fanout
from providers.base import Provider
from providers.capabilities import (
    ClusterNetwork,
    ClusterNetworkRequest,
    Reservation,
    ReservationRequest,
    SupportsClusterNetworks,
    SupportsRegionalListing,
    SupportsReservations,
)
from providers.catalog import CapacityType, Catalog, Offering, default_catalog
from providers.config import ProviderConfig
from providers.errors import CapacityError, InvalidRequestError, NotFoundError, ProviderError, ThrottledError
from providers.model import (
    LABEL_OWNER,
    CapacityPool,
    CapacityReport,
    HealthStatus,
    Node,
    NodeRequest,
    NodeState,
    ProviderHealth,
    Quota,
)
from providers.oci import capacity as cap
from providers.oci.clients import OciClients
from providers.oci.compute import LIVE_STATES, PROVIDER, freeform_tags, retry_token, tag_key, to_node, zone_of
from providers.retry import BACKOFF_BASE_S

IMAGE_OS = "Canonical Ubuntu"          # OCI's GPU images (drivers included) are published per shape under it
SLOW_REGION_MS = 2000.0
_RESERVATION_LIVE = frozenset({"CREATING", "ACTIVE", "UPDATING"})


@dataclass(frozen=True, slots=True)
class ReservationState:
    """A compute capacity reservation of one shape in one availability domain."""

    id: str
    region: str
    zone: str
    instance_type: str
    reserved: int
    used: int
    state: str


@dataclass(frozen=True, slots=True)
class _Probe:
    """One region's health call: its time, or the error the region answered with."""
    ms: float
    error: ProviderError | None


class OCIProvider(Provider, SupportsReservations, SupportsClusterNetworks, SupportsRegionalListing):
    name = PROVIDER

    def __init__(self, cfg: ProviderConfig, *, catalog: Catalog | None = None, owner: str = "awan",
                 image_ids: dict[str, str] | None = None, sleep: Callable[[float], None] = time.sleep,
                 backoff_base: float = BACKOFF_BASE_S) -> None:
        """``owner``: value of the awan-owner freeform tag that marks our instances. ``image_ids``: image OCID
        per region (else the newest GPU image for the shape is looked up). ``sleep``/``backoff_base``: the
        retry clock, injectable for tests."""
        self.cfg = cfg
        self.endpoint = cfg.where
        self.catalog = catalog or default_catalog()
        self.owner = owner
        self.clients = OciClients(cfg, sleep=sleep, backoff_base=backoff_base)
        self._images = dict(image_ids or {})
        self.regions = list(cfg.regions or sorted({o.region for o in self.catalog.for_provider(PROVIDER)}))
        self._ads: dict[str, dict[str, str]] = {}

    def _region_of(self, zone: str) -> str:
        region = self.catalog.zones(PROVIDER).get(zone)
        if region is None:
            raise InvalidRequestError(f"zone {zone!r} is not an OCI availability domain the catalog knows",
                                      provider=PROVIDER, endpoint=self.endpoint)
        return region

    def _ad(self, region: str, zone: str) -> str:
        """The full AD name (tenancy prefix included) of a catalog zone, asked once per region."""
        if region not in self._ads:
            self._ads[region] = cap.availability_domains(self.clients, region)
        ad = self._ads[region].get(zone)
        if ad is None:
            raise InvalidRequestError(f"availability domain {zone} is not in region {region}", provider=PROVIDER,
                                      endpoint=self.endpoint, region=region, code="InvalidParameter")
        return ad

    # -- questions -----------------------------------------------------------------------------
    def offerings(self) -> list[Offering]:
        return [o for r in self.regions for o in cap.region_offerings(self.clients, self.catalog, r)]

    def capacity(self) -> CapacityReport:
        def region_read(region: str) -> tuple[list[CapacityPool], list[Quota]]:
            ads = cap.availability_domains(self.clients, region)
            self._ads[region] = ads
            ad_limits = cap.limits(self.clients, self.catalog, region, ads)
            return (cap.reservation_pools(self.clients, region)
                    + cap.free_pools(self.clients, self.catalog, region, ads, ad_limits),
                    cap.quotas(self.catalog, region, ad_limits))

        pools: list[CapacityPool] = []
        quotas: list[Quota] = []
        for got in fanout.each(self.regions, region_read):   # at once: each region has its own endpoint
            if isinstance(got, Exception):
                raise got
            pools += got[0]
            quotas += got[1]
        return CapacityReport(PROVIDER, tuple(pools), tuple(quotas), cap.taken_at())

    def list_nodes(self) -> list[Node]:
        return [n for region in self.regions for n in self.list_nodes_in(region)]

    def configured_regions(self) -> list[str]:
        return list(self.cfg.regions or [])

    def list_nodes_in(self, region: str) -> list[Node]:
        """SupportsRegionalListing: our instances in the compartment, asked of the region's own endpoint
        (OCI is regional: a client per region), found by the awan-owner freeform tag (ListInstances has no
        tag filter: client side)."""
        return [to_node(inst, region, self.catalog)
                for inst in self.clients.pages("compute", region, "list_instances", self.clients.compartment)
                if inst.lifecycle_state in LIVE_STATES and (inst.freeform_tags or {}).get(LABEL_OWNER) == self.owner]

    def health(self) -> ProviderHealth:
        """One cheap call per region (ListAvailabilityDomains), without retries: health wants the answer now."""
        def probe(region: str) -> _Probe:
            self.clients.client("identity", region)    # building it (SDK import, key load) is not latency
            t0 = time.perf_counter()
            try:
                self._ads[region] = cap.availability_domains(self.clients, region, attempts=1)
            except ProviderError as e:
                return _Probe(0.0, e)
            return _Probe((time.perf_counter() - t0) * 1000, None)

        states: dict[str, HealthStatus] = {}
        messages, latencies = [], []
        for region, got in zip(self.regions, fanout.each(self.regions, probe), strict=True):   # at once
            if isinstance(got, ProviderError):   # its client could not be built
                states[region] = HealthStatus.DOWN
                messages.append(f"{region}: {got.message} [{got.code}]")
            elif isinstance(got, Exception):
                raise got
            elif got.error is not None:   # the region answered with an error
                e = got.error
                states[region] = HealthStatus.DEGRADED if isinstance(e, ThrottledError) else HealthStatus.DOWN
                messages.append(f"{region}: {e.message} [{e.code}]")
            else:
                latencies.append(got.ms)
                states[region] = HealthStatus.DEGRADED if got.ms > SLOW_REGION_MS else HealthStatus.OK
        values = set(states.values())
        status = (HealthStatus.OK if values <= {HealthStatus.OK} else
                  HealthStatus.DOWN if values == {HealthStatus.DOWN} else HealthStatus.DEGRADED)
        return ProviderHealth(PROVIDER, self.endpoint, status, max(latencies, default=0.0), states,
                              "; ".join(messages[:5]))

    # -- side effects --------------------------------------------------------------------------
    def image_id(self, region: str, shape: str) -> str:
        if region not in self._images:
            images = self.clients.call("compute", region, "list_images", self.clients.compartment,
                                       operating_system=IMAGE_OS, shape=shape, sort_by="TIMECREATED",
                                       sort_order="DESC")
            if not images:
                raise InvalidRequestError(f"no {IMAGE_OS} image for {shape}; set image_ids for this region",
                                          provider=PROVIDER, endpoint=self.endpoint, region=region)
            self._images[region] = images[0].id
        return self._images[region]

    def subnet_id(self, region: str) -> str | None:
        """The GPU subnet the stack made (freeform tags awan-owner and awan-role=gpu), if there is one."""
        for s in self.clients.pages("network", region, "list_subnets", self.clients.compartment):
            tags = s.freeform_tags or {}
            if tags.get(LABEL_OWNER) == self.owner and tags.get("awan-role") == "gpu":
                return str(s.id)
        return None

    def _launch_details(self, request: NodeRequest, region: str, name: str) -> Any:
        import oci

        m = oci.core.models
        subnet = self.subnet_id(region)
        return m.LaunchInstanceDetails(
            availability_domain=self._ad(region, request.zone), compartment_id=self.clients.compartment,
            shape=request.instance_type, display_name=name, freeform_tags=freeform_tags(request, self.owner),
            source_details=m.InstanceSourceViaImageDetails(image_id=self.image_id(region, request.instance_type)),
            create_vnic_details=m.CreateVnicDetails(subnet_id=subnet, assign_public_ip=False) if subnet else None,
            capacity_reservation_id=request.reservation_id or None,
            preemptible_instance_config=(m.PreemptibleInstanceConfigDetails(
                preemption_action=m.TerminatePreemptionAction(preserve_boot_volume=False))
                if request.capacity_type is CapacityType.SPOT else None))

    def create_nodes(self, request: NodeRequest) -> list[Node]:
        """One LaunchInstance per node, each with an opc-retry-token derived from the idempotency key: asking
        twice makes them once. Stops at the first refusal (CapacityError/QuotaError); instances already made
        stay, and a later call with the same request adopts them."""
        region = request.region or self._region_of(request.zone)
        nodes = []
        for i in range(request.count):
            key = request.idempotency_key if request.count == 1 else f"{request.idempotency_key}-{i}"
            name = f"{request.pool}-{i}"
            inst = self.clients.call("compute", region, "launch_instance",
                                     self._launch_details(request, region, name), opc_retry_token=retry_token(key))
            nodes.append(to_node(inst, region, self.catalog))
        return nodes

    def delete_nodes(self, nodes: Sequence[Node]) -> None:
        for n in nodes:
            if n.state in (NodeState.TERMINATED, NodeState.PREEMPTED):
                continue
            with contextlib.suppress(NotFoundError):
                self.clients.call("compute", n.region or self._region_of(n.zone), "terminate_instance", n.id)

    def close(self) -> None:
        self.clients.close()

    # -- SupportsReservations: compute capacity reservations ------------------------------------------
    def reserve(self, request: ReservationRequest) -> Reservation:
        """Reserve ``count`` hosts of one shape in one AD (idempotent by the opc-retry-token)."""
        import oci

        m = oci.core.models
        region, key = request.region, request.idempotency_token
        details = m.CreateComputeCapacityReservationDetails(
            compartment_id=self.clients.compartment, availability_domain=self._ad(region, request.zone),
            display_name=f"awan-{key}"[:255],
            freeform_tags={LABEL_OWNER: self.owner, **{tag_key(k): v for k, v in request.tags.items()}},
            instance_reservation_configs=[m.InstanceReservationConfigDetails(instance_shape=request.instance_type,
                                                                             reserved_count=request.count)])
        r = self.clients.call("compute", region, "create_compute_capacity_reservation", details,
                              opc_retry_token=retry_token(key))
        return self._reservation(r, region)

    def release_reservation(self, region: str, reservation_id: str) -> None:
        """Release a reservation; deleting what is gone is not an error."""
        with contextlib.suppress(NotFoundError):
            self.clients.call("compute", region, "delete_compute_capacity_reservation", reservation_id)

    def find_reservation(self, region: str, tag_key_: str, tag_value: str) -> Reservation | None:
        want = tag_key(tag_key_)
        for r in self.clients.pages("compute", region, "list_compute_capacity_reservations", self.clients.compartment):
            if r.lifecycle_state in _RESERVATION_LIVE and (r.freeform_tags or {}).get(want) == tag_value:
                return self._reservation(self.clients.call("compute", region, "get_compute_capacity_reservation",
                                                           r.id), region)
        return None

    def get_capacity_reservation(self, reservation_id: str, region: str) -> ReservationState:
        """OCI's own view of one reservation, with the hosts in use (NotFoundError once deleted)."""
        r = self.clients.call("compute", region, "get_compute_capacity_reservation", reservation_id)
        if r.lifecycle_state == "DELETED":
            raise NotFoundError(f"capacity reservation {reservation_id} is deleted", provider=PROVIDER,
                                endpoint=self.endpoint, region=region)
        c = (r.instance_reservation_configs or [None])[0]
        return ReservationState(r.id, region, zone_of(r.availability_domain), c.instance_shape if c else "",
                                int(r.reserved_instance_count or 0), int(r.used_instance_count or 0),
                                str(r.lifecycle_state))

    @staticmethod
    def _reservation(r: Any, region: str) -> Reservation:
        c = (r.instance_reservation_configs or [None])[0]
        return Reservation(r.id, region, zone_of(r.availability_domain), c.instance_shape if c else "",
                           int(r.reserved_instance_count or 0))

    # -- SupportsClusterNetworks: gangs on the RDMA fabric --------------------------------------------
    def ensure_cluster_network(self, request: ClusterNetworkRequest) -> ClusterNetwork:
        """Create (by display name, idempotent) or resize a cluster network of ``size`` hosts of one shape in
        one AD, its instances tagged (drawing on ``reservation_id`` if given). Growth is all or nothing: a
        stock-out raises CapacityError and changes nothing."""
        import oci

        m = oci.core.models
        name, region, size, key = request.name, request.region, request.size, request.idempotency_token
        ff = {LABEL_OWNER: self.owner, **{tag_key(k): v for k, v in request.tags.items()}}
        found = self._find_cluster_network(name, region)
        if found is not None:
            if len(found.instance_pools or []) and found.instance_pools[0].size != size:
                details = m.UpdateClusterNetworkDetails(instance_pools=[
                    m.UpdateClusterNetworkInstancePoolDetails(id=found.instance_pools[0].id, size=size)])
                found = self.clients.call("management", region, "update_cluster_network", found.id, details)
            return self._cluster_network(found, region)
        config = self._instance_configuration(name, region, request.instance_type, ff, key, request.reservation_id)
        subnet = self.subnet_id(region)
        details = m.CreateClusterNetworkDetails(
            compartment_id=self.clients.compartment, display_name=name, freeform_tags=ff,
            instance_pools=[m.CreateClusterNetworkInstancePoolDetails(
                instance_configuration_id=config, size=size, display_name=f"{name}-pool")],
            placement_configuration=m.ClusterNetworkPlacementConfigurationDetails(
                availability_domain=self._ad(region, request.zone), primary_subnet_id=subnet))
        try:
            net = self.clients.call("management", region, "create_cluster_network", details,
                                    opc_retry_token=retry_token(key))
        except CapacityError:
            self._forget_configuration(config, region)
            raise
        return self._cluster_network(net, region)

    def find_cluster_network(self, region: str, name: str) -> ClusterNetwork | None:
        net = self._find_cluster_network(name, region)
        return None if net is None else self._cluster_network(net, region)

    def delete_cluster_network(self, region: str, name: str) -> None:
        """Terminate a cluster network, its instances and its instance configuration; what is gone is no error."""
        net = self._find_cluster_network(name, region)
        if net is None:
            return
        with contextlib.suppress(NotFoundError):
            self.clients.call("management", region, "terminate_cluster_network", net.id)
        for pool in net.instance_pools or []:
            if pool.instance_configuration_id:
                self._forget_configuration(pool.instance_configuration_id, region)

    def _find_cluster_network(self, name: str, region: str) -> Any | None:
        nets = self.clients.pages("management", region, "list_cluster_networks", self.clients.compartment)
        live = [n for n in nets if n.display_name == name and n.lifecycle_state not in ("TERMINATING", "TERMINATED")]
        if not live:
            return None
        # The summary lacks nothing we need but the pools' sizes: read the cluster network itself.
        return self.clients.call("management", region, "get_cluster_network", live[0].id)

    def _instance_configuration(self, name: str, region: str, shape: str, tags: dict[str, str], key: str,
                                reservation_id: str = "") -> str:
        import oci

        m = oci.core.models
        subnet = self.subnet_id(region)
        launch = m.InstanceConfigurationLaunchInstanceDetails(
            compartment_id=self.clients.compartment, shape=shape, freeform_tags=tags, display_name=name,
            capacity_reservation_id=reservation_id or None,
            source_details=m.InstanceConfigurationInstanceSourceViaImageDetails(image_id=self.image_id(region, shape)),
            create_vnic_details=(m.InstanceConfigurationCreateVnicDetails(subnet_id=subnet, assign_public_ip=False)
                                 if subnet else None))
        details = m.CreateInstanceConfigurationDetails(
            compartment_id=self.clients.compartment, display_name=name, freeform_tags=tags,
            instance_details=m.ComputeInstanceDetails(launch_details=launch))
        config = self.clients.call("management", region, "create_instance_configuration", details,
                                   opc_retry_token=retry_token(f"{key}-config"))
        return str(config.id)

    def _forget_configuration(self, config_id: str, region: str) -> None:
        # Best effort: the caller's own error (or success) is what matters.
        with contextlib.suppress(ProviderError):
            self.clients.call("management", region, "delete_instance_configuration", config_id)

    def _cluster_network(self, net: Any, region: str) -> ClusterNetwork:
        members = self.clients.pages("management", region, "list_cluster_network_instances",
                                     self.clients.compartment, net.id)
        pool = (net.instance_pools or [None])[0]
        shapes = {i.shape for i in members}
        return ClusterNetwork(
            net.id, net.display_name, region, zone_of(net.placement_configuration.availability_domain)
            if net.placement_configuration else "", shapes.pop() if len(shapes) == 1 else "",
            int(pool.size or 0) if pool is not None else 0, str(net.lifecycle_state),
            tuple(i.id for i in members if i.state in LIVE_STATES))
