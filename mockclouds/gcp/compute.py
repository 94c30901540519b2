"""Compute Engine state: instances, zone/region operations, compact placement policies, regional quotas.

Capacity comes from the shared CapacityLedger: an instance holds one node of its machine type in its
zone until it is deleted or preempted. Quota usage is derived from the instances that hold capacity,
so it can never drift from them. Failures that GCE reports asynchronously (stock-out, quota) end the
*operation* with an error, exactly as the real API does.
"""

from __future__ import annotations

import builtins
import itertools
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mockclouds.capacity import CapacityExhausted, CapacityLedger
from mockclouds.gcp.errors import GoogleApiError, invalid, not_found
from mockclouds.gcp.filters import parse_filter
from mockclouds.gcp.machines import DEFAULT_LIMITS, MachineSpec, is_tpu, machine_spec, region_of
from providers.catalog import Catalog

if TYPE_CHECKING:
    from mockclouds.gcp.reservations import ReservationModel

_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")   # fullmatch, as GCE does


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Instance:
    id: str
    project: str
    zone: str
    name: str
    spec: MachineSpec
    spot: bool
    termination_action: str
    labels: dict[str, str]
    resource_policies: list[str]
    created: str
    status: str = "PROVISIONING"
    status_message: str = ""
    holds: bool = True        # holds a node (of the ledger, or of its reservation) and counts against quota
    reservation: str = ""     # the specific reservation it consumes (reservationAffinity); not the ledger

    @property
    def region(self) -> str:
        return region_of(self.zone)

    def fields(self) -> Mapping[str, str]:
        return _Fields(self)


class _Fields(Mapping[str, str]):
    """An instance's filterable fields ({'name', 'status', 'labels.<key>'}) read on demand: a list filter
    looks at one or two of them, and a zone's list tests every instance of the zone."""

    __slots__ = ("_inst",)

    def __init__(self, inst: Instance) -> None:
        self._inst = inst

    def __getitem__(self, key: str) -> str:
        got = self.get(key)
        if got is None:
            raise KeyError(key)
        return got

    def get(self, key: str, default: str | None = None) -> str | None:    # type: ignore[override]
        inst = self._inst
        if key == "name":
            return inst.name
        if key == "status":
            return inst.status
        return inst.labels.get(key[len("labels."):], default) if key.startswith("labels.") else default

    def __iter__(self) -> Iterator[str]:
        yield from ("name", "status")
        yield from (f"labels.{k}" for k in self._inst.labels)

    def __len__(self) -> int:
        return 2 + len(self._inst.labels)


@dataclass
class Operation:
    id: str
    name: str
    project: str
    scope: str                # "zones" | "regions"
    location: str             # the zone or region
    op_type: str
    target: str               # path below compute/v1/, e.g. projects/p/zones/z/instances/n
    started: str
    status: str = "RUNNING"
    http_status: int = 0
    errors: list[dict] = field(default_factory=list)
    on_done: list = field(default_factory=list, repr=False)   # callbacks run when it reaches DONE


@dataclass
class PlacementPolicy:
    id: str
    project: str
    region: str
    name: str
    collocation: str
    vm_count: int | None
    created: str


class ComputeModel:
    def __init__(self, ledger: CapacityLedger, catalog: Catalog, lock: threading.RLock) -> None:
        self.ledger, self.catalog, self.lock = ledger, catalog, lock
        self.specs: dict[str, MachineSpec] = {}
        self.zone_types: dict[str, list[str]] = {}
        for o in catalog.for_provider("gcp"):
            if is_tpu(o.instance_type):
                continue
            if o.instance_type not in self.specs:
                self.specs[o.instance_type] = machine_spec(catalog.instance_type("gcp", o.instance_type))
            types = self.zone_types.setdefault(o.zone, [])
            if o.instance_type not in types:
                types.append(o.instance_type)
        self.zones = dict(sorted(catalog.zones("gcp").items()))       # zone -> region
        self.regions = sorted(set(self.zones.values()))
        self._ids = itertools.count(1)
        self.reservations: ReservationModel | None = None     # set by GCPBackend (they share the lock)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.instances: dict[tuple[str, str, str], Instance] = {}
            self.operations: dict[str, Operation] = {}
            self.request_ids: dict[tuple[str, str], str] = {}
            self.policies: dict[tuple[str, str, str], PlacementPolicy] = {}
            self.limits: dict[tuple[str, str], float] = {}

    def new_id(self) -> str:
        return str(4_000_000_000_000_000_000 + next(self._ids))

    # -- geography and catalog ------------------------------------------------------------------
    def check_zone(self, zone: str) -> str:
        if zone not in self.zones:
            raise not_found(f"zones/{zone}")
        return self.zones[zone]

    def check_region(self, region: str) -> None:
        if region not in self.regions:
            raise not_found(f"regions/{region}")

    def machine_types(self, zone: str) -> list[MachineSpec]:
        self.check_zone(zone)
        return [self.specs[t] for t in self.zone_types.get(zone, [])]

    def accelerator_types(self, zone: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.machine_types(zone):
            out[s.accelerator] = max(out.get(s.accelerator, 0), s.cards)
        return out

    # -- quotas --------------------------------------------------------------------------------
    def set_limit(self, region: str, metric: str, limit: float) -> None:
        with self.lock:
            self.limits[(region, metric)] = float(limit)

    def limit(self, region: str, metric: str) -> float:
        return self.limits.get((region, metric), DEFAULT_LIMITS.get(metric, 0.0))

    @staticmethod
    def _charges(spec: MachineSpec, spot: bool) -> dict[str, float]:
        """What one instance counts against: its GPU metric (PREEMPTIBLE_ for spot) and, on-demand, CPUS."""
        if spot:
            return {"PREEMPTIBLE_" + spec.quota_metric: float(spec.cards)}
        return {spec.quota_metric: float(spec.cards), "CPUS": float(spec.vcpus)}

    def quotas(self, project: str, region: str) -> list[tuple[str, float, float]]:
        self.check_region(region)
        with self.lock:
            usage = dict.fromkeys(DEFAULT_LIMITS, 0.0)
            for i in self.instances.values():
                if i.holds and not i.reservation and i.project == project and i.region == region:
                    for m, n in self._charges(i.spec, i.spot).items():
                        usage[m] = usage.get(m, 0.0) + n
            return [(m, self.limit(region, m), u) for m, u in sorted(usage.items())]

    # -- operations ----------------------------------------------------------------------------
    def _operation(self, project: str, scope: str, location: str, op_type: str, target: str) -> Operation:
        op = Operation(self.new_id(), f"operation-{next(self._ids)}-{op_type}", project, scope, location,
                       op_type, target, now())
        self.operations[op.name] = op
        return op

    def operation(self, project: str, scope: str, location: str, name: str) -> Operation:
        """Read an operation. Work is decided when the call is made; the op reports DONE from the first read,
        so clients see one RUNNING answer (from the insert) and then the outcome."""
        with self.lock:
            op = self.operations.get(name)
            if op is None or op.project != project or op.scope != scope or op.location != location:
                raise not_found(f"projects/{project}/{scope}/{location}/operations/{name}")
            if op.status != "DONE":
                op.status = "DONE"
                for cb in op.on_done:
                    cb()
            return op

    def _idempotent(self, project: str, request_id: str | None) -> Operation | None:
        if not request_id:
            return None
        name = self.request_ids.get((project, request_id))
        return self.operations.get(name) if name else None

    # -- instances -----------------------------------------------------------------------------
    def insert(self, project: str, zone: str, body: dict, request_id: str | None) -> Operation:
        region = self.check_zone(zone)
        with self.lock:
            if (seen := self._idempotent(project, request_id)) is not None:
                return seen
            name = str(body.get("name") or "")
            if not _NAME.fullmatch(name):
                raise invalid(f"Invalid value for field 'resource.name': '{name}'. Must be a match of regex "
                              "'(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'")
            mt = str(body.get("machineType") or "").rsplit("/", 1)[-1]
            if mt not in self.specs or mt not in self.zone_types.get(zone, []):
                raise invalid(f"Invalid value for field 'resource.machineType': '{body.get('machineType')}'. "
                              f"Machine type {mt} does not exist in zone {zone}.")
            if (project, zone, name) in self.instances:
                raise GoogleApiError(409, "alreadyExists",
                                     f"The resource 'projects/{project}/zones/{zone}/instances/{name}' "
                                     "already exists")
            sched = body.get("scheduling") or {}
            spot = sched.get("provisioningModel") == "SPOT" or bool(sched.get("preemptible"))
            policies = [str(p) for p in body.get("resourcePolicies") or []]
            for p in policies:
                if (project, region, p.rsplit("/", 1)[-1]) not in self.policies:
                    raise invalid(f"Invalid value for field 'resource.resourcePolicies[0]': '{p}'. "
                                  "The resource policy does not exist.")
            affinity = body.get("reservationAffinity") or {}
            specific = affinity.get("consumeReservationType") == "SPECIFIC_RESERVATION"
            if specific and self.reservations is not None:      # a missing/mismatched one fails synchronously
                self.reservations.check(project, zone, str((affinity.get("values") or [""])[0]), mt)
            target = f"projects/{project}/zones/{zone}/instances/{name}"
            op = self._operation(project, "zones", zone, "insert", target)
            if request_id:
                self.request_ids[(project, request_id)] = op.name
            spec = self.specs[mt]
            reservation = ""
            if specific and self.reservations is not None:
                got = self.reservations.consume(project, zone, str((affinity.get("values") or [""])[0]))
                if isinstance(got, dict):
                    op.http_status, op.errors = 503, [got]
                    return op
                reservation = got.name
            elif (breach := self._quota_breach(project, region, spec, spot)) is not None:
                op.http_status, op.errors = 403, [breach]
                return op
            elif not self._take(zone, mt):
                op.http_status = 503
                op.errors = [{"code": "ZONE_RESOURCE_POOL_EXHAUSTED",
                              "message": f"The zone 'projects/{project}/zones/{zone}' does not have enough "
                                         "resources available to fulfill the request.  Try a different zone, "
                                         "or try again later."}]
                return op
            inst = Instance(self.new_id(), project, zone, name, spec, spot,
                            str(sched.get("instanceTerminationAction") or "STOP"),
                            {str(k): str(v) for k, v in (body.get("labels") or {}).items()}, policies, now(),
                            reservation=reservation)
            self.instances[(project, zone, name)] = inst
            op.on_done.append(lambda: setattr(inst, "status", "RUNNING") if inst.status == "PROVISIONING" else None)
            return op

    def _take(self, zone: str, machine_type: str) -> bool:
        try:
            self.ledger.take(zone, machine_type, 1)
        except CapacityExhausted:
            return False
        return True

    def _quota_breach(self, project: str, region: str, spec: MachineSpec, spot: bool) -> dict | None:
        used = {m: u for m, _, u in self.quotas(project, region)}
        for metric, need in self._charges(spec, spot).items():
            limit = self.limit(region, metric)
            if used.get(metric, 0.0) + need > limit:
                return {"code": "QUOTA_EXCEEDED",
                        "message": f"Quota '{metric}' exceeded.  Limit: {limit} in region {region}.",
                        "errorDetails": [{"quotaInfo": {"metricName": f"compute.googleapis.com/{metric.lower()}",
                                                        "limitName": f"{metric}-per-project-region",
                                                        "dimensions": {"region": region}, "limit": limit}}]}
        return None

    def get(self, project: str, zone: str, name: str) -> Instance:
        self.check_zone(zone)
        with self.lock:
            inst = self.instances.get((project, zone, name))
            if inst is None:
                raise not_found(f"projects/{project}/zones/{zone}/instances/{name}")
            return inst

    def list(self, project: str, zone: str | None, filter_expr: str | None) -> list[Instance]:
        if zone is not None:
            self.check_zone(zone)
        match = parse_filter(filter_expr)
        with self.lock:
            return [i for i in self.instances.values()
                    if i.project == project and (zone is None or i.zone == zone) and match(i.fields())]

    def delete(self, project: str, zone: str, name: str, request_id: str | None) -> Operation:
        with self.lock:
            if (seen := self._idempotent(project, request_id)) is not None:
                return seen
            inst = self.get(project, zone, name)
            del self.instances[(project, zone, name)]
            self._release(inst)
            op = self._operation(project, "zones", zone, "delete", f"projects/{project}/zones/{zone}/instances/{name}")
            if request_id:
                self.request_ids[(project, request_id)] = op.name
            return op

    def _release(self, inst: Instance) -> None:
        if inst.holds:
            inst.holds = False
            if inst.reservation and self.reservations is not None:
                self.reservations.give(inst.project, inst.zone, inst.reservation)
            else:
                self.ledger.give(inst.zone, inst.spec.name, 1)

    def preempt(self, region: str | None, zone: str | None, machine_type: str | None,
                spot_only: bool) -> builtins.list[str]:     # builtins.: ``list`` here is the method above
        """Reclaim matching instances as GCE does: status TERMINATED, or deleted when the instance asked for
        instanceTerminationAction DELETE; a compute.instances.preempted operation records why."""
        hit: list[str] = []
        with self.lock:
            for key, inst in list(self.instances.items()):
                if (spot_only and not inst.spot) or not inst.holds or (zone and inst.zone != zone) or (
                        region and inst.region != region) or (machine_type and inst.spec.name != machine_type):
                    continue
                inst.holds = False     # reclaimed: the capacity went to someone else, the zone is not refilled
                why = "compute.instances.preempted" if inst.spot else "compute.instances.hostError"
                op = self._operation(inst.project, "zones", inst.zone, why,
                                     f"projects/{inst.project}/zones/{inst.zone}/instances/{inst.name}")
                op.status = "DONE"
                if inst.spot and inst.termination_action == "DELETE":
                    del self.instances[key]
                else:
                    inst.status, inst.status_message = "TERMINATED", "Instance was preempted." if inst.spot else (
                        "Instance terminated: host error.")
                hit.append(inst.id)
        return hit

    # -- compact placement policies ---------------------------------------------------------
    def insert_policy(self, project: str, region: str, body: dict, request_id: str | None) -> Operation:
        self.check_region(region)
        with self.lock:
            if (seen := self._idempotent(project, request_id)) is not None:
                return seen
            name = str(body.get("name") or "")
            if not _NAME.fullmatch(name):
                raise invalid(f"Invalid value for field 'resource.name': '{name}'")
            if (project, region, name) in self.policies:
                raise GoogleApiError(409, "alreadyExists", f"The resource 'projects/{project}/regions/{region}/"
                                     f"resourcePolicies/{name}' already exists")
            gp = body.get("groupPlacementPolicy") or {}
            if gp.get("collocation") not in ("COLLOCATED", "UNSPECIFIED_COLLOCATION", None):
                raise invalid(f"Invalid value for field 'resource.groupPlacementPolicy.collocation': "
                              f"'{gp.get('collocation')}'")
            vm_count = int(gp["vmCount"]) if gp.get("vmCount") else None
            self.policies[(project, region, name)] = PlacementPolicy(
                self.new_id(), project, region, name, gp.get("collocation") or "COLLOCATED", vm_count, now())
            op = self._operation(project, "regions", region, "insert",
                                 f"projects/{project}/regions/{region}/resourcePolicies/{name}")
            if request_id:
                self.request_ids[(project, request_id)] = op.name
            return op

    def get_policy(self, project: str, region: str, name: str) -> PlacementPolicy:
        self.check_region(region)
        with self.lock:
            pol = self.policies.get((project, region, name))
            if pol is None:
                raise not_found(f"projects/{project}/regions/{region}/resourcePolicies/{name}")
            return pol

    def delete_policy(self, project: str, region: str, name: str) -> Operation:
        with self.lock:
            self.get_policy(project, region, name)
            users = [i.name for i in self.instances.values() if any(p.endswith("/" + name) or p == name
                                                                    for p in i.resource_policies)]
            if users:
                raise GoogleApiError(400, "resourceInUseByAnotherResource",
                                     f"The resource_policy '{name}' is already being used by '{users[0]}'")
            del self.policies[(project, region, name)]
            return self._operation(project, "regions", region, "delete",
                                   f"projects/{project}/regions/{region}/resourcePolicies/{name}")
