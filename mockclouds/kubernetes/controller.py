"""The CKS NodePool controller of the fake: makes the Node objects of each NodePool match
``spec.targetNodes`` as far as the capacity ledger allows, and writes the pool's status.

It runs synchronously inside every NodePool write (tests are deterministic); a pool that cannot be
filled stays short with condition ``AtTarget=False, reason=InsufficientCapacity``, which is how
CoreWeave shows a stock-out. Nodes removed by preemption or revocation are not replaced until the
pool is written again, so a watcher sees the "nodes gone" signal.
"""

from __future__ import annotations

import re
from typing import Any

from mockclouds.capacity import CapacityExhausted, CapacityLedger
from mockclouds.clock import MockClock
from mockclouds.kubernetes.contracts import (
    CONTRACT_LABEL,
    CONTRACTS_CONFIGMAP,
    CONTRACTS_NAMESPACE,
    Contract,
    parse_contracts,
)
from mockclouds.kubernetes.errors import ApiError, invalid
from mockclouds.kubernetes.resources import CONFIGMAPS, NODEPOOLS, NODES
from mockclouds.kubernetes.store import Obj, ObjectStore, now_rfc3339
from providers import nodelabels as L
from providers.catalog import Catalog, InstanceType
from providers.catalog.model import CapacityType
from providers.model import LABEL_POOL

ZONE_LABEL = "compute.coreweave.com/zone"          # chooses the zone of a pool (this fake spans every zone)
POOL_LABEL = "compute.coreweave.com/node-pool"
CLASS_LABEL = "compute.coreweave.com/compute-class"
TYPE_LABEL = "node.coreweave.cloud/type"
NVLINK_LABEL = "ds.coreweave.com/nvlink.domain"
TOPO_ZONE, TOPO_REGION = "topology.kubernetes.io/zone", "topology.kubernetes.io/region"
GPU_RESOURCE = "nvidia.com/gpu"
COMPUTE_CLASSES = ("default", "spot")     # CoreWeave documents "default"; "spot" models its spot offering
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _ordinal(node: Obj, pool: str) -> int:
    tail = node["metadata"]["name"][len(pool) + 1:]
    return int(tail) if tail.isdigit() else -1


class NodePoolController:
    def __init__(self, store: ObjectStore, ledger: CapacityLedger, catalog: Catalog,
                 default_zone: str | None = None, clock: MockClock | None = None) -> None:
        self.store, self.ledger, self.catalog = store, ledger, catalog
        self.default_zone = default_zone
        self.clock = clock or MockClock()

    # -- contracts (contracts.py) ------------------------------------------------------------------
    def contracts(self) -> dict[str, Contract]:
        cm = self.store.try_get(CONFIGMAPS, CONTRACTS_NAMESPACE, CONTRACTS_CONFIGMAP)
        return parse_contracts((cm or {}).get("data"))

    @staticmethod
    def contract_of(obj: Obj) -> str:
        """The contract a NodePool draws on (``spec.reservation``) or a Node belongs to (its label)."""
        spec = obj.get("spec") or {}
        if isinstance(spec, dict) and spec.get("reservation"):
            return str(spec["reservation"])
        return str(((obj.get("metadata") or {}).get("labels") or {}).get(CONTRACT_LABEL) or "")

    def _contract_room(self, c: Contract, pool: str) -> int:
        """Nodes pool ``pool`` may have from contract ``c`` now: none outside the term, else what the other
        pools on the contract leave."""
        if not c.in_term(self.clock.now()):
            return 0
        others, _ = self.store.list(NODES, None, lambda o: (o["metadata"].get("labels") or {}).get(CONTRACT_LABEL)
                                    == c.id and o["metadata"]["labels"].get(POOL_LABEL) != pool, copy_out=False)
        return max(0, c.nodes - len(others))

    def contract_pools(self) -> list[str]:
        pools, _ = self.store.list(NODEPOOLS, None, lambda o: bool(self.contract_of(o)), copy_out=False)
        return [p["metadata"]["name"] for p in pools]

    # -- admission (what CoreWeave's webhook refuses) ------------------------------------------
    def _instance_type(self, name: str) -> InstanceType | None:
        return self.catalog.instance_types.get(("coreweave", name))

    def zone_of(self, pool: Obj) -> str:
        """The pool's zone: its zone label (or spec.zone), else the cluster's default zone when it offers
        the type, else the first catalog zone that offers it ("" when none does)."""
        meta, spec = pool.get("metadata") or {}, pool.get("spec") or {}
        explicit = (meta.get("labels") or {}).get(ZONE_LABEL) or spec.get("zone")
        if explicit:
            return str(explicit)
        it = spec.get("instanceType", "")
        if self.default_zone and self.ledger.offered(self.default_zone, it):
            return self.default_zone
        return next((o.zone for o in self.catalog.for_provider("coreweave") if o.instance_type == it), "")

    def admit(self, new: Obj, old: Obj | None) -> None:
        name = (new.get("metadata") or {}).get("name", "")
        spec = new.get("spec")
        causes: list[tuple[str, str]] = []
        if not isinstance(spec, dict):
            raise invalid(NODEPOOLS.kind, NODEPOOLS.group, name, [("spec", "Required value")])
        if len(name) > 63:      # node names and the node-pool label derive from it
            causes.append(("metadata.name", "Invalid value: must be no more than 63 characters"))
        it = spec.get("instanceType")
        if not isinstance(it, str) or not it:
            causes.append(("spec.instanceType", "Required value"))
        elif self._instance_type(it) is None:
            causes.append(("spec.instanceType", f"Unsupported value: {it!r}: not a CoreWeave instance type"))
        for f in ("targetNodes", "minNodes", "maxNodes"):
            v = spec.get(f)
            if (v is None and f == "targetNodes") or (v is not None and (
                    isinstance(v, bool) or not isinstance(v, int) or v < 0)):
                causes.append((f"spec.{f}", f"Invalid value: {v!r}: must be a non-negative integer"))
        cc = spec.get("computeClass", "default")
        if cc not in COMPUTE_CLASSES:
            causes.append(("spec.computeClass", f"Unsupported value: {cc!r}: supported values: "
                           + ", ".join(COMPUTE_CLASSES)))
        for key in ("nodeLabels", "nodeAnnotations"):
            m = spec.get(key)
            if m is not None and (not isinstance(m, dict) or not all(isinstance(v, str) for v in m.values())):
                causes.append((f"spec.{key}", "must be a map of string to string"))
        taints = spec.get("nodeTaints") or []
        if not isinstance(taints, list) or not all(
                isinstance(t, dict) and t.get("key") and t.get("effect") in _TAINT_EFFECTS for t in taints):
            causes.append(("spec.nodeTaints", "each taint needs a key and an effect of "
                           + ", ".join(_TAINT_EFFECTS)))
        if not causes:
            assert isinstance(it, str)      # no causes: the instanceType check above passed
            zone = self.zone_of(new)
            if not zone or not self.ledger.offered(zone, it):
                causes.append((f"metadata.labels[{ZONE_LABEL}]",
                               f"Invalid value: {zone!r}: instance type {it} is not offered there"))
            elif cc == "spot" and not any(o.zone == zone and o.instance_type == it
                                          and o.capacity_type == CapacityType.SPOT
                                          for o in self.catalog.for_provider("coreweave")):
                causes.append(("spec.computeClass", f"Invalid value: 'spot': no spot {it} in {zone}"))
            if old is not None:
                ospec = old.get("spec") or {}
                if ospec.get("instanceType") != it:
                    causes.append(("spec.instanceType", "Invalid value: field is immutable"))
                elif self.zone_of(old) != zone:
                    causes.append((f"metadata.labels[{ZONE_LABEL}]", "Invalid value: field is immutable"))
            if (cid := self.contract_of(new)) and not causes:
                c = self.contracts().get(cid)
                where = "spec.reservation"
                if c is None:
                    causes.append((where, f"Invalid value: {cid!r}: no such contract"))
                elif (c.zone, c.instance_type) != (zone, it):
                    causes.append((where, f"Invalid value: {cid!r}: the contract is for {c.instance_type} in "
                                          f"{c.zone}, not {it} in {zone}"))
                elif cc == "spot":
                    causes.append(("spec.computeClass", "Invalid value: 'spot': contract capacity is 'default'"))
        if causes:
            raise invalid(NODEPOOLS.kind, NODEPOOLS.group, name, causes)

    # -- reconcile -------------------------------------------------------------------------------
    def pool_nodes(self, pool: str) -> list[Obj]:
        nodes, _ = self.store.list(NODES, None, lambda o: (o["metadata"].get("labels") or {}).get(POOL_LABEL)
                                   == pool)
        return sorted(nodes, key=lambda n: _ordinal(n, pool))

    def reconcile(self, name: str, lost: tuple[str, int] | None = None) -> None:
        """Converge one pool. ``lost`` = (reason, n) when nodes just vanished (preempt/revoke): then
        nothing is replaced and the status says why the pool is short."""
        with self.store.lock:
            pool = self.store.try_get(NODEPOOLS, "", name)
            if pool is None:
                return
            spec = pool["spec"]
            it, zone, target = spec["instanceType"], self.zone_of(pool), int(spec["targetNodes"])
            nodes = self.pool_nodes(name)
            short_reason, message = "", ""
            cid = self.contract_of(pool)
            contract = self.contracts().get(cid) if cid else None
            room = self._contract_room(contract, name) if contract is not None else 0
            if lost is not None:
                short_reason, message = lost[0], f"{lost[1]} node(s) removed by the provider"
            elif cid and len(nodes) > min(target, room):
                # a contract never lends beyond its term: at the end its nodes go
                keep = min(target, room)
                for n in nodes[keep:]:
                    self.store.delete(NODES, "", n["metadata"]["name"])
                nodes = nodes[:keep]
                if contract is None or self.clock.now() >= contract.end:
                    short_reason, message = "ContractEnded", f"contract {cid} has ended; its nodes were removed"
            elif len(nodes) > target:
                for n in nodes[target:]:
                    self.store.delete(NODES, "", n["metadata"]["name"])
                    self.ledger.give(zone, it, 1)
                nodes = nodes[:target]
            elif len(nodes) < target:
                want = target - len(nodes)
                if cid:
                    got = max(0, min(want, room - len(nodes)))
                else:
                    got = min(want, self.ledger.free(zone, it))
                    try:
                        self.ledger.take(zone, it, got)
                    except CapacityExhausted:
                        got = 0
                used = {_ordinal(n, name) for n in nodes}
                for _ in range(got):
                    nodes.append(self._create_node(pool, zone, used))
                if got < want:
                    short_reason = "InsufficientCapacity"
                    message = (f"insufficient capacity for {it} in {zone}: "
                               f"{target - len(nodes)} of {target} node(s) pending")
                    if contract is not None and not contract.in_term(self.clock.now()):
                        when = (f"starts at {contract.start.isoformat()}" if self.clock.now() < contract.start
                                else f"ended at {contract.end.isoformat()}")
                        message = f"contract {cid} {when}: {target - len(nodes)} of {target} node(s) pending"
            self._write_status(pool, len(nodes), target, short_reason, message)

    def pool_deleted(self, pool: Obj) -> None:
        with self.store.lock:
            name = pool["metadata"]["name"]
            zone, it = self.zone_of(pool), pool["spec"]["instanceType"]
            for n in self.pool_nodes(name):
                self.store.delete(NODES, "", n["metadata"]["name"])
                if not self.contract_of(n):       # contract nodes go back to the contract, not the zone
                    self.ledger.give(zone, it, 1)

    def node_deleted(self, node: Obj) -> None:
        """A Node deleted through the API frees its machine; its pool shows one node fewer until the pool
        is written again (the adapter scales the pool down right after deleting chosen nodes)."""
        labels = node["metadata"].get("labels") or {}
        if labels.get(TOPO_ZONE) and labels.get(TYPE_LABEL) and not labels.get(CONTRACT_LABEL):
            self.ledger.give(labels[TOPO_ZONE], labels[TYPE_LABEL], 1)
        pool_name = labels.get(POOL_LABEL)
        pool = self.store.try_get(NODEPOOLS, "", pool_name) if pool_name else None
        if pool is not None:
            current = len(self.pool_nodes(pool_name or ""))
            target = int(pool["spec"]["targetNodes"])
            self._write_status(pool, current, target, "NodeDeleted" if current < target else "",
                               "a node was deleted" if current < target else "")

    # -- objects ---------------------------------------------------------------------------------
    def _rack_for(self, pool: str, zone: str, it: InstanceType) -> str:
        per_rack = it.nodes_per_domain
        fill: dict[str, int] = {}
        mine: set[str] = set()

        def racked(n: Obj) -> bool:
            lab = n["metadata"].get("labels") or {}
            return lab.get(TOPO_ZONE) == zone and lab.get(TYPE_LABEL) == it.name and NVLINK_LABEL in lab

        nodes, _ = self.store.list(NODES, None, racked, copy_out=False)     # read only, under the lock
        for n in nodes:
            lab = n["metadata"]["labels"]
            fill[lab[NVLINK_LABEL]] = fill.get(lab[NVLINK_LABEL], 0) + 1
            if lab.get(POOL_LABEL) == pool:
                mine.add(lab[NVLINK_LABEL])
        # Keep a pool on the racks it already uses (one NVLink domain for a training gang), then fill
        # partly used racks before opening a new one.
        for rack in sorted(mine) + sorted(fill, key=lambda r: (-fill[r], r)):
            if fill[rack] < per_rack:
                return rack
        i = 0
        while f"{zone.lower()}-{it.name}-r{i:02d}" in fill:
            i += 1
        return f"{zone.lower()}-{it.name}-r{i:02d}"

    def _create_node(self, pool: Obj, zone: str, used: set[int]) -> Obj:
        spec, name = pool["spec"], pool["metadata"]["name"]
        it = self.catalog.instance_type("coreweave", spec["instanceType"])
        region = self.ledger.zones.get(zone, zone)
        cc = spec.get("computeClass", "default")
        labels: dict[str, str] = dict(spec.get("nodeLabels") or {})
        arch = "arm64" if it.gpu_model.startswith("GB") else "amd64"
        ordinal = 0
        while True:
            while ordinal in used:
                ordinal += 1
            used.add(ordinal)
            node_name = f"{name}-{ordinal}"
            labels.update({
                TYPE_LABEL: it.name, "node.kubernetes.io/instance-type": it.name,
                TOPO_ZONE: zone, TOPO_REGION: region, POOL_LABEL: name, CLASS_LABEL: cc,
                "kubernetes.io/hostname": node_name, "kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
                "gpu.nvidia.com/model": it.gpu_model,
            })
            # The provider-neutral labels every stack's nodes carry (providers/nodelabels.py).
            awan_pool = (spec.get("nodeLabels") or {}).get(LABEL_POOL) or \
                (spec.get("nodeAnnotations") or {}).get("awan.dev/pool") or name
            contract = self.contract_of(pool)
            if contract:
                labels[CONTRACT_LABEL] = contract
            labels.update({L.PROVIDER: "coreweave",
                           L.CAPACITY_TYPE: "spot" if cc == "spot" else "reserved" if contract else "on-demand",
                           L.POOL: re.sub(r"[^A-Za-z0-9_.-]+", "-", awan_pool)[:63].strip("-_."),
                           L.GPU_PRODUCT: re.sub(r"[^A-Za-z0-9_.-]+", "-", it.gpu_model)})
            if it.nodes_per_domain > 1:
                labels[NVLINK_LABEL] = labels[L.NVLINK_DOMAIN] = self._rack_for(name, zone, it)
            res = {"cpu": str(it.vcpus), "memory": f"{int(it.memory_gib)}Gi", GPU_RESOURCE: str(it.gpus),
                   "pods": "110"}
            t = now_rfc3339()
            node = {
                "metadata": {"name": node_name, "labels": dict(labels),
                             "annotations": dict(spec.get("nodeAnnotations") or {})},
                "spec": {"providerID": f"coreweave://{zone}/{node_name}",
                         "taints": [dict(x) for x in spec.get("nodeTaints") or []]},
                "status": {
                    "capacity": res, "allocatable": dict(res),
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                    "message": "kubelet is posting ready status",
                                    "lastHeartbeatTime": t, "lastTransitionTime": t}],
                    "addresses": [{"type": "Hostname", "address": node_name}],
                    "nodeInfo": {"architecture": arch, "bootID": "", "containerRuntimeVersion": "containerd://1.7",
                                 "kernelVersion": "6.8.0", "kubeProxyVersion": "", "kubeletVersion": "v1.32.4",
                                 "machineID": "", "operatingSystem": "linux", "osImage": "Ubuntu 22.04",
                                 "systemUUID": ""},
                },
            }
            try:
                return self.store.create(NODES, "", node, keep_status=True)
            except ApiError as e:
                if e.reason != "AlreadyExists":      # a node of that name exists: take the next ordinal
                    raise

    def _write_status(self, pool: Obj, current: int, target: int, short_reason: str, message: str) -> None:
        old = {c.get("type"): c for c in (pool.get("status") or {}).get("conditions") or []}
        t = now_rfc3339()

        def cond(type_: str, ok: bool, reason: str, msg: str) -> dict[str, Any]:
            prev = old.get(type_) or {}
            same = prev.get("status") == ("True" if ok else "False") and prev.get("reason") == reason
            return {"type": type_, "status": "True" if ok else "False", "reason": reason, "message": msg,
                    "lastTransitionTime": prev.get("lastTransitionTime", t) if same else t}

        at = current == target
        conditions = [
            cond("Validated", True, "Valid", "node pool spec is valid"),
            cond("AtTarget", at, "AtTarget" if at else (short_reason or "Scaling"),
                 f"{current} of {target} node(s) ready" if at else (message or "scaling")),
        ]
        status = {"currentNodes": current, "observedGeneration": pool["metadata"].get("generation", 1),
                  "conditions": conditions}
        self.store.update(NODEPOOLS, "", pool["metadata"]["name"], {"status": status}, status=True)
