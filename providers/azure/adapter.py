"""The Azure adapter: Microsoft.Compute through azure-mgmt-compute, real ARM or mockclouds' fake ARM alike.

Every SDK call goes through ``RetryPolicy.call``, which types its errors and retries throttled/unavailable
calls (the SDK's own retry is off). Long-running operations (PUT/DELETE) are waited for with the SDK's
poller; ``polling_interval`` is 0 against plain-http endpoints (mocks), the SDK default otherwise.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from providers import fanout
from providers.azure import resources as res
from providers.azure.client import build_client
from providers.azure.errors import PROVIDER, RetryPolicy, translate
from providers.base import Provider
from providers.capabilities import ScaleSetRequest, ScaleSetState, SupportsRegionalListing, SupportsScaleSets
from providers.catalog import CapacityType, Catalog, Offering, default_catalog
from providers.config import ProviderConfig
from providers.errors import CapacityError, NotFoundError, ProviderError
from providers.health import region_status, roll_up
from providers.model import (
    TAG_OWNER,
    CapacityReport,
    HealthStatus,
    Node,
    NodeRequest,
    ProviderHealth,
)

_SDK_DEFAULT_POLLING_S = 30.0


class AzureProvider(Provider, SupportsScaleSets, SupportsRegionalListing):
    name = PROVIDER

    def __init__(self, cfg: ProviderConfig, *, catalog: Catalog | None = None, credential: Any | None = None,
                 polling_interval: float | None = None, retry_wait_s: float = 0.5) -> None:
        """``credential``: a TokenCredential for real Azure (see client.py); ``polling_interval``: seconds
        between LRO polls (default 0 for http:// endpoints, 30 otherwise, Retry-After wins when given);
        ``retry_wait_s``: first backoff step of the retry loop."""
        self.cfg = cfg
        self.endpoint = cfg.endpoint or "https://management.azure.com"
        self.catalog = catalog or default_catalog()
        self.regions = list(cfg.regions) if cfg.regions else sorted(
            r for (p, r) in self.catalog.regions if p == PROVIDER)
        if polling_interval is None:
            polling_interval = 0.0 if self.endpoint.startswith("http://") else _SDK_DEFAULT_POLLING_S
        self._polling_interval = polling_interval
        self._credential = credential
        self._retry = RetryPolicy(cfg.max_attempts, retry_wait_s)
        self._sdk: Any | None = None

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The ComputeManagementClient, built on first use (importing the SDK is the slow part)."""
        if self._sdk is None:
            self._sdk = build_client(self.cfg, polling_interval=self._polling_interval,
                                     credential=self._credential)
        return self._sdk

    def _call(self, fn: Any, region: str = "") -> Any:
        return self._retry.call(fn, endpoint=self.endpoint, region=region)

    @property
    def _rg(self) -> str:
        return self.cfg.resource_group

    def close(self) -> None:
        if self._sdk is not None:
            self._sdk.close()
            self._sdk = None

    # -- questions --------------------------------------------------------------------------------
    def _sku_infos(self) -> dict[str, list[res.SkuInfo]]:
        """Resource SKUs per configured region. With every region configured, one unfiltered call is
        cheaper than one per region; otherwise ARM's ``location eq`` filter keeps answers small."""
        out: dict[str, list[res.SkuInfo]] = {r: [] for r in self.regions}
        if self.cfg.regions:
            def region_skus(region: str) -> list[res.SkuInfo]:
                skus = self._call(lambda: list(self.client.resource_skus.list(filter=f"location eq '{region}'")),
                                  region)
                return [i for s in skus if (i := res.sku_info(s, region)) is not None]

            for region, got in zip(self.regions, fanout.each(self.regions, region_skus), strict=True):  # at once
                if isinstance(got, Exception):
                    raise got
                out[region] = got
            return out
        for sku in self._call(lambda: list(self.client.resource_skus.list())):
            for loc in sku.locations or []:
                if loc in out and (info := res.sku_info(sku, loc)) is not None:
                    out[loc].append(info)
        return out

    def offerings(self) -> list[Offering]:
        infos = [i for per_region in self._sku_infos().values() for i in per_region]
        return res.offerings(infos, self.catalog)

    def capacity(self) -> CapacityReport:
        pools, quotas = [], []

        def usages_of(region: str) -> list[Any]:
            return self._call(lambda: list(self.client.usage.list(region)), region)   # type: ignore[no-any-return]

        # The SKUs and every region's usages at once: neither needs the other's answer.
        infos_of, asked = fanout.all_of(self._sku_infos, lambda: fanout.each(self.regions, usages_of))
        for region, usages in zip(self.regions, asked, strict=True):
            if isinstance(usages, Exception):
                raise usages
            infos = infos_of[region]
            region_quotas = res.quotas(region, usages, infos)
            quotas += region_quotas
            pools += res.pools([i for i in infos if i.offered], region_quotas)
        return CapacityReport(PROVIDER, tuple(pools), tuple(quotas), datetime.now(UTC))

    def list_nodes(self) -> list[Node]:
        vms = self._call(lambda: list(self.client.virtual_machines.list(self._rg, expand="instanceView")))
        return [res.node(vm, self.catalog) for vm in vms if TAG_OWNER in (vm.tags or {})]

    def configured_regions(self) -> list[str]:
        return list(self.cfg.regions or [])

    def list_nodes_in(self, region: str) -> list[Node]:
        """SupportsRegionalListing: ARM's ListByLocation (the subscription's VMs in ``region``), kept to our
        resource group and tag. That call has no instance views, so a VM's state comes from its provisioning
        state alone: a VM stopped by hand reads Running here (Awan stops none; Spot ones are deleted on
        eviction), where ``list_nodes`` would read it Terminated."""
        rg = f"/resourcegroups/{self._rg}/".lower()   # the client is the subscription's already
        vms = self._call(lambda: list(self.client.virtual_machines.list_by_location(region)), region)
        return [res.node(vm, self.catalog) for vm in vms
                if TAG_OWNER in (vm.tags or {}) and rg in (vm.id or "").lower()]

    def health(self) -> ProviderHealth:
        """One cheap regional call (the first page of usages) per region, without retries: health wants
        the answer now, not after a backoff."""
        from azure.core.exceptions import AzureError

        states: dict[str, HealthStatus] = {}
        problems: list[str] = []
        client = self.client   # built first (it asks nothing of ARM): building it is not ARM's latency
        started = time.perf_counter()
        asked = fanout.each(self.regions, lambda r: next(iter(client.usage.list(r)), None))   # at once
        for region, got in zip(self.regions, asked, strict=True):
            if isinstance(got, AzureError):
                err = translate(got, endpoint=self.endpoint, region=region)
                states[region] = region_status(err)
                problems.append(f"{region}: {err.message} [{err.code}]")
            elif isinstance(got, Exception):
                raise got
            else:
                states[region] = HealthStatus.OK
        # The regions were asked at once: the time of the slowest, not a sum to divide by their number.
        latency = (time.perf_counter() - started) * 1000
        return roll_up(PROVIDER, self.endpoint, states, latency, problems)

    # -- side effects -----------------------------------------------------------------------------
    def create_nodes(self, request: NodeRequest) -> list[Node]:
        """One VM per node, named ``{pool}-{i}``, by idempotent PUT: asking twice makes them once.

        Stops at the first refusal (CapacityError/QuotaError); VMs already made stay, and a later call
        with the same request adopts them. A VM left Failed by an allocation failure is deleted, so it
        holds nothing and the next attempt starts clean.
        """
        zone = res.arm_zone(request.region, request.zone)
        spot = request.capacity_type is CapacityType.SPOT
        tags = res.node_tags(request)
        subnet = res.subnet_id(self.cfg.subscription or "", self._rg, request.region)
        nodes = []
        for i in range(request.count):
            name = f"{request.pool}-{i}"
            body: dict[str, Any] = {
                "location": request.region, "tags": tags,
                "properties": res.vm_profile(request.instance_type, spot, name, subnet,
                                             self.cfg.secret("ssh_public_key"), request.reservation_id)}
            if zone:
                body["zones"] = [zone]
            try:
                vm = self._call(lambda n=name, b=body: self.client.virtual_machines.begin_create_or_update(
                    self._rg, n, b).result(), request.region)
            except CapacityError:
                self._forget_failed(name, request.region)
                raise
            nodes.append(res.node(vm, self.catalog))
        return nodes

    def _forget_failed(self, name: str, region: str) -> None:
        # Best effort: the capacity error is what the caller needs to see.
        with contextlib.suppress(ProviderError):
            self._call(lambda: self.client.virtual_machines.begin_delete(self._rg, name).result(), region)

    def delete_nodes(self, nodes: Sequence[Node]) -> None:
        for n in nodes:
            rg, name = _rg_and_name(n.id, self._rg, n.name)
            with contextlib.suppress(NotFoundError):
                self._call(lambda g=rg, v=name: self.client.virtual_machines.begin_delete(g, v).result(), n.region)

    # -- Azure-only capabilities for the provisioning engine -------------------------------------
    def ensure_scale_set(self, request: ScaleSetRequest) -> ScaleSetState:
        return self.apply_scale_set(request.region, request.name, request.sku, request.capacity, request.spot,
                                    request.tags, request.zone)

    def apply_scale_set(self, region: str, name: str, sku: str, capacity: int, spot: bool = False,
                        tags: dict[str, str] | None = None, zone: str = "") -> ScaleSetState:
        """Create or resize a Flexible-orchestration VM scale set (idempotent PUT by name) to ``capacity``
        nodes of ``sku``; ``zone`` in catalog form (``eastus-1``). Raises CapacityError/QuotaError when
        ARM refuses the growth."""
        arm_zone = res.arm_zone(region, zone)
        profile = res.vm_profile(sku, spot, name, res.subnet_id(self.cfg.subscription or "", self._rg, region),
                                 self.cfg.secret("ssh_public_key"))
        profile.pop("hardwareProfile")     # a scale set's size is its sku.name
        os_profile = profile["osProfile"]
        os_profile["computerNamePrefix"] = os_profile.pop("computerName")[:15]
        body: dict[str, Any] = {
            "location": region, "tags": {TAG_OWNER: res.OWNER, **(tags or {})},
            "sku": {"name": sku, "tier": "Standard", "capacity": capacity},
            "properties": {"orchestrationMode": "Flexible", "platformFaultDomainCount": 1,
                           "virtualMachineProfile": profile}}
        if arm_zone:
            body["zones"] = [arm_zone]
        ss = self._call(lambda: self.client.virtual_machine_scale_sets.begin_create_or_update(
            self._rg, name, body).result(), region)
        return self._scale_set_state(ss)

    def get_scale_set(self, name: str) -> ScaleSetState:
        ss = self._call(lambda: self.client.virtual_machine_scale_sets.get(self._rg, name))
        return self._scale_set_state(ss)

    def delete_scale_set(self, name: str) -> None:
        """Delete a scale set and its member VMs; deleting what is gone is not an error."""
        with contextlib.suppress(NotFoundError):
            self._call(lambda: self.client.virtual_machine_scale_sets.begin_delete(self._rg, name).result())

    def _scale_set_state(self, ss: Any) -> ScaleSetState:
        # Flexible members are plain VMs that point at their scale set; ARM filters them server-side.
        members = self._call(lambda: list(self.client.virtual_machines.list(
            self._rg, filter=f"'virtualMachineScaleSet/id' eq '{ss.id}'")))
        p = ss.properties
        profile = p.virtual_machine_profile if p is not None else None
        return ScaleSetState(ss.id, ss.name, ss.location, ss.sku.name, int(ss.sku.capacity or 0),
                             res.text(profile.priority) == "Spot" if profile is not None else False,
                             res.text(p.provisioning_state) if p is not None else "",
                             tuple(vm.id for vm in members))


def _rg_and_name(node_id: str, default_rg: str, default_name: str) -> tuple[str, str]:
    """Resource group and VM name from an ARM id (``/subscriptions/../resourceGroups/RG/../NAME``)."""
    parts = node_id.strip("/").split("/")
    lower = [p.lower() for p in parts]
    if "resourcegroups" in lower and len(parts) >= 2:
        return parts[lower.index("resourcegroups") + 1], parts[-1]
    return default_rg, default_name or node_id
