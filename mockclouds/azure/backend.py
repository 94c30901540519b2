"""The fake ARM's behaviour: admission (SKU offered, quota, capacity), VM and Flexible scale-set
lifecycle, async operations, spot eviction. Pure state changes under one lock; no HTTP here.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from mockclouds.azure import skus
from mockclouds.azure.bodies import props_of, redact, zone_of
from mockclouds.azure.models import (
    CREATING,
    DELETING,
    FAILED,
    SUCCEEDED,
    ArmError,
    AsyncOperation,
    ScaleSet,
    VirtualMachine,
    key,
)
from mockclouds.capacity import CapacityExhausted, CapacityLedger
from mockclouds.clock import MockClock
from mockclouds.faults import FaultBook
from mockclouds.requestlog import RequestLog
from providers.catalog import Catalog, default_catalog

# An async operation nobody polls still settles after this long, so resources do not hang in Creating.
_SETTLE_AFTER_S = 2.0


@dataclass(frozen=True, slots=True)
class SkuView:
    facts: skus.SkuFacts
    location: str
    zones: tuple[str, ...]
    spot_capable: bool
    restriction: str | None          # None | "Location" (region down) | "Zone" (sold out)


class AzureBackend:
    """State of one fake Azure subscription set. Implements mockclouds.control.MockBackend."""

    def __init__(self, token: str, catalog: Catalog | None = None) -> None:
        self.token = token
        self.catalog = catalog or default_catalog()
        self.ledger = CapacityLedger("azure", self.catalog)
        self.faults = FaultBook()
        self.requests = RequestLog()   # every API call, its caller and its time (tests read it)
        self.clock = MockClock()     # /_mock/clock; nothing here is dated yet
        self.regions = {r for (p, r) in self.catalog.regions if p == "azure"}
        self._spot_offered = {(o.zone, o.instance_type) for o in self.catalog.for_provider("azure")
                              if o.capacity_type.value == "spot"}
        self._default_limits = skus.default_quota_limits(self.catalog)
        self._lock = threading.RLock()
        self.reset()

    # -- control ---------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self.vms: dict[tuple[str, str, str], VirtualMachine] = {}
            self.scale_sets: dict[tuple[str, str, str], ScaleSet] = {}
            self.operations: dict[str, AsyncOperation] = {}
            self.quota_overrides: dict[tuple[str, str], float] = {}
            self.async_mode = False       # True: PUT/DELETE answer 201/202 + Azure-AsyncOperation
            self.ledger.reset()
            self.faults.clear()
            self.requests.clear()

    def set_quota(self, region: str, name: str, limit: float) -> None:
        with self._lock:
            self.quota_overrides[(region, name)] = float(limit)

    def events(self) -> list[dict[str, Any]]:
        return []

    def inventory(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = [{"kind": "virtualMachine", "id": vm.id, "region": vm.location, "zone": vm.catalog_zone,
                     "instanceType": vm.size, "state": vm.provisioning_state, "spot": vm.spot,
                     "evicted": vm.evicted, "scaleSet": vm.scale_set_id, "tags": dict(vm.tags)}
                    for vm in self.vms.values()]
            rows += [{"kind": "virtualMachineScaleSet", "id": ss.id, "region": ss.location,
                      "zone": ss.catalog_zone, "instanceType": ss.size, "state": ss.provisioning_state,
                      "capacity": ss.capacity, "spot": ss.spot, "tags": dict(ss.tags)}
                     for ss in self.scale_sets.values()]
            return rows

    def preempt(self, region: str | None, zone: str | None, instance_type: str | None,
                spot_only: bool = True) -> list[str]:
        """Evict matching Spot VMs (or, for a revocation, every matching VM). The freed nodes go to the
        cloud's other customers, so the ledger is not refilled: capacity is gone until a reset."""
        hit: list[str] = []
        with self._lock:
            for k, vm in list(self.vms.items()):
                if (region and vm.location != region) or (zone and vm.catalog_zone != zone) or (
                        instance_type and vm.size != instance_type) or (spot_only and not vm.spot):
                    continue
                if not vm.holds_capacity:
                    continue
                hit.append(vm.id)
                if spot_only and vm.eviction_policy == "Deallocate":
                    vm.holds_capacity, vm.evicted = False, True
                    continue
                del self.vms[k]
                ss = self.scale_sets.get(key(vm.sub, vm.resource_group, vm.scale_set_id.rsplit("/", 1)[-1]))
                if vm.scale_set_id and ss is not None:
                    ss.capacity = max(0, ss.capacity - 1)
        return hit

    # -- catalog and quota ----------------------------------------------------------------------
    def check_location(self, location: str) -> None:
        if location not in self.regions:
            raise ArmError(400, "LocationNotAvailableForResourceType",
                           f"The provided location '{location}' is not available for resource type "
                           "'Microsoft.Compute/virtualMachines'.")

    def skus(self, location: str | None) -> list[SkuView]:
        out = []
        for o in self.catalog.for_provider("azure"):
            if o.capacity_type.value != "on-demand" or (location and o.region != location):
                continue
            it = self.catalog.instance_type("azure", o.instance_type)
            restriction = None
            if self.faults.region_down(o.region):
                restriction = "Location"
            elif self.ledger.free(o.zone, o.instance_type) == 0:
                restriction = "Zone"
            out.append(SkuView(skus.facts(it), o.region, (skus.azure_zone(o.zone),),
                               (o.zone, o.instance_type) in self._spot_offered, restriction))
        return out

    def usages(self, location: str) -> list[tuple[str, float, float]]:
        """(name, current vCPUs, limit) per quota of one region, counted live from the VMs."""
        with self._lock:
            used: dict[str, float] = {}
            for vm in self.vms.values():
                if vm.location != location or not vm.holds_capacity:
                    continue
                vcpus = self.catalog.instance_type("azure", vm.size).vcpus
                if vm.spot:
                    used[skus.SPOT_CORES] = used.get(skus.SPOT_CORES, 0) + vcpus
                else:
                    fam = skus.family_of(vm.size)
                    used[fam] = used.get(fam, 0) + vcpus
                    used[skus.TOTAL_CORES] = used.get(skus.TOTAL_CORES, 0) + vcpus
            return [(name, used.get(name, 0.0), self.quota_overrides.get((location, name), limit))
                    for name, limit in self._default_limits.items()]

    def _admit(self, location: str, zone: str | None, size: str, n: int, spot: bool) -> None:
        """Take ``n`` nodes or raise the error ARM would: SkuNotAvailable, quota, AllocationFailed."""
        self.check_location(location)
        czone = skus.catalog_zone(location, zone)
        if (("azure", size) not in self.catalog.instance_types or not self.ledger.offered(czone, size)
                or (spot and (czone, size) not in self._spot_offered)):
            raise ArmError(409, "SkuNotAvailable",
                           f"The requested VM size for resource 'Following SKUs have failed for Capacity "
                           f"Restrictions: {size}' is currently not available in location '{location}'"
                           f"{f' zones {zone!r}' if zone else ''}. Please try another size or deploy to a "
                           "different location or different zone. See https://aka.ms/azureskunotavailable.")
        need = float(self.catalog.instance_type("azure", size).vcpus * n)
        quotas = {name: (used, limit) for name, used, limit in self.usages(location)}
        names = [skus.SPOT_CORES] if spot else [skus.family_of(size), skus.TOTAL_CORES]
        for name in names:
            used, limit = quotas[name]
            if used + need > limit:
                raise ArmError(409, "OperationNotAllowed",
                               f"Operation could not be completed as it results in exceeding approved "
                               f"{skus.family_label(name)} quota. Additional details - Deployment Model: "
                               f"Resource Manager, Location: {location}, Current Limit: {limit:g}, Current "
                               f"Usage: {used:g}, Additional Required: {need:g}, (Minimum) New Limit "
                               f"Required: {used + need:g}. Submit a request for Quota increase.")
        try:
            self.ledger.take(czone, size, n)
        except CapacityExhausted:
            code = "ZonalAllocationFailed" if zone else "AllocationFailed"
            raise ArmError(409, code,
                           f"Allocation failed. We do not have sufficient capacity for the requested VM size "
                           f"{size} in {'zone ' + zone + ' of ' if zone else ''}region {location}. Please try "
                           "to reduce the number of VMs, change the VM size or try again later.") from None

    def _release(self, vm: VirtualMachine) -> None:
        if vm.holds_capacity:
            self.ledger.give(vm.catalog_zone, vm.size, 1)
            vm.holds_capacity = False

    # -- async operations -----------------------------------------------------------------------
    def _operation(self, location: str, error: tuple[str, str] | None, on_done: Any) -> AsyncOperation:
        op = AsyncOperation(str(uuid.uuid4()), location, FAILED if error else SUCCEEDED, error, on_done=on_done)
        self.operations[op.id] = op
        return op

    def poll_operation(self, op_id: str) -> AsyncOperation:
        with self._lock:
            op = self.operations.get(op_id)
            if op is None:
                raise ArmError(404, "NotFound", f"Operation {op_id} was not found.")
            if op.polls_left > 0:
                op.polls_left -= 1          # this poll still reads InProgress
            elif not op.settled:
                self._settle(op)
            return op

    @staticmethod
    def _settle(op: AsyncOperation) -> None:
        op.settled = True
        if op.on_done:
            op.on_done()

    def settle_due(self) -> None:
        """Finish async operations nobody has polled for a while."""
        now = time.time()
        with self._lock:
            for op in self.operations.values():
                if not op.settled and now - op.started > _SETTLE_AFTER_S:
                    self._settle(op)

    # -- virtual machines -----------------------------------------------------------------------
    def put_vm(self, sub: str, rg: str, name: str, body: dict[str, Any],
               scale_set_id: str = "") -> tuple[bool, VirtualMachine, AsyncOperation | None]:
        """Create or update by name. Returns (created, vm, async operation if async mode)."""
        props = props_of(body)
        size = str((props.get("hardwareProfile") or {}).get("vmSize") or "")
        location = str(body.get("location") or "")
        if not size or not location:
            raise ArmError(400, "InvalidParameter",
                           "location and properties.hardwareProfile.vmSize are required.")
        zone = zone_of(body)
        spot = str(props.get("priority") or "Regular") in ("Spot", "Low")
        tags = {str(k): str(v) for k, v in (body.get("tags") or {}).items()}
        with self._lock:
            vm = self.vms.get(key(sub, rg, name))
            if vm is not None and vm.provisioning_state != FAILED:
                if (vm.location, vm.size, vm.zone, vm.spot) != (location, size, zone, spot):
                    raise ArmError(409, "PropertyChangeNotAllowed",
                                   f"Changing location, vmSize, zones or priority of VM '{name}' is not "
                                   "allowed here; delete and recreate it.")
                vm.tags = tags
                return False, vm, None
            created = vm is None
            vm = VirtualMachine(sub, rg, name, location, zone, size, spot,
                                str(props.get("evictionPolicy") or "Deallocate") if spot else "",
                                tags, redact(props), scale_set_id)
            try:
                self._admit(location, zone, size, 1, spot)
            except ArmError as e:
                if not self.async_mode or e.code not in ("AllocationFailed", "ZonalAllocationFailed"):
                    raise
                # Async mode: as in Azure, the VM resource exists and ends Failed; the operation says why.
                vm.provisioning_state, vm.holds_capacity, vm.error = CREATING, False, (e.code, e.message)
                self.vms[key(sub, rg, name)] = vm
                return created, vm, self._operation(location, vm.error, lambda: self._fail(vm))
            self.vms[key(sub, rg, name)] = vm
            if not self.async_mode:
                return created, vm, None
            vm.provisioning_state = CREATING
            return created, vm, self._operation(location, None, lambda: setattr(vm, "provisioning_state", SUCCEEDED))

    @staticmethod
    def _fail(vm: VirtualMachine) -> None:
        vm.provisioning_state = FAILED

    def get_vm(self, sub: str, rg: str, name: str) -> VirtualMachine:
        with self._lock:
            vm = self.vms.get(key(sub, rg, name))
        if vm is None:
            raise ArmError(404, "ResourceNotFound",
                           f"The Resource 'Microsoft.Compute/virtualMachines/{name}' under resource group "
                           f"'{rg}' was not found.")
        return vm

    def find_vm(self, sub: str, rg: str, name: str) -> VirtualMachine | None:
        with self._lock:
            return self.vms.get(key(sub, rg, name))

    def delete_vm(self, sub: str, rg: str, name: str) -> AsyncOperation | None:
        """Delete (capacity back at once). Deleting what is gone is a no-op, as in ARM (204)."""
        with self._lock:
            vm = self.vms.get(key(sub, rg, name))
            if vm is None:
                return None
            self._release(vm)
            if vm.scale_set_id:
                ss = self.scale_sets.get(key(sub, rg, vm.scale_set_id.rsplit("/", 1)[-1]))
                if ss is not None:
                    ss.capacity = max(0, ss.capacity - 1)
            if not self.async_mode:
                del self.vms[key(sub, rg, name)]
                return None
            vm.provisioning_state = DELETING
            return self._operation(vm.location, None, lambda: self.vms.pop(key(sub, rg, name), None))

    def list_vms(self, sub: str, rg: str | None, scale_set_id: str = "") -> list[VirtualMachine]:
        sub_l, rg_l, ss_l = sub.lower(), rg.lower() if rg is not None else None, scale_set_id.lower()
        with self._lock:
            return [vm for (s, r, _), vm in self.vms.items()
                    if s == sub_l and (rg_l is None or r == rg_l)
                    and (not ss_l or vm.scale_set_id.lower() == ss_l)]

    # -- Flexible scale sets ----------------------------------------------------------------------
    def put_scale_set(self, sub: str, rg: str, name: str,
                      body: dict[str, Any]) -> tuple[bool, ScaleSet, AsyncOperation | None]:
        props = props_of(body)
        sku = body.get("sku") or {}
        size, location = str(sku.get("name") or ""), str(body.get("location") or "")
        try:
            capacity = int(sku.get("capacity", 0))
        except (TypeError, ValueError):
            raise ArmError(400, "InvalidParameter", "sku.capacity: expected an integer") from None
        if not size or not location or capacity < 0:
            raise ArmError(400, "InvalidParameter", "location, sku.name and a non-negative sku.capacity are required.")
        if str(props.get("orchestrationMode") or "Flexible") != "Flexible":
            raise ArmError(400, "InvalidParameter", "This fake models Flexible orchestration only.")
        profile = props.get("virtualMachineProfile") or {}
        spot = str(profile.get("priority") or "Regular") in ("Spot", "Low")
        zone = zone_of(body)
        tags = {str(k): str(v) for k, v in (body.get("tags") or {}).items()}
        with self._lock:
            ss = self.scale_sets.get(key(sub, rg, name))
            created = ss is None
            if ss is None:
                ss = ScaleSet(sub, rg, name, location, zone, size, 0, spot,
                              str(profile.get("evictionPolicy") or "Deallocate") if spot else "", tags, props)
            elif (ss.location, ss.size, ss.zone, ss.spot) != (location, size, zone, spot):
                raise ArmError(409, "PropertyChangeNotAllowed",
                               f"Changing location, sku.name, zones or priority of scale set '{name}' is not "
                               "allowed here; delete and recreate it.")
            ss.tags, ss.properties = tags, props
            members = self.list_vms(sub, rg, ss.id)
            grow = capacity - len(members)
            error: tuple[str, str] | None = None
            if grow > 0:
                try:
                    self._admit(location, zone, size, grow, spot)
                except ArmError as e:
                    if not self.async_mode or e.code not in ("AllocationFailed", "ZonalAllocationFailed"):
                        raise
                    error, grow = (e.code, e.message), 0
            self.scale_sets[key(sub, rg, name)] = ss
            for _ in range(max(0, grow)):
                self._add_member(ss)
            for vm in members[:max(0, -grow)]:
                self._release(vm)
                del self.vms[key(sub, rg, vm.name)]
            ss.capacity = len(self.list_vms(sub, rg, ss.id))
            if not self.async_mode:
                ss.provisioning_state = SUCCEEDED
                return created, ss, None
            ss.provisioning_state = CREATING if created else "Updating"
            final = FAILED if error else SUCCEEDED
            return created, ss, self._operation(location, error, lambda: setattr(ss, "provisioning_state", final))

    def _add_member(self, ss: ScaleSet) -> None:
        name = f"{ss.name}_{uuid.uuid4().hex[:8]}"
        profile = ss.properties.get("virtualMachineProfile") or {}
        vm = VirtualMachine(ss.sub, ss.resource_group, name, ss.location, ss.zone, ss.size, ss.spot,
                            ss.eviction_policy, dict(ss.tags), redact(profile), scale_set_id=ss.id)
        self.vms[key(ss.sub, ss.resource_group, name)] = vm

    def get_scale_set(self, sub: str, rg: str, name: str) -> ScaleSet:
        with self._lock:
            ss = self.scale_sets.get(key(sub, rg, name))
        if ss is None:
            raise ArmError(404, "ResourceNotFound",
                           f"The Resource 'Microsoft.Compute/virtualMachineScaleSets/{name}' under resource "
                           f"group '{rg}' was not found.")
        return ss

    def delete_scale_set(self, sub: str, rg: str, name: str) -> AsyncOperation | None:
        with self._lock:
            ss = self.scale_sets.get(key(sub, rg, name))
            if ss is None:
                return None
            for vm in self.list_vms(sub, rg, ss.id):
                self._release(vm)
                del self.vms[key(sub, rg, vm.name)]
            if not self.async_mode:
                del self.scale_sets[key(sub, rg, name)]
                return None
            ss.provisioning_state = DELETING
            return self._operation(ss.location, None, lambda: self.scale_sets.pop(key(sub, rg, name), None))

    def list_scale_sets(self, sub: str, rg: str | None) -> list[ScaleSet]:
        with self._lock:
            return [ss for (s, r, _), ss in self.scale_sets.items()
                    if s == sub.lower() and (rg is None or r == rg.lower())]
