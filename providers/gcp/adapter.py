"""GCPProvider: Google Cloud behind the common Provider interface.

GPU VMs go through Compute Engine (google-cloud-compute), TPU slices through Cloud TPU v2
(google-cloud-tpu over REST). The same code talks to Google or to mockclouds: endpoint and
credentials come from ProviderConfig (``credentials.anonymous: "true"`` for the fake, else
``credentials.service_account_json`` or Application Default Credentials).

Beyond the interface, the provisioning engine may call:
    ensure_compact_placement_policy(region, name, vm_count=None, idempotency_key="") -> str   # self link
    delete_placement_policy(region, name) -> None
    create_queued_resource(zone, name, instance_type, slices=1, *, spot=False, ...) -> str   # state
    queued_resource_state(zone, name) -> str
    delete_queued_resource(zone, name) -> None
    create_future_reservation(zone, name, instance_type, count, start, end, ...) -> FutureWindow
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import structlog

from providers import fanout
from providers.base import Provider
from providers.capabilities import (
    FutureReservation,
    FutureReservationRequest,
    PlacementGroup,
    PlacementGroupRequest,
    QueuedSlices,
    QueuedSlicesRequest,
    SupportsFutureReservations,
    SupportsPlacementGroups,
    SupportsQueuedResources,
    SupportsRegionalListing,
)
from providers.catalog import CapacityType, Catalog, Offering, default_catalog
from providers.config import ProviderConfig
from providers.errors import (
    ErrorContext,
    InvalidRequestError,
    ProviderError,
    UnavailableError,
)
from providers.gcp.clients import GoogleApis
from providers.gcp.compute import ComputeNodes
from providers.gcp.naming import is_tpu, quota_metric
from providers.gcp.reservations import FutureWindow, Reservations
from providers.gcp.tpu import TpuNodes
from providers.health import region_status, roll_up
from providers.model import (
    CapacityPool,
    CapacityReport,
    HealthStatus,
    Node,
    NodeRequest,
    ProviderHealth,
    Quota,
)

log = structlog.get_logger(__name__)
# Cloud TPU has no API for free capacity or quota headroom; TPU pools advertise this many slices per zone as an
# upper bound (capacity_known=False). A stock-out then surfaces as CapacityError and failover moves on.
TPU_NOMINAL_SLICES = 4


class GCPProvider(Provider, SupportsPlacementGroups, SupportsQueuedResources, SupportsFutureReservations,
                  SupportsRegionalListing):
    name = "gcp"

    def __init__(self, cfg: ProviderConfig, catalog: Catalog | None = None) -> None:
        self.cfg = cfg
        self.api = GoogleApis(cfg)
        self.endpoint = cfg.where
        self.catalog = catalog or default_catalog()
        self.vms = ComputeNodes(self.api, self.catalog)
        self.tpus = TpuNodes(self.api, self.catalog)
        self.reservations = Reservations(self.api)
        known = sorted({o.region for o in self.catalog.for_provider("gcp")})
        self.regions = [r for r in known if cfg.regions is None or r in cfg.regions]

    # -- what the catalog says we may offer -------------------------------------------------
    def _catalog_offerings(self) -> list[Offering]:
        allowed = set(self.regions)
        return [o for o in self.catalog.for_provider("gcp") if o.region in allowed]

    def _tpu_zones(self) -> list[str]:
        return sorted({o.zone for o in self._catalog_offerings() if is_tpu(o.instance_type)})

    # -- questions -----------------------------------------------------------------------------
    def offerings(self) -> list[Offering]:
        """Catalog offerings (with their prices) that the live API confirms: machine types per zone from one
        aggregated list, TPU accelerator types per TPU zone."""
        from google.cloud import compute_v1
        live: set[tuple[str, str]] = set()
        request = compute_v1.AggregatedListMachineTypesRequest(project=self.api.project)
        for _scope, scoped in self.api.call(self.api.compute("MachineTypesClient").aggregated_list, request=request):
            live.update((mt.zone, mt.name) for mt in scoped.machine_types)
        for zone in self._tpu_zones():
            live.update((zone, "tpu-" + t) for t in self.tpus.accelerator_types(zone))
        return [o for o in self._catalog_offerings() if (o.zone, o.instance_type) in live]

    def _region_quotas(self, region: str) -> dict[str, tuple[float, float]]:
        got = self.api.call(self.api.compute("RegionsClient").get, project=self.api.project, region=region, at=region)
        return {q.metric: (q.limit, q.usage) for q in got.quotas}

    def capacity(self) -> CapacityReport:
        """Regional GPU quotas, and per offered (zone, type, capacity type) a pool sized by quota headroom:
        GCE has no free-capacity API, so pools are upper bounds (capacity_known=False). A region that does not
        answer is left out (health() reports it); if none answers the error is raised."""
        quotas: list[Quota] = []
        pools: list[CapacityPool] = []
        by_region: dict[str, list[Offering]] = {}
        for o in self._catalog_offerings():
            if o.capacity_type != CapacityType.RESERVED:
                by_region.setdefault(o.region, []).append(o)
        last_error: ProviderError | None = None
        asked = sorted(by_region)
        for region, got in zip(asked, fanout.each(asked, self._region_quotas), strict=True):   # at once
            if isinstance(got, UnavailableError):
                log.warning("gcp.capacity.region_unavailable", region=region, error=str(got))
                last_error = got
                continue
            if isinstance(got, Exception):
                raise got
            raw, offers = got, by_region[region]
            quotas += self._quota_rows(region, raw, offers)
            pools += [self._pool(o, raw) for o in offers]
        if last_error is not None and not quotas and not pools:
            raise last_error
        now = datetime.now(UTC)
        try:     # dated: reservations and future reservations (not usable before their start)
            pools += self.reservations.pools(set(self.regions), now)
        except UnavailableError as e:
            log.warning("gcp.capacity.reservations_unavailable", error=str(e))
        return CapacityReport("gcp", tuple(pools), tuple(quotas), now)

    def _quota_rows(self, region: str, raw: dict[str, tuple[float, float]], offers: list[Offering]) -> list[Quota]:
        users: dict[str, set[str]] = {}
        for o in offers:
            it = self.catalog.instance_type("gcp", o.instance_type)
            metric = quota_metric(o.instance_type, it.gpu_model, o.capacity_type == CapacityType.SPOT)
            if metric:
                users.setdefault(metric, set()).add(o.instance_type)
        # PREEMPTIBLE_* metrics meter spot apart; CPUS is held against on-demand only (as _pool reads it)
        rows = [Quota("gcp", region, m, "gpus", lim, use, tuple(sorted(users[m])),
                      (CapacityType.SPOT.value,) if m.startswith("PREEMPTIBLE_") else (CapacityType.ON_DEMAND.value,))
                for m, (lim, use) in sorted(raw.items()) if m in users]
        if "CPUS" in raw:
            rows.append(Quota("gcp", region, "CPUS", "vcpus", *raw["CPUS"], (), (CapacityType.ON_DEMAND.value,)))
        return rows

    def _pool(self, o: Offering, raw: dict[str, tuple[float, float]]) -> CapacityPool:
        it = self.catalog.instance_type("gcp", o.instance_type)
        spot = o.capacity_type == CapacityType.SPOT
        if is_tpu(o.instance_type):
            n = TPU_NOMINAL_SLICES
        else:
            metric = quota_metric(o.instance_type, it.gpu_model, spot)
            limit, used = raw.get(metric or "", (0.0, 0.0))
            n = int(max(0.0, limit - used) // max(1, it.gpus))
            if not spot and "CPUS" in raw:
                n = min(n, int(max(0.0, raw["CPUS"][0] - raw["CPUS"][1]) // max(1, it.vcpus)))
        return CapacityPool("gcp", o.region, o.zone, o.instance_type, o.capacity_type, n, capacity_known=False)

    def list_nodes(self) -> list[Node]:
        # One aggregated list for every region's VMs: the cheapest whole answer (list_nodes_in is per region).
        return self.vms.list_owned() + self.tpus.list_owned(self._tpu_zones())

    def configured_regions(self) -> list[str]:
        return list(self.cfg.regions or [])

    def list_nodes_in(self, region: str) -> list[Node]:
        """SupportsRegionalListing: instances.list in each catalog zone of ``region`` (Awan creates VMs in no
        other), then the TPU nodes of its TPU zones; every call names the region, so only its faults count."""
        zones = sorted(z for z, r in self.catalog.zones("gcp").items() if r == region)
        if not zones:
            # Listing no zone would answer "no nodes" for a region we cannot see into: say we cannot.
            raise InvalidRequestError(f"region: no zones of {region!r} in the catalog to list", provider="gcp",
                                      endpoint=self.endpoint, region=region)
        return self.vms.list_owned_in(zones, region) + self.tpus.list_owned([z for z in self._tpu_zones()
                                                                              if z in zones])

    def health(self) -> ProviderHealth:
        """One attempt per region (regions.get), timed; a provider that fails the global zones list is DOWN."""
        # the clients are built first: building them is not the cloud's latency
        zones_client, regions_client = self.api.compute("ZonesClient"), self.api.compute("RegionsClient")
        started = time.monotonic()
        try:
            self.api.call(zones_client.list, project=self.api.project, attempts=1)
        except ProviderError as e:
            ms = (time.monotonic() - started) * 1000
            return roll_up("gcp", self.endpoint, dict.fromkeys(self.regions, region_status(e)), ms, [str(e)])
        regions: dict[str, HealthStatus] = {}
        problems: list[str] = []

        def status(region: str) -> str:
            return str(self.api.call(regions_client.get, project=self.api.project, region=region, at=region,
                                     attempts=1).status)

        for region, got in zip(self.regions, fanout.each(self.regions, status), strict=True):   # at once
            if isinstance(got, ProviderError):
                regions[region] = region_status(got)
                problems.append(f"{region}: {got.message}")
            elif isinstance(got, Exception):
                raise got
            else:
                regions[region] = HealthStatus.OK if got == "UP" else HealthStatus.DOWN
        # The regions were asked at once: the probe's time (zones list, then the slowest region), not a mean.
        ms = (time.monotonic() - started) * 1000
        return roll_up("gcp", self.endpoint, regions, ms, problems)

    # -- side effects --------------------------------------------------------------------------
    def _validate(self, req: NodeRequest) -> None:
        where: ErrorContext = {"provider": "gcp", "endpoint": self.endpoint, "region": req.region}
        if req.count < 1:
            raise InvalidRequestError(f"count: must be at least 1, got {req.count}", **where)
        if ("gcp", req.instance_type) not in self.catalog.instance_types:
            raise InvalidRequestError(f"instance_type: {req.instance_type!r} is not a GCP type in the catalog",
                                      **where)
        if req.capacity_type == CapacityType.RESERVED and not req.reservation_id:
            raise InvalidRequestError("reservation_id: required for capacity type 'reserved'", **where)
        if not any(o.zone == req.zone and o.instance_type == req.instance_type
                   for o in self.catalog.for_provider("gcp")):
            raise InvalidRequestError(f"zone: {req.instance_type} is not offered in {req.zone!r}", **where)
        if is_tpu(req.instance_type) and (req.reservation_id or req.placement_group):
            raise InvalidRequestError("reservation_id/placement_group: not supported for TPU slices", **where)

    def create_nodes(self, request: NodeRequest) -> list[Node]:
        self._validate(request)
        if is_tpu(request.instance_type):
            return self.tpus.create(request)
        if request.reservation_id:      # a future reservation's pool id names the reservation it delivers
            request = dataclasses.replace(request, reservation_id=self.reservations.resolve(
                request.zone, request.reservation_id))
        return self.vms.create(request)

    def delete_nodes(self, nodes: Sequence[Node]) -> None:
        self.tpus.delete([n for n in nodes if is_tpu(n.instance_type)])
        self.vms.delete([n for n in nodes if not is_tpu(n.instance_type)])

    def close(self) -> None:
        self.api.close()

    # -- the typed capabilities (providers/capabilities.py) --------------------------------
    def ensure_placement(self, request: PlacementGroupRequest) -> PlacementGroup:
        link = self.ensure_compact_placement_policy(request.region, request.name, request.vm_count,
                                                    request.idempotency_token)
        return PlacementGroup(request.region, request.name, link)

    def delete_placement(self, region: str, name: str) -> None:
        self.delete_placement_policy(region, name)

    def queue_slices(self, request: QueuedSlicesRequest) -> QueuedSlices:
        state = self.create_queued_resource(request.zone, request.name, request.instance_type, request.slices,
                                            spot=request.spot, pool=request.pool, workload=request.workload,
                                            tags=request.tags, valid_for_s=request.valid_for_s)
        return QueuedSlices(request.zone, request.name, state)

    def request_future_reservation(self, request: FutureReservationRequest) -> FutureReservation:
        w = self.create_future_reservation(request.zone, request.name, request.instance_type, request.count,
                                           request.starts_at, request.ends_at,
                                           reservation_name=request.reservation_name,
                                           idempotency_key=request.idempotency_token, calendar=request.calendar)
        return FutureReservation(w.zone, w.name, w.machine_type, w.total, w.start, w.end, w.status, w.pool_id,
                                 w.delivered)

    def find_future_reservation(self, zone: str, name: str) -> FutureReservation | None:
        w = self.reservations.get_future(zone, name)
        return None if w is None else FutureReservation(w.zone, w.name, w.machine_type, w.total, w.start, w.end,
                                                        w.status, w.pool_id, w.delivered)

    # -- GCP-only capabilities for the provisioning engine ---------------------------------
    def ensure_compact_placement_policy(self, region: str, name: str, vm_count: int | None = None,
                                        idempotency_key: str = "") -> str:
        """A COLLOCATED group-placement policy (compact placement for a training gang); idempotent by name,
        and by ``idempotency_key`` (the requestId of this incarnation) across retries."""
        return self.vms.ensure_placement_policy(region, name, vm_count, idempotency_key)

    def delete_placement_policy(self, region: str, name: str) -> None:
        self.vms.delete_placement_policy(region, name)

    def create_queued_resource(self, zone: str, name: str, instance_type: str, slices: int = 1, *,
                               spot: bool = False, pool: str = "", workload: str = "",
                               tags: dict[str, str] | None = None, valid_for_s: int | None = None) -> str:
        """Queue ``slices`` TPU slices to be provisioned together when capacity frees up; returns the state."""
        if not is_tpu(instance_type):
            raise InvalidRequestError(f"instance_type: queued resources are for TPU types, not {instance_type!r}",
                                      provider="gcp", endpoint=self.endpoint, region=zone.rsplit("-", 1)[0])
        return self.tpus.create_queued_resource(zone, name, instance_type, slices, spot=spot, pool=pool,
                                                workload=workload, tags=tags, valid_for_s=valid_for_s)

    def queued_resource_state(self, zone: str, name: str) -> str:
        return self.tpus.queued_resource_state(zone, name)

    def delete_queued_resource(self, zone: str, name: str) -> None:
        self.tpus.delete_queued_resource(zone, name)

    def create_future_reservation(self, zone: str, name: str, instance_type: str, count: int, start: datetime,
                                  end: datetime, *, reservation_name: str = "",
                                  idempotency_key: str = "", calendar: bool = False) -> FutureWindow:
        """Request ``count`` VMs of ``instance_type`` in ``zone`` for [start, end) (a GCE future
        reservation); capacity() reports it as a pool from ``start``."""
        if ("gcp", instance_type) not in self.catalog.instance_types or is_tpu(instance_type):
            raise InvalidRequestError(f"instance_type: {instance_type!r} is not a GCP VM type in the catalog",
                                      provider="gcp", endpoint=self.endpoint, region=zone.rsplit("-", 1)[0])
        if count < 1 or end <= start:
            raise InvalidRequestError("count/end: need count >= 1 and end after start", provider="gcp",
                                      endpoint=self.endpoint, region=zone.rsplit("-", 1)[0])
        return self.reservations.create_future(zone, name, instance_type, count, start, end,
                                               reservation_name=reservation_name, idempotency_key=idempotency_key,
                                               calendar=calendar)
