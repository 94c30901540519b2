"""CoreWeaveProvider: the Provider interface over a CKS cluster's Kubernetes API.

Nodes are never created one by one: ``create_nodes`` sets a NodePool (named after the request's pool) to
``targetNodes = count`` and waits for the CKS controller's status. Requests are level-triggered (the
count is the pool's size, so asking twice makes the nodes once). A pool that stays short with
``InsufficientCapacity`` is a stock-out: the pool is put back to its previous size (deleted if this
call created it), so a refused request leaves nothing behind, and CapacityError is raised.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from providers.base import Provider
from providers.capabilities import NodePoolRequest, NodePoolState, SupportsNodePools, SupportsRegionalListing
from providers.catalog import default_catalog
from providers.catalog.model import CapacityType, Offering
from providers.config import ProviderConfig
from providers.coreweave import nodepools as np
from providers.coreweave.capacity import QUOTA_CONFIGMAP, QUOTA_NAMESPACE, build_report, parse_quota
from providers.coreweave.client import PROVIDER, KubeCaller, build_api_client
from providers.coreweave.contracts import (
    CONTRACT_LABEL,
    CONTRACTS_CONFIGMAP,
    CONTRACTS_NAMESPACE,
    ContractTerms,
    contract_pools,
    parse_contracts,
)
from providers.errors import CapacityError, InvalidRequestError, NotFoundError, ProviderError
from providers.health import region_status
from providers.model import (
    LABEL_OWNER,
    LABEL_POOL,
    LABEL_WORKLOAD,
    TAG_OWNER,
    CapacityReport,
    HealthStatus,
    Node,
    NodeRequest,
    NodeState,
    ProviderHealth,
)

DEFAULT_OWNER = "awan"


def _wire(obj: object) -> dict[str, Any]:
    """A custom-object answer as the dict it is: the kubernetes client annotates CustomObjectsApi results as
    ``object`` but returns the decoded JSON body, which for these calls is always a JSON object."""
    assert isinstance(obj, dict), f"expected a JSON object from the custom objects API, got {type(obj).__name__}"
    return obj


class CoreWeaveProvider(Provider, SupportsNodePools, SupportsRegionalListing):
    name = PROVIDER

    def __init__(self, cfg: ProviderConfig) -> None:
        self.cfg = cfg
        self.endpoint = cfg.where
        self._api = build_api_client(cfg)
        self._kube = KubeCaller(cfg)
        from kubernetes import client

        self._core = client.CoreV1Api(self._api)
        self._custom = client.CustomObjectsApi(self._api)
        self._version = client.VersionApi(self._api)
        self._catalog = default_catalog()

    def close(self) -> None:
        self._api.close()

    # -- helpers ---------------------------------------------------------------------------------
    def _catalog_offerings(self) -> list[Offering]:
        offs = self._catalog.for_provider(PROVIDER)
        return [o for o in offs if not self.cfg.regions or o.region in self.cfg.regions]

    def _quota(self) -> dict[tuple[str, str], int] | None:
        try:
            cm = self._kube.call(self._core.read_namespaced_config_map, QUOTA_CONFIGMAP, QUOTA_NAMESPACE,
                                 what="read quota")
        except NotFoundError:
            return None
        return parse_quota(cm.data, self._catalog.zones(PROVIDER))

    def contracts(self) -> dict[str, ContractTerms]:
        """The cluster's committed-capacity contracts by id (contracts.py); none when it publishes none."""
        try:
            cm = self._kube.call(self._core.read_namespaced_config_map, CONTRACTS_CONFIGMAP, CONTRACTS_NAMESPACE,
                                 what="read contracts")
        except NotFoundError:
            return {}
        return parse_contracts(cm.data)

    def _region(self, zone: str) -> str:
        return self._catalog.zones(PROVIDER).get(zone, "")

    def _to_node(self, n: Any) -> Node:
        meta, status = n.metadata, n.status
        lab = dict(meta.labels or {})
        ann = dict(meta.annotations or {})
        ready = next((c for c in (status.conditions if status else None) or [] if c.type == "Ready"), None)
        if meta.deletion_timestamp is not None:
            state = NodeState.STOPPING
        else:
            state = NodeState.RUNNING if ready is not None and ready.status == "True" else NodeState.PENDING
        alloc = (status.allocatable if status else None) or {}
        try:
            gpus = int(alloc.get(np.GPU_RESOURCE, "0"))
        except ValueError:
            gpus = 0
        zone = lab.get(np.TOPO_ZONE, "")
        return Node(
            provider=PROVIDER, id=meta.name, name=meta.name, region=lab.get(np.TOPO_REGION) or self._region(zone),
            zone=zone, instance_type=lab.get(np.TYPE_LABEL, ""),
            capacity_type=CapacityType.SPOT if lab.get(np.CLASS_LABEL) == "spot" else (
                CapacityType.RESERVED if lab.get(CONTRACT_LABEL) else CapacityType.ON_DEMAND),
            state=state, pool=ann.get(np.ANN_POOL) or lab.get(LABEL_POOL, ""),
            workload=ann.get(np.ANN_WORKLOAD) or lab.get(LABEL_WORKLOAD, ""), gpus=gpus, labels=lab)

    def _pool_nodes(self, name: str) -> list[Node]:
        res = self._kube.call(self._core.list_node, label_selector=f"{np.POOL_NODE_LABEL}={name}",
                              what=f"list nodes of pool {name}")
        return [self._to_node(n) for n in res.items]

    # -- questions -------------------------------------------------------------------------------
    def offerings(self) -> list[Offering]:
        """Catalog offerings in the zones and types the cluster's quota ConfigMap grants (> 0 nodes); the
        plain catalog when the cluster publishes no quota."""
        quota = self._quota()
        offs = self._catalog_offerings()
        if quota is None:
            return offs
        return [o for o in offs if quota.get((o.zone, o.instance_type), 0) > 0]

    def capacity(self) -> CapacityReport:
        """Quota headroom per (zone, type, capacity type), capacity_known=False; 0 where a node pool shows
        a stock-out now (see providers/coreweave/capacity.py for why); and one reserved pool per contract,
        dated by its term (contracts.py)."""
        quota = self._quota()
        contracts = self.contracts()
        res = self._kube.call(self._core.list_node, what="list nodes")
        nodes = [{"metadata": {"labels": dict((n.metadata.labels if n.metadata else None) or {})}}
                 for n in res.items]
        pools = _wire(self._kube.call(self._custom.list_cluster_custom_object, np.GROUP, np.VERSION, np.PLURAL,
                                      what="list node pools"))["items"]
        zone_of = {p["metadata"]["name"]: (p["metadata"].get("labels") or {}).get(np.ZONE_LABEL, "")
                   for p in pools}
        report = build_report(self._catalog_offerings(), quota, nodes, pools, zone_of)
        dated = contract_pools(contracts, self._catalog_offerings(), nodes, report.taken_at)
        return dataclasses.replace(report, pools=report.pools + tuple(dated))

    def list_nodes(self) -> list[Node]:
        res = self._kube.call(self._core.list_node, label_selector=LABEL_OWNER, what="list nodes")
        return [self._to_node(n) for n in res.items]

    def configured_regions(self) -> list[str]:
        return list(self.cfg.regions or [])

    def list_nodes_in(self, region: str) -> list[Node]:
        """SupportsRegionalListing: the cluster's nodes labelled with ``region`` (CKS sets the well-known
        topology label on every node). One API server answers for every region, so this splits the work
        among replicas but cannot keep one region's fault from the others."""
        res = self._kube.call(self._core.list_node, label_selector=f"{LABEL_OWNER},{np.TOPO_REGION}={region}",
                              what=f"list nodes in {region}")
        return [self._to_node(n) for n in res.items]

    def health(self) -> ProviderHealth:
        """GET /version and /api, once each (no retries: health reports what answers now)."""
        t0 = time.perf_counter()
        try:
            self._kube.call(self._version.get_code, what="GET /version", attempts=1)
            self._kube.call(self._core.get_api_resources, what="GET /api/v1", attempts=1)
        except ProviderError as e:
            ms = (time.perf_counter() - t0) * 1000
            # One cluster API answers for the whole provider: its status is the provider's, by the same
            # rule as every region of the other clouds (throttled is degraded, not down).
            return ProviderHealth(PROVIDER, self.endpoint, region_status(e), ms, message=str(e))
        ms = (time.perf_counter() - t0) * 1000
        return ProviderHealth(PROVIDER, self.endpoint, HealthStatus.OK, ms)

    # -- NodePools (also used by the provisioning engine) -----------------------------------------
    def ensure_node_pool(self, request: NodePoolRequest) -> NodePoolState:
        status = self.apply_node_pool(request.name, request.instance_type, request.zone, request.target_nodes,
                                      request.labels, request.capacity_type, request.annotations or None,
                                      request.reservation_id)
        return NodePoolState(request.name, request.instance_type, request.zone, request.target_nodes,
                             int(status.get("currentNodes") or 0))

    def node_pool(self, name: str) -> NodePoolState | None:
        obj = self.get_node_pool(name)
        if obj is None:
            return None
        zone = (obj.get("metadata", {}).get("labels") or {}).get(np.ZONE_LABEL, "")
        return NodePoolState(name, str((obj.get("spec") or {}).get("instanceType", "")), zone,
                             np.target_nodes(obj), np.current_nodes(obj))

    def remove_node_pool(self, name: str) -> bool:
        return self.delete_node_pool(name)

    def get_node_pool(self, name: str) -> dict[str, Any] | None:
        """The NodePool object (wire-format dict), or None when it does not exist."""
        try:
            return _wire(self._kube.call(self._custom.get_cluster_custom_object, np.GROUP, np.VERSION, np.PLURAL,
                                         name, what=f"get node pool {name}"))
        except NotFoundError:
            return None

    def apply_node_pool(self, name: str, instance_type: str, zone: str, target_nodes: int,
                        labels: dict[str, str], capacity_type: CapacityType = CapacityType.ON_DEMAND,
                        annotations: dict[str, str] | None = None, contract: str = "") -> dict[str, Any]:
        """Create the NodePool, or merge-patch its size, labels and annotations; returns its status
        (``currentNodes``, ``conditions``) as the controller reported it in the write's answer.
        Changing the instance type or zone of an existing pool is refused (CoreWeave: immutable)."""
        body = np.manifest(name, instance_type, zone, target_nodes, labels, annotations, capacity_type, contract)
        region = self._region(zone)
        existing = self.get_node_pool(name)
        if existing is None:
            try:
                obj = _wire(self._kube.call(self._custom.create_cluster_custom_object, np.GROUP, np.VERSION,
                                            np.PLURAL, body, what=f"create node pool {name}", region=region))
                return dict(obj.get("status") or {})
            except InvalidRequestError as e:
                if e.code != "AlreadyExists":
                    raise
                existing = self.get_node_pool(name)     # lost a race with another writer: patch it
        spec = (existing or {}).get("spec") or {}
        old_zone = ((existing or {}).get("metadata", {}).get("labels") or {}).get(np.ZONE_LABEL, zone)
        if spec.get("instanceType") != instance_type or old_zone != zone:
            raise InvalidRequestError(f"node pool {name} exists with {spec.get('instanceType')} in {old_zone}, "
                                      f"not {instance_type} in {zone}", provider=PROVIDER,
                                      endpoint=self.endpoint, region=region, code="Immutable")
        patch = {"metadata": {"labels": body["metadata"]["labels"], "annotations": body["metadata"]["annotations"]},
                 "spec": {k: body["spec"][k] for k in ("targetNodes", "nodeLabels", "nodeAnnotations")}}
        obj = _wire(self._kube.call(self._custom.patch_cluster_custom_object, np.GROUP, np.VERSION, np.PLURAL, name,
                                    patch, what=f"patch node pool {name}", region=region))
        return dict(obj.get("status") or {})

    def delete_node_pool(self, name: str) -> bool:
        """Delete the NodePool (CKS then removes its nodes). False when it was already gone."""
        try:
            self._kube.call(self._custom.delete_cluster_custom_object, np.GROUP, np.VERSION, np.PLURAL, name,
                            what=f"delete node pool {name}")
            return True
        except NotFoundError:
            return False

    def _wait_for_pool(self, name: str) -> dict[str, Any] | None:
        """Poll until the controller has acted on the latest spec: at target, or short for lack of
        capacity. Gives up after cfg.timeout_s and returns what it last saw."""
        deadline = time.monotonic() + self.cfg.timeout_s
        delay = 0.05
        while True:
            obj = self.get_node_pool(name)
            if obj is None or (np.observed(obj) and (
                    np.current_nodes(obj) >= np.target_nodes(obj) or np.stocked_out(obj))):
                return obj
            if time.monotonic() + delay > deadline:
                return obj
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    # -- side effects ----------------------------------------------------------------------------
    def create_nodes(self, request: NodeRequest) -> list[Node]:
        """Size the request's NodePool to ``request.count`` and return its nodes. Nodes that are still
        booting when cfg.timeout_s runs out are simply not returned yet (list_nodes sees them later)."""
        name = np.pool_name(request.pool)
        before = self.get_node_pool(name)
        owner = request.tags.get(TAG_OWNER, DEFAULT_OWNER)
        labels = np.awan_labels(owner, request.pool, request.workload)
        annotations = {np.ANN_POOL: request.pool, np.ANN_WORKLOAD: request.workload,
                       "awan.dev/idempotency-key": request.idempotency_key}
        # reservation_id names a committed-capacity contract: the pool draws on it (only within its term)
        self.apply_node_pool(name, request.instance_type, request.zone, request.count, labels,
                             request.capacity_type, annotations, request.reservation_id)
        obj = self._wait_for_pool(name)
        if obj is not None and np.stocked_out(obj):
            have, want = np.current_nodes(obj), np.target_nodes(obj)
            if before is None:
                self.delete_node_pool(name)
            else:
                self._kube.call(self._custom.patch_cluster_custom_object, np.GROUP, np.VERSION, np.PLURAL, name,
                                {"spec": {"targetNodes": np.target_nodes(before)}},
                                what=f"scale node pool {name} back", region=request.region)
            msg = np.condition(obj, "AtTarget").get("message") or f"{have} of {want} nodes"
            raise CapacityError(f"node pool {name}: {request.instance_type} in {request.zone}: {msg}",
                                provider=PROVIDER, endpoint=self.endpoint, region=request.region, code=np.STOCKOUT)
        return self._pool_nodes(name)

    def delete_nodes(self, nodes: Sequence[Node]) -> None:
        """Per pool: when every node it has is asked for, delete the NodePool; else delete those Node
        objects and lower targetNodes by as many as existed (so a repeated call changes nothing)."""
        by_pool: dict[str, set[str]] = {}
        for n in nodes:
            if n.provider != PROVIDER:
                continue
            pool = n.labels.get(np.POOL_NODE_LABEL) or (np.pool_name(n.pool) if n.pool else "")
            by_pool.setdefault(pool, set()).add(n.id)
        for pool, ids in by_pool.items():
            if not pool:
                for node_id in ids:
                    self._delete_node(node_id)
                continue
            current = {n.id for n in self._pool_nodes(pool)}
            if current <= ids:
                self.delete_node_pool(pool)
                continue
            gone = current & ids
            for node_id in gone:
                self._delete_node(node_id)
            obj = self.get_node_pool(pool)
            if obj is not None and gone:
                self._kube.call(self._custom.patch_cluster_custom_object, np.GROUP, np.VERSION, np.PLURAL, pool,
                                {"spec": {"targetNodes": max(0, np.target_nodes(obj) - len(gone))}},
                                what=f"scale node pool {pool} down")

    def _delete_node(self, node_id: str) -> None:
        with contextlib.suppress(NotFoundError):
            self._kube.call(self._core.delete_node, node_id, what=f"delete node {node_id}")
