"""Cloud TPU v2 state: nodes (slices), queued resources and their long-running operations.

A TPU node takes one unit of its slice type (``tpu-v5p-8`` in the catalog, ``v5p-8`` in the API) from
the zone's ledger. A queued resource waits for capacity: ACCEPTED -> ACTIVE when every slice it asks
for fits at once, WAITING_FOR_RESOURCES while it does not, FAILED once its queueing deadline passes.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from dataclasses import dataclass, field

from mockclouds.capacity import CapacityExhausted, CapacityLedger
from mockclouds.gcp.compute import now
from mockclouds.gcp.errors import GoogleApiError, invalid, not_found
from mockclouds.gcp.machines import region_of, tpu_catalog_type

_ID = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")   # fullmatch, as the TPU API does
RESOURCE_EXHAUSTED = 8          # google.rpc.Code


@dataclass
class TpuNode:
    id: str
    project: str
    zone: str
    name: str
    accelerator_type: str       # API name, v5p-8
    runtime_version: str
    labels: dict[str, str]
    spot: bool
    created: str
    state: str = "CREATING"
    queued_resource: str = ""
    holds: bool = True

    @property
    def catalog_type(self) -> str:
        return tpu_catalog_type(self.accelerator_type)

    @property
    def path(self) -> str:
        return f"projects/{self.project}/locations/{self.zone}/nodes/{self.name}"


@dataclass
class QueuedResource:
    project: str
    zone: str
    name: str
    specs: list[tuple[str, dict]]        # (node id, node body) for every slice it asks for
    spot: bool
    created: str
    deadline: float | None               # time.monotonic() after which waiting turns to FAILED
    state: str = "ACCEPTED"
    error: str = ""
    nodes: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"projects/{self.project}/locations/{self.zone}/queuedResources/{self.name}"


@dataclass
class LongRunning:
    name: str                            # projects/p/locations/z/operations/operation-N
    verb: str                            # create | delete
    target: str                          # the resource path it acts on
    kind: str                            # node | queuedResource
    done: bool = False
    error: dict | None = None            # google.rpc.Status
    on_done: list = field(default_factory=list, repr=False)
    result: object = None                # the resource the response carries once done


def _duration_s(text: str) -> float:
    return float(text.rstrip("s")) if text else 0.0


class TpuModel:
    def __init__(self, ledger: CapacityLedger, zones: dict[str, str], lock: threading.RLock) -> None:
        self.ledger, self.zones, self.lock = ledger, zones, lock
        self._ids = itertools.count(1)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.nodes: dict[str, TpuNode] = {}
            self.queued: dict[str, QueuedResource] = {}
            self.operations: dict[str, LongRunning] = {}

    def check_zone(self, zone: str) -> None:
        if zone not in self.zones:
            raise not_found(f"locations/{zone}")

    def accelerator_types(self, zone: str) -> list[str]:
        self.check_zone(zone)
        return sorted(t.removeprefix("tpu-") for (z, t) in self.ledger.snapshot() if z == zone and t.startswith("tpu-"))

    def _lro(self, project: str, zone: str, verb: str, target: str, kind: str) -> LongRunning:
        op = LongRunning(f"projects/{project}/locations/{zone}/operations/operation-{next(self._ids)}",
                         verb, target, kind)
        self.operations[op.name] = op
        return op

    def operation(self, name: str) -> LongRunning:
        with self.lock:
            op = self.operations.get(name)
            if op is None:
                raise not_found(name)
            if not op.done:
                op.done = True
                for cb in op.on_done:
                    cb()
            return op

    # -- nodes ---------------------------------------------------------------------------------
    def _validate_node(self, zone: str, node_id: str, body: dict) -> str:
        if not _ID.fullmatch(node_id or ""):
            raise invalid(f"node_id {node_id!r} must match [a-z]([-a-z0-9]*[a-z0-9])? and be at most 63 characters")
        accel = str(body.get("acceleratorType") or "").rsplit("/", 1)[-1]
        if not self.ledger.offered(zone, tpu_catalog_type(accel)):
            raise invalid(f"Accelerator type {accel!r} is not available in zone {zone}")
        return accel

    def _new_node(self, project: str, zone: str, node_id: str, accel: str, body: dict, qr: str = "") -> TpuNode:
        sched = body.get("schedulingConfig") or {}
        node = TpuNode(str(next(self._ids) + 7_000_000_000_000), project, zone, node_id, accel,
                       str(body.get("runtimeVersion") or ""), {str(k): str(v) for k, v in (body.get("labels") or {}).items()},
                       bool(sched.get("spot") or sched.get("preemptible")), now(), queued_resource=qr)
        self.nodes[node.path] = node
        return node

    def create_node(self, project: str, zone: str, node_id: str, body: dict) -> LongRunning:
        self.check_zone(zone)
        with self.lock:
            accel = self._validate_node(zone, node_id, body)
            path = f"projects/{project}/locations/{zone}/nodes/{node_id}"
            if path in self.nodes:
                raise GoogleApiError(409, "alreadyExists", f"Resource '{path}' already exists")
            op = self._lro(project, zone, "create", path, "node")
            try:
                self.ledger.take(zone, tpu_catalog_type(accel), 1)
            except CapacityExhausted:
                op.error = {"code": RESOURCE_EXHAUSTED,
                            "message": f'There is no more capacity in the zone "{zone}"; you can try in another '
                                       "zone where Cloud TPU Nodes are offered (see "
                                       "https://cloud.google.com/tpu/docs/regions)"}
                return op
            node = self._new_node(project, zone, node_id, accel, body)
            op.result = node
            op.on_done.append(lambda: setattr(node, "state", "READY") if node.state == "CREATING" else None)
            return op

    def get_node(self, project: str, zone: str, node_id: str) -> TpuNode:
        self.check_zone(zone)
        with self.lock:
            node = self.nodes.get(f"projects/{project}/locations/{zone}/nodes/{node_id}")
            if node is None:
                raise not_found(f"projects/{project}/locations/{zone}/nodes/{node_id}")
            return node

    def list_nodes(self, project: str, zone: str) -> list[TpuNode]:
        if zone != "-":
            self.check_zone(zone)
        with self.lock:
            return [n for n in self.nodes.values() if n.project == project and zone in ("-", n.zone)]

    def _drop_node(self, node: TpuNode) -> None:
        self.nodes.pop(node.path, None)
        if node.holds:
            node.holds = False
            self.ledger.give(node.zone, node.catalog_type, 1)

    def delete_node(self, project: str, zone: str, node_id: str) -> LongRunning:
        with self.lock:
            node = self.get_node(project, zone, node_id)
            node.state = "DELETING"
            self._drop_node(node)
            qr = self.queued.get(f"projects/{project}/locations/{zone}/queuedResources/{node.queued_resource}")
            if qr is not None and qr.state == "ACTIVE":
                qr.state = "SUSPENDED"      # a queued resource whose slice is gone is suspended, as in GCP
            return self._lro(project, zone, "delete", node.path, "node")

    def preempt(self, region: str | None, zone: str | None, tpu_type: str | None, spot_only: bool) -> list[str]:
        hit = []
        with self.lock:
            for node in self.nodes.values():
                if (spot_only and not node.spot) or not node.holds or (zone and node.zone != zone) or (
                        region and region_of(node.zone) != region) or (tpu_type and node.catalog_type != tpu_type):
                    continue
                node.holds = False
                self.ledger.give(node.zone, node.catalog_type, 1)
                node.state = "PREEMPTED" if node.spot else "TERMINATED"
                for qr in self.queued.values():
                    if qr.state == "ACTIVE" and node.path.rsplit("/", 1)[-1] in qr.nodes and qr.zone == node.zone:
                        qr.state = "SUSPENDED"
                hit.append(node.id)
        return hit

    # -- queued resources -------------------------------------------------------------------
    def create_queued(self, project: str, zone: str, qr_id: str, body: dict) -> LongRunning:
        self.check_zone(zone)
        with self.lock:
            if not _ID.fullmatch(qr_id or ""):
                raise invalid(f"queued_resource_id {qr_id!r} is not a valid resource id")
            path = f"projects/{project}/locations/{zone}/queuedResources/{qr_id}"
            if path in self.queued:
                raise GoogleApiError(409, "alreadyExists", f"Resource '{path}' already exists")
            specs: list[tuple[str, dict]] = []
            for ns in (body.get("tpu") or {}).get("nodeSpec") or []:
                node = ns.get("node") or {}
                self._validate_node(zone, "a", node)
                multi = ns.get("multisliceParams") or {}
                if multi:
                    prefix, count = str(multi.get("nodeIdPrefix") or qr_id), int(multi.get("nodeCount") or 1)
                    specs += [(f"{prefix}-{i}", node) for i in range(count)]
                else:
                    specs.append((str(ns.get("nodeId") or ""), node))
            if not specs:
                raise invalid("tpu.node_spec: at least one node spec is required")
            for node_id, _ in specs:
                if not _ID.fullmatch(node_id) or f"projects/{project}/locations/{zone}/nodes/{node_id}" in self.nodes:
                    raise invalid(f"tpu.node_spec.node_id {node_id!r} is invalid or already in use")
            until = _duration_s(str((body.get("queueingPolicy") or {}).get("validUntilDuration") or ""))
            qr = QueuedResource(project, zone, qr_id, specs, "spot" in body, now(),
                                time.monotonic() + until if until else None)
            self.queued[path] = qr
            op = self._lro(project, zone, "create", path, "queuedResource")
            op.result = qr
            return op

    def _advance(self, qr: QueuedResource) -> None:
        """Try to provision a waiting queued resource, all slices or none."""
        if qr.state not in ("ACCEPTED", "WAITING_FOR_RESOURCES"):
            return
        taken: list[str] = []
        try:
            for _, body in qr.specs:
                t = tpu_catalog_type(str(body.get("acceleratorType")).rsplit("/", 1)[-1])
                self.ledger.take(qr.zone, t, 1)
                taken.append(t)
        except CapacityExhausted as e:
            for t in taken:
                self.ledger.give(qr.zone, t, 1)
            if qr.deadline is not None and time.monotonic() > qr.deadline:
                qr.state, qr.error = "FAILED", f"no capacity for {e.instance_type} in {qr.zone} before the deadline"
            else:
                qr.state = "WAITING_FOR_RESOURCES"
            return
        for node_id, body in qr.specs:
            accel = str(body.get("acceleratorType")).rsplit("/", 1)[-1]
            body = dict(body, schedulingConfig=dict(body.get("schedulingConfig") or {}, spot=qr.spot))
            node = self._new_node(qr.project, qr.zone, node_id, accel, body, qr=qr.name)
            node.state = "READY"
            qr.nodes.append(node_id)
        qr.state = "ACTIVE"

    def get_queued(self, project: str, zone: str, qr_id: str) -> QueuedResource:
        self.check_zone(zone)
        with self.lock:
            qr = self.queued.get(f"projects/{project}/locations/{zone}/queuedResources/{qr_id}")
            if qr is None:
                raise not_found(f"projects/{project}/locations/{zone}/queuedResources/{qr_id}")
            self._advance(qr)
            return qr

    def list_queued(self, project: str, zone: str) -> list[QueuedResource]:
        if zone != "-":
            self.check_zone(zone)
        with self.lock:
            out = [q for q in self.queued.values() if q.project == project and zone in ("-", q.zone)]
            for q in out:
                self._advance(q)
            return out

    def delete_queued(self, project: str, zone: str, qr_id: str, force: bool) -> LongRunning:
        with self.lock:
            qr = self.get_queued(project, zone, qr_id)
            alive = [self.nodes[p] for p in (f"projects/{project}/locations/{zone}/nodes/{n}" for n in qr.nodes)
                     if p in self.nodes]
            if alive and not force:
                raise GoogleApiError(400, "failedPrecondition",
                                     f"Queued resource {qr.path} still has {len(alive)} node(s); delete them "
                                     "first or set force")
            for node in alive:
                self._drop_node(node)
            del self.queued[qr.path]
            return self._lro(project, zone, "delete", qr.path, "queuedResource")
