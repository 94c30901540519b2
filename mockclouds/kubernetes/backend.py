"""The fake CKS cluster: a ``Cluster`` (objects, workloads, kubelet) plus the NodePool controller, the
capacity ledger and faults. Implements mockclouds.control.MockBackend; HTTP lives in ``api``.

Every write goes through here so that admission and the controllers run atomically with it.
"""

from __future__ import annotations

from typing import Any

from mockclouds.capacity import CapacityLedger
from mockclouds.clock import MockClock
from mockclouds.faults import FaultBook
from mockclouds.kubernetes.cluster import Cluster
from mockclouds.kubernetes.controller import (
    CLASS_LABEL,
    POOL_LABEL,
    TOPO_REGION,
    TOPO_ZONE,
    TYPE_LABEL,
    NodePoolController,
)
from mockclouds.kubernetes.resources import CONFIGMAPS, NODEPOOLS, NODES, ResourceType
from mockclouds.kubernetes.store import Matcher, Obj
from mockclouds.requestlog import RequestLog
from providers.catalog import Catalog, default_catalog

QUOTA_NAMESPACE, QUOTA_CONFIGMAP = "kube-system", "coreweave-quota"


def quota_key(zone: str, instance_type: str) -> str:
    """ConfigMap keys may hold only [-._a-zA-Z0-9]: ``<zone>.<instance type>``."""
    return f"{zone}.{instance_type}"


class CoreWeaveBackend(Cluster):
    """One fake CKS endpoint spanning every CoreWeave zone of the catalog (a NodePool picks its zone
    with the ``compute.coreweave.com/zone`` label; without it, ``default_zone`` or the first zone offering
    the type)."""

    name = "coreweave"

    def __init__(self, catalog: Catalog | None = None, default_zone: str | None = None) -> None:
        self.catalog = catalog or default_catalog()
        self.ledger = CapacityLedger("coreweave", self.catalog)
        super().__init__(FaultBook())
        self.requests = RequestLog()   # every API call, its caller and its time (tests read it)
        self.clock = MockClock()     # /_mock/clock: contracts (contracts.py) start and end by it
        self.controller = NodePoolController(self.store, self.ledger, self.catalog, default_zone, self.clock)
        self._phases: dict[str, str] = {}      # contract pool -> term phase last applied
        self.reset()

    # -- MockBackend ---------------------------------------------------------------------------
    def reset(self) -> None:
        with self.store.lock:
            self.faults.clear()
            self.requests.clear()
            self.ledger.reset()
            self.clock.reset()
            self._phases.clear()
            self.clear()
            # The org quota CoreWeave grants per (zone, instance type), in nodes. CKS has no API for free
            # capacity; this is the one figure a client can read (see providers/coreweave/capacity.py).
            seed = self.ledger.snapshot()
            self.store.create(CONFIGMAPS, QUOTA_NAMESPACE, {
                "metadata": {"name": QUOTA_CONFIGMAP, "labels": {"app.kubernetes.io/managed-by": "coreweave"}},
                "data": {quota_key(z, t): str(n) for (z, t), n in sorted(seed.items())}})

    def events(self) -> list[dict[str, Any]]:
        return []

    def inventory(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        pools, _ = self.store.list(NODEPOOLS, None)
        for p in pools:
            zone = self.controller.zone_of(p)
            st = p.get("status") or {}
            target, current = int(p["spec"]["targetNodes"]), int(st.get("currentNodes", 0))
            out.append({"kind": "NodePool", "id": p["metadata"]["name"], "region": self.ledger.zones.get(zone, ""),
                        "zone": zone, "instanceType": p["spec"]["instanceType"],
                        "state": "ready" if current == target else "pending",
                        "tags": dict(p["metadata"].get("labels") or {}),
                        "targetNodes": target, "currentNodes": current})
        nodes, _ = self.store.list(NODES, None)
        for n in nodes:
            lab = n["metadata"].get("labels") or {}
            out.append({"kind": "Node", "id": n["metadata"]["name"], "region": lab.get(TOPO_REGION, ""),
                        "zone": lab.get(TOPO_ZONE, ""), "instanceType": lab.get(TYPE_LABEL, ""),
                        "state": "running", "tags": dict(lab)})
        return out

    def preempt(self, region: str | None, zone: str | None, instance_type: str | None,
                spot_only: bool = True) -> list[str]:
        """Delete matching nodes. Their capacity went to someone else (it is not given back), and the pool
        is not refilled until it is written again, so it shows fewer current nodes."""
        gone: dict[str, int] = {}
        ids: list[str] = []
        with self.store.lock:
            nodes, _ = self.store.list(NODES, None)
            for n in nodes:
                lab = n["metadata"].get("labels") or {}
                if (region and lab.get(TOPO_REGION) != region) or (zone and lab.get(TOPO_ZONE) != zone) or \
                        (instance_type and lab.get(TYPE_LABEL) != instance_type) or \
                        (spot_only and lab.get(CLASS_LABEL) != "spot"):
                    continue
                self.store.delete(NODES, "", n["metadata"]["name"])
                ids.append(n["metadata"]["name"])
                if lab.get(POOL_LABEL):
                    gone[lab[POOL_LABEL]] = gone.get(lab[POOL_LABEL], 0) + 1
            reason = "NodesPreempted" if spot_only else "NodesRevoked"
            for pool, k in gone.items():
                self.controller.reconcile(pool, lost=(reason, k))
            self.reconcile()            # pods on the lost nodes fail (NodeLost)
        return ids

    # -- contract terms by the clock (contracts.py) ------------------------------------------------
    def apply_contract_terms(self) -> None:
        """Reconcile every contract-backed pool whose contract moved into or out of its term since last
        time: the mock has no timer on the mock clock, so time is applied before anything is read."""
        with self.store.lock:
            contracts = self.controller.contracts()
            if not contracts and not self._phases:
                return          # the common case: no contracts published, nothing dated
            now = self.clock.now()
            for name in self.controller.contract_pools():
                pool = self.store.try_get(NODEPOOLS, "", name)
                c = contracts.get(self.controller.contract_of(pool or {}))
                phase = "none" if c is None else "before" if now < c.start else "in" if now < c.end else "after"
                if self._phases.get(name) != phase:
                    self._phases[name] = phase
                    self.controller.reconcile(name)
                    self.reconcile()

    def tick(self) -> None:
        self.apply_contract_terms()
        super().tick()

    def get(self, rt: ResourceType, ns: str, name: str) -> Obj:
        self.apply_contract_terms()
        return super().get(rt, ns, name)

    def list(self, rt: ResourceType, ns: str | None, match: Matcher) -> tuple[list[Obj], int]:
        self.apply_contract_terms()
        return super().list(rt, ns, match)

    # -- where a request lands (for region faults) ---------------------------------------------
    def region_of(self, rt: ResourceType, ns: str, name: str, body: Any) -> str | None:
        obj = body if isinstance(body, dict) and body.get("spec") else None
        if obj is None and name:
            obj = self.store.try_get(rt, ns, name)
        if obj is None:
            return None
        if rt is NODEPOOLS:
            try:
                return self.ledger.zones.get(self.controller.zone_of(obj))
            except (AttributeError, TypeError):
                return None
        if rt is NODES:
            return (obj.get("metadata", {}).get("labels") or {}).get(TOPO_REGION)
        return None

    # -- NodePools through the generic verbs -----------------------------------------------------
    def admit(self, rt: ResourceType, body: Obj, old: Obj | None) -> Obj:
        if rt is NODEPOOLS:
            self.controller.admit(body, old)
            return body
        return super().admit(rt, body, old)

    def after_write(self, rt: ResourceType, obj: Obj, created: bool) -> None:
        if rt is NODEPOOLS:
            self.controller.reconcile(obj["metadata"]["name"])
            self.reconcile()

    def after_delete(self, rt: ResourceType, obj: Obj) -> None:
        if rt is NODEPOOLS:
            self.controller.pool_deleted(obj)
        elif rt is NODES:
            self.controller.node_deleted(obj)
        if rt in (NODEPOOLS, NODES):
            self.reconcile()
