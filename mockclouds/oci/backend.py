"""The fake OCI's behaviour: admission (shape offered in the AD, GPU service limit, host capacity), instance,
capacity reservation, instance configuration and cluster network lifecycle. State only, no HTTP.

OCI's own answers are kept: a stock-out is HTTP 500 ``InternalError`` "Out of host capacity.", a service
limit is 400 ``LimitExceeded``, an unknown or foreign OCID is 404 ``NotAuthorizedOrNotFound``.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from mockclouds.capacity import CapacityExhausted, CapacityLedger
from mockclouds.faults import FaultBook
from mockclouds.oci.keys import TENANCY, fake_ocid
from mockclouds.oci.models import (
    CapacityReservation,
    ClusterNetwork,
    Instance,
    InstanceConfiguration,
    OciError,
    not_found,
)
from mockclouds.requestlog import RequestLog
from providers.catalog import Catalog, default_catalog

PROVIDER = "oci"
# Per AD, per GPU limit (units: GPUs). Above the seeded host capacity, so by default capacity runs out first.
DEFAULT_GPU_LIMIT = 256.0
LIVE = ("PROVISIONING", "RUNNING", "STARTING", "STOPPING", "STOPPED")


def gpu_limit_name(gpu_model: str) -> str:
    """The compute service limit that counts a GPU shape's GPUs: ``gpu-h100-count`` for BM.GPU.H100.8."""
    return f"gpu-{gpu_model.lower()}-count"


class OciBackend:
    """State of one fake OCI tenancy. Implements mockclouds.control.MockBackend."""

    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog or default_catalog()
        self.ledger = CapacityLedger(PROVIDER, self.catalog)
        self.faults = FaultBook()
        self.requests = RequestLog()   # every API call, its caller and its time (tests read it)
        self.tenancy = TENANCY
        self.regions = sorted({r for (p, r) in self.catalog.regions if p == PROVIDER})
        self._lock = threading.RLock()
        self.reset()

    # -- control ---------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self.instances: dict[str, Instance] = {}
            self.reservations: dict[str, CapacityReservation] = {}
            self.configs: dict[str, InstanceConfiguration] = {}
            self.networks: dict[str, ClusterNetwork] = {}
            self.retry_tokens: dict[tuple[str, str], str] = {}
            self.limit_overrides: dict[tuple[str, str], float] = {}     # (zone, limit name) -> GPUs
            self.ledger.reset()
            self.faults.clear()
            self.requests.clear()

    def set_limit(self, zone: str, name: str, value: float) -> None:
        with self._lock:
            self.limit_overrides[(zone, name)] = float(value)

    def inventory(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = [{"kind": "instance", "id": i.id, "region": i.region, "zone": i.zone, "instanceType": i.shape,
                     "state": i.state.lower(), "spot": i.preemptible, "clusterNetwork": i.cluster_network_id,
                     "capacityReservation": i.capacity_reservation_id, "tags": dict(i.tags)}
                    for i in self.instances.values()]
            rows += [{"kind": "clusterNetwork", "id": n.id, "region": n.region, "zone": n.zone,
                      "instanceType": self._config_shape(n.instance_configuration_id), "state": n.state.lower(),
                      "size": n.size, "tags": dict(n.tags)} for n in self.networks.values()]
            rows += [{"kind": "capacityReservation", "id": r.id, "region": r.region, "zone": r.zone,
                      "instanceType": r.shape, "state": r.state.lower(), "reserved": r.reserved,
                      "used": self._reservation_used(r.id), "tags": dict(r.tags)}
                     for r in self.reservations.values()]
            return rows

    def preempt(self, region: str | None, zone: str | None, instance_type: str | None,
                spot_only: bool = True) -> list[str]:
        """Terminate matching preemptible instances (or, for a revocation, any matching instance). The hosts
        go to other tenants: the ledger is not refilled. A cluster network keeps its size: it is short."""
        hit: list[str] = []
        with self._lock:
            for i in self.instances.values():
                if (region and i.region != region) or (zone and i.zone != zone) or (
                        instance_type and i.shape != instance_type) or (spot_only and not i.preemptible):
                    continue
                if i.state not in LIVE:
                    continue
                i.state, i.holds_capacity = "TERMINATED", False
                hit.append(i.id)
        return hit

    # -- identity, shapes, limits -----------------------------------------------------------------
    def check_region(self, region: str) -> None:
        if region not in self.regions:
            raise OciError(404, "NotAuthorizedOrNotFound", f"Region {region} is not subscribed by this tenancy.")

    def zones(self, region: str) -> list[str]:
        return sorted({z for z, r in self.ledger.zones.items() if r == region})

    def shapes(self, region: str, zone: str | None) -> list[tuple[str, str]]:
        """(zone, shape) pairs offered in ``region`` (optionally one AD)."""
        return sorted({(o.zone, o.instance_type) for o in self.catalog.for_provider(PROVIDER)
                       if o.region == region and (zone is None or o.zone == zone)})

    def limit_of(self, zone: str, name: str) -> float:
        return self.limit_overrides.get((zone, name), DEFAULT_GPU_LIMIT)

    def limits(self, region: str) -> list[tuple[str, str, float]]:
        """(limit name, zone, value) of every GPU limit in ``region``, AD-scoped as OCI's GPU limits are."""
        names = {gpu_limit_name(self.catalog.instance_type(PROVIDER, s).gpu_model) for _z, s in self.shapes(region, None)}
        return [(n, z, self.limit_of(z, n)) for z in self.zones(region) for n in sorted(names)]

    def used_gpus(self, zone: str, name: str) -> float:
        with self._lock:
            return float(sum(self.catalog.instance_type(PROVIDER, i.shape).gpus for i in self.instances.values()
                             if i.zone == zone and i.state in LIVE and self._limit_for(i.shape) == name))

    def _limit_for(self, shape: str) -> str:
        return gpu_limit_name(self.catalog.instance_type(PROVIDER, shape).gpu_model)

    def capacity_report(self, region: str, zone: str, shapes: list[str]) -> list[tuple[str, int, str]]:
        """(shape, available count, availability status) as CreateComputeCapacityReport answers."""
        out = []
        offered = {s for _z, s in self.shapes(region, zone)}
        for s in shapes:
            if s not in offered:
                out.append((s, 0, "HARDWARE_NOT_SUPPORTED"))
                continue
            free = 0 if self.faults.region_down(region) else self.ledger.free(zone, s)
            out.append((s, free, "AVAILABLE" if free else "OUT_OF_HOST_CAPACITY"))
        return out

    # -- admission ----------------------------------------------------------------------------------
    def _admit(self, region: str, zone: str, shape: str, n: int, reservation_id: str = "",
               preemptible: bool = False) -> None:
        self.check_region(region)
        if (zone, shape) not in set(self.shapes(region, None)):
            raise OciError(400, "InvalidParameter",
                           f"Shape {shape} is not available in availability domain {zone} of {region}.")
        if preemptible:
            raise OciError(400, "InvalidParameter", f"Shape {shape} does not support preemptible capacity.")
        it = self.catalog.instance_type(PROVIDER, shape)
        limit = self._limit_for(shape)
        if self.used_gpus(zone, limit) + n * it.gpus > self.limit_of(zone, limit):
            raise OciError(400, "LimitExceeded",
                           f"The following service limits were exceeded: {limit}. Request a service limit "
                           "increase from the service limits page in the console.")
        if reservation_id:
            r = self.reservations.get(reservation_id)
            if r is None or r.state != "ACTIVE" or r.region != region:
                raise not_found(f"compute capacity reservation {reservation_id}")
            if (r.zone, r.shape) != (zone, shape):
                raise OciError(400, "InvalidParameter",
                               f"Capacity reservation {reservation_id} holds {r.shape} in {r.zone}, not "
                               f"{shape} in {zone}.")
            if self._reservation_used(r.id) + n > r.reserved:
                raise OciError(500, "InternalError", "Out of host capacity.")
            return
        try:
            self.ledger.take(zone, shape, n)
        except CapacityExhausted:
            raise OciError(500, "InternalError", "Out of host capacity.") from None

    def _release(self, i: Instance) -> None:
        if i.holds_capacity and not i.capacity_reservation_id:
            self.ledger.give(i.zone, i.shape, 1)
        i.holds_capacity = False

    def _reservation_used(self, rid: str) -> int:
        return sum(1 for i in self.instances.values() if i.capacity_reservation_id == rid and i.state in LIVE)

    def _idempotent(self, op: str, token: str | None) -> str | None:
        return self.retry_tokens.get((op, token)) if token else None

    def _remember(self, op: str, token: str | None, rid: str) -> None:
        if token:
            self.retry_tokens[(op, token)] = rid

    # -- instances ------------------------------------------------------------------------------------
    def launch(self, region: str, body: dict[str, Any], token: str | None) -> Instance:
        with self._lock:
            if (rid := self._idempotent("LaunchInstance", token)) is not None:
                return self.instances[rid]
            shape, ad = str(body.get("shape") or ""), str(body.get("availabilityDomain") or "")
            if not shape or not ad or not body.get("compartmentId"):
                raise OciError(400, "InvalidParameter", "availabilityDomain, compartmentId and shape are required.")
            zone = ad.rsplit(":", 1)[-1]
            preemptible = bool(body.get("preemptibleInstanceConfig"))
            cr = str(body.get("capacityReservationId") or "")
            self._admit(region, zone, shape, 1, cr, preemptible)
            seed = str(uuid.uuid4())
            inst = Instance(fake_ocid("instance", region, seed), region, zone, shape,
                            str(body.get("displayName") or f"instance-{seed[:8]}"), str(body["compartmentId"]),
                            {str(k): str(v) for k, v in (body.get("freeformTags") or {}).items()},
                            capacity_reservation_id=cr, preemptible=preemptible)
            self.instances[inst.id] = inst
            self._remember("LaunchInstance", token, inst.id)
            return inst

    def get_instance(self, region: str, iid: str) -> Instance:
        with self._lock:
            i = self.instances.get(iid)
        if i is None or i.region != region:
            raise not_found(f"instance {iid}")
        return i

    def list_instances(self, region: str, compartment: str, zone: str | None, state: str | None,
                       reservation_id: str | None = None) -> list[Instance]:
        with self._lock:
            return sorted((i for i in self.instances.values()
                           if i.region == region and i.compartment == compartment and (zone is None or i.zone == zone)
                           and (state is None or i.state == state)
                           and (reservation_id is None or i.capacity_reservation_id == reservation_id)),
                          key=lambda i: (i.created, i.id))

    def terminate(self, region: str, iid: str) -> None:
        with self._lock:
            i = self.get_instance(region, iid)
            if i.state == "TERMINATED":
                return
            self._release(i)
            i.state = "TERMINATED"

    # -- capacity reservations --------------------------------------------------------------------------
    def create_reservation(self, region: str, body: dict[str, Any], token: str | None) -> CapacityReservation:
        with self._lock:
            if (rid := self._idempotent("CreateComputeCapacityReservation", token)) is not None:
                return self.reservations[rid]
            configs = body.get("instanceReservationConfigs") or []
            if not isinstance(configs, list) or len(configs) != 1:
                raise OciError(400, "InvalidParameter", "instanceReservationConfigs: exactly one config is supported.")
            shape, count = str(configs[0].get("instanceShape") or ""), int(configs[0].get("reservedCount") or 0)
            zone = str(body.get("availabilityDomain") or "").rsplit(":", 1)[-1]
            if count <= 0:
                raise OciError(400, "InvalidParameter", "instanceReservationConfigs[0].reservedCount must be positive.")
            self._admit(region, zone, shape, count)        # held apart from the shared pool, like real hosts
            r = CapacityReservation(fake_ocid("capacityreservation", region, str(uuid.uuid4())), region, zone, shape,
                                    count, str(body.get("displayName") or ""), str(body.get("compartmentId") or ""),
                                    {str(k): str(v) for k, v in (body.get("freeformTags") or {}).items()})
            self.reservations[r.id] = r
            self._remember("CreateComputeCapacityReservation", token, r.id)
            return r

    def get_reservation(self, region: str, rid: str) -> CapacityReservation:
        with self._lock:
            r = self.reservations.get(rid)
        if r is None or r.region != region:
            raise not_found(f"compute capacity reservation {rid}")
        return r

    def list_reservations(self, region: str, compartment: str, zone: str | None) -> list[CapacityReservation]:
        with self._lock:
            return [r for r in self.reservations.values() if r.region == region and r.compartment == compartment
                    and r.state == "ACTIVE" and (zone is None or r.zone == zone)]

    def reservation_used(self, rid: str) -> int:
        with self._lock:
            return self._reservation_used(rid)

    def delete_reservation(self, region: str, rid: str) -> None:
        with self._lock:
            r = self.get_reservation(region, rid)
            if r.state == "DELETED":
                return
            if self._reservation_used(rid):
                raise OciError(409, "Conflict", f"Capacity reservation {rid} still has instances.")
            self.ledger.give(r.zone, r.shape, r.reserved)
            r.state = "DELETED"

    # -- instance configurations and cluster networks ----------------------------------------------------
    def create_config(self, region: str, body: dict[str, Any], token: str | None) -> InstanceConfiguration:
        with self._lock:
            if (cid := self._idempotent("CreateInstanceConfiguration", token)) is not None:
                return self.configs[cid]
            details = body.get("instanceDetails") or {}
            if not isinstance(details, dict) or details.get("instanceType") != "compute":
                raise OciError(400, "InvalidParameter", "instanceDetails.instanceType must be 'compute'.")
            c = InstanceConfiguration(fake_ocid("instanceconfiguration", region, str(uuid.uuid4())), region,
                                      str(body.get("displayName") or ""), str(body.get("compartmentId") or ""),
                                      {str(k): str(v) for k, v in (body.get("freeformTags") or {}).items()}, details)
            self.configs[c.id] = c
            self._remember("CreateInstanceConfiguration", token, c.id)
            return c

    def get_config(self, cid: str) -> InstanceConfiguration:
        with self._lock:
            c = self.configs.get(cid)
        if c is None:
            raise not_found(f"instance configuration {cid}")
        return c

    def list_configs(self, region: str, compartment: str) -> list[InstanceConfiguration]:
        with self._lock:
            return [c for c in self.configs.values() if c.region == region and c.compartment == compartment]

    def delete_config(self, cid: str) -> None:
        with self._lock:
            if any(n.instance_configuration_id == cid and n.state != "TERMINATED" for n in self.networks.values()):
                raise OciError(409, "Conflict", f"Instance configuration {cid} is used by a cluster network.")
            self.get_config(cid)
            del self.configs[cid]

    def _config_shape(self, cid: str) -> str:
        c = self.configs.get(cid)
        return str(c.launch.get("shape") or "") if c is not None else ""

    def create_network(self, region: str, body: dict[str, Any], token: str | None) -> ClusterNetwork:
        with self._lock:
            if (nid := self._idempotent("CreateClusterNetwork", token)) is not None:
                return self.networks[nid]
            pools = body.get("instancePools") or []
            placement = body.get("placementConfiguration") or {}
            if not isinstance(pools, list) or len(pools) != 1:
                raise OciError(400, "InvalidParameter", "instancePools: exactly one instance pool is supported.")
            pool = pools[0]
            config = self.get_config(str(pool.get("instanceConfigurationId") or ""))
            size = int(pool.get("size") or 0)
            zone = str(placement.get("availabilityDomain") or "").rsplit(":", 1)[-1]
            shape = self._config_shape(config.id)
            self._admit(region, zone, shape, size, str(config.launch.get("capacityReservationId") or ""))
            seed = str(uuid.uuid4())
            name = str(body.get("displayName") or f"cluster-network-{seed[:8]}")
            n = ClusterNetwork(fake_ocid("clusternetwork", region, seed), region, zone, name,
                               str(body.get("compartmentId") or ""),
                               {str(k): str(v) for k, v in (body.get("freeformTags") or {}).items()},
                               fake_ocid("instancepool", region, seed), str(pool.get("displayName") or name),
                               config.id, size, str(placement.get("primarySubnetId") or ""))
            self.networks[n.id] = n
            for _ in range(size):
                self._add_member(n, config)
            self._remember("CreateClusterNetwork", token, n.id)
            return n

    def _add_member(self, n: ClusterNetwork, config: InstanceConfiguration) -> None:
        launch = config.launch
        raw = launch.get("freeformTags")
        tags = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        seed = str(uuid.uuid4())
        i = Instance(fake_ocid("instance", n.region, seed), n.region, n.zone, self._config_shape(config.id),
                     f"inst-{seed[:5]}-{n.pool_name}", n.compartment, tags, cluster_network_id=n.id,
                     instance_configuration_id=config.id,
                     capacity_reservation_id=str(launch.get("capacityReservationId") or ""))
        self.instances[i.id] = i

    def members(self, n: ClusterNetwork) -> list[Instance]:
        return [i for i in self.instances.values() if i.cluster_network_id == n.id and i.state in LIVE]

    def get_network(self, region: str, nid: str) -> ClusterNetwork:
        with self._lock:
            n = self.networks.get(nid)
        if n is None or n.region != region:
            raise not_found(f"cluster network {nid}")
        return n

    def list_networks(self, region: str, compartment: str) -> list[ClusterNetwork]:
        with self._lock:
            return [n for n in self.networks.values() if n.region == region and n.compartment == compartment]

    def resize_network(self, region: str, nid: str, size: int) -> ClusterNetwork:
        """Grow (all-or-nothing admission of the new hosts) or shrink (newest members terminated first)."""
        with self._lock:
            n = self.get_network(region, nid)
            if n.state == "TERMINATED":
                raise OciError(409, "IncorrectState", f"Cluster network {nid} is terminated.")
            live = self.members(n)
            grow = size - len(live)
            if grow > 0:
                config = self.get_config(n.instance_configuration_id)
                self._admit(region, n.zone, self._config_shape(config.id), grow,
                            str(config.launch.get("capacityReservationId") or ""))
                for _ in range(grow):
                    self._add_member(n, config)
            for i in sorted(live, key=lambda i: i.created, reverse=True)[:max(0, -grow)]:
                self._release(i)
                i.state = "TERMINATED"
            n.size = size
            return n

    def terminate_network(self, region: str, nid: str) -> None:
        with self._lock:
            n = self.get_network(region, nid)
            for i in self.members(n):
                self._release(i)
                i.state = "TERMINATED"
            n.state = "TERMINATED"
