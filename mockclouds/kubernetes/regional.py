"""The Kubernetes clusters of the AWS, GCP, Azure and OCI mocks: one per (provider, region), served by the
cloud's own mock under ``/_k8s/<region>/`` (``https?://host:port/_k8s/us-east-1`` is the cluster's API
server URL, bearer token as for CoreWeave).

Nodes are not created through the Kubernetes API: they mirror the cloud's running machines, as
self-managed nodes that joined with bootstrap user-data would (docs/mock-clusters.md). Before each
request to a cluster, on its timer, and after ``/_mock/preempt|revoke`` the cloud's inventory is read
and Nodes are registered for new running machines and removed for machines that are gone (terminated,
preempted, evicted) -- pods on a removed Node fail with reason NodeLost.

Extra control endpoints on the cloud mock::

    GET  /_mock/clusters                 -> {"clusters": [{name, provider, region, server, token}]}
    POST /_mock/pods/finish {"region", "namespace"?, "labelSelector"?, "exitCode"?}  -> {"pods": [...]}
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from werkzeug.wrappers import Request

from mockclouds.kubernetes.api import KubeApi
from mockclouds.kubernetes.cluster import Cluster
from mockclouds.kubernetes.controls import finish_request, json_response
from mockclouds.kubernetes.resources import NODES
from mockclouds.kubernetes.store import Obj, now_rfc3339
from providers import nodelabels as L
from providers.catalog import Catalog, InstanceType

PREFIX = "/_k8s/"
SYNC_INTERVAL_S = 0.5          # timer-driven syncs; every API request syncs too
MACHINE_ANNOTATION = "awan.dev/machine-id"
_DNS = re.compile(r"[^a-z0-9.-]+")


class Inventory(Protocol):
    def inventory(self) -> list[dict[str, Any]]: ...


def _node_name(provider: str, row: dict[str, Any]) -> str:
    # GCE: the instance name; AWS: i-...; Azure: the VM name (last segment of its ARM id); OCI: the unique part
    # of the instance OCID (the whole OCID is longer than the 63 characters of the hostname label).
    if provider == "oci":
        return "oci-" + _DNS.sub("-", str(row["id"]).rsplit(".", 1)[-1].lower())[:40]
    raw = str(row.get("name") or row["id"]) if provider == "gcp" else str(row["id"]).rsplit("/", 1)[-1]
    return _DNS.sub("-", raw.lower()).strip("-.")[:253] or "node"


def _running(provider: str, row: dict[str, Any]) -> bool:
    if provider == "aws":
        return row.get("kind") == "instance" and row.get("state") == "running"
    if provider == "gcp":
        return (row.get("kind") == "instance" and row.get("state") == "RUNNING") or (
            row.get("kind") == "tpu-node" and row.get("state") == "READY")
    if provider == "oci":
        return row.get("kind") == "instance" and row.get("state") == "running"
    return row.get("kind") == "virtualMachine" and row.get("state") == "Succeeded" and not row.get("evicted")


def _capacity_type(provider: str, row: dict[str, Any]) -> str:
    tags = row.get("tags") or {}
    if tags.get("awan:reservation") or tags.get("awan-reservation") or (
            provider == "oci" and row.get("capacityReservation")):
        return "reserved"
    if provider == "aws":
        return "spot" if row.get("lifecycle") == "spot" else "on-demand"
    return "spot" if row.get("spot") else "on-demand"


def _native_labels(provider: str, pool: str, capacity: str) -> dict[str, str]:
    """What EKS/GKE/AKS put on their nodes, so selectors written for those clusters work here too."""
    if provider == "aws":
        return {"eks.amazonaws.com/capacityType": "SPOT" if capacity == "spot" else "ON_DEMAND",
                "karpenter.sh/capacity-type": capacity}
    if provider == "oci":
        out = {"oke.oraclecloud.com/node-pool": pool} if pool else {}
        if capacity == "spot":
            out["oci.oraclecloud.com/oke-is-preemptible"] = "true"
        return out
    if provider == "gcp":
        out = {"cloud.google.com/gke-nodepool": pool} if pool else {}
        if capacity == "spot":
            out["cloud.google.com/gke-spot"] = "true"
        return out
    out = {"kubernetes.azure.com/agentpool": pool} if pool else {}
    if capacity == "spot":
        out["kubernetes.azure.com/scalesetpriority"] = "spot"
    return out


def _label_value(v: str) -> str:
    v = re.sub(r"[^A-Za-z0-9_.-]+", "-", v)[:63]
    return v.strip("-_.")


class RegionCluster(Cluster):
    def __init__(self, owner: RegionalClusters, region: str) -> None:
        self.owner, self.region = owner, region
        self.name = f"{owner.provider}-{region}"
        super().__init__(owner.faults)

    def region_of(self, rt: Any, ns: str, name: str, body: Any) -> str | None:
        return self.region          # a regional fault on the cloud takes its cluster down too

    def tick(self) -> None:
        self.owner.sync_if_stale()
        super().tick()

    def next_due(self) -> float:
        # Keep polling the cloud while there are nodes or pods: a machine may go away at any time.
        return min(super().next_due(), time.monotonic() + SYNC_INTERVAL_S)

    # -- nodes from machines ---------------------------------------------------------------------
    def sync_nodes(self, rows: Iterable[dict[str, Any]]) -> None:
        provider, catalog = self.owner.provider, self.owner.catalog
        want = {_node_name(provider, r): r for r in rows if r.get("region") == self.region and _running(provider, r)}
        with self.store.lock:
            # Only nodes registered from machines are managed here; a Node made through the API stays.
            have = {n["metadata"]["name"]: n for n in self.store.list(NODES, None, copy_out=False)[0]
                    if MACHINE_ANNOTATION in (n["metadata"].get("annotations") or {})}
            changed = False
            for name in sorted(set(have) - set(want)):
                self.store.delete(NODES, "", name)
                changed = True
            for name in sorted(set(want) - set(have)):
                if self.store.try_get(NODES, "", name) is not None:
                    continue            # a Node of that name was made through the API: leave it be
                it = catalog.instance_types.get((provider, str(want[name].get("instanceType"))))
                self.store.create(NODES, "", self._node(name, want[name], it), keep_status=True)
                changed = True
            if changed:
                self.reconcile()
                self._ensure_ticker()

    def _domain(self, pool: str, zone: str, it: InstanceType) -> str:
        """Fill one NVLink domain (rack) of ``it`` per pool before opening the next, as racks are sold whole."""
        fill: dict[str, int] = {}
        for n in self.store.list(NODES, None, copy_out=False)[0]:
            lab = n["metadata"].get("labels") or {}
            if lab.get(L.POOL, "") == pool and lab.get(L.ZONE) == zone and L.NVLINK_DOMAIN in lab:
                fill[lab[L.NVLINK_DOMAIN]] = fill.get(lab[L.NVLINK_DOMAIN], 0) + 1
        for d in sorted(fill):
            if fill[d] < it.nodes_per_domain:
                return d
        i = 0
        base = _label_value(f"{zone}-{pool or it.name}")[:50]
        while f"{base}-nvl{i}" in fill:
            i += 1
        return f"{base}-nvl{i}"

    def _node(self, name: str, row: dict[str, Any], it: InstanceType | None) -> Obj:
        provider = self.owner.provider
        tags = {str(k): str(v) for k, v in (row.get("tags") or {}).items()}
        pool = _label_value(tags.get("awan:pool") or tags.get("awan-pool") or "")
        workload = _label_value(tags.get("awan:workload") or tags.get("awan-workload") or "")
        zone, itype = str(row.get("zone") or ""), str(row.get("instanceType") or "")
        capacity = _capacity_type(provider, row)
        labels = {L.PROVIDER: provider, L.REGION: self.region, L.ZONE: zone, L.INSTANCE_TYPE: _label_value(itype),
                  L.CAPACITY_TYPE: capacity, "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "arm64" if it is not None and it.gpu_model.startswith("GB") else "amd64",
                  **_native_labels(provider, pool, capacity)}
        if pool:
            labels[L.POOL] = pool
        if workload:
            labels[L.WORKLOAD] = workload
        res = {"cpu": "4", "memory": "16Gi", "pods": "110"}
        if it is not None:
            res.update(cpu=str(it.vcpus), memory=f"{int(it.memory_gib)}Gi")
            if it.name.startswith("tpu-"):
                res[L.TPU_RESOURCE] = str(it.gpus)
            elif it.gpus:
                res[L.GPU_RESOURCE] = str(it.gpus)
                labels[L.GPU_PRODUCT] = _label_value(it.gpu_model)
            if it.nodes_per_domain > 1:
                explicit = tags.get("awan:nvlink-domain") or tags.get("awan-nvlink-domain")
                labels[L.NVLINK_DOMAIN] = _label_value(explicit) if explicit else self._domain(pool, zone, it)
                if it.ultraserver:
                    labels[L.ULTRASERVER] = labels[L.NVLINK_DOMAIN]
        provider_id = {"aws": f"aws:///{zone}/{row['id']}", "gcp": f"gce://awan-lab/{zone}/{name}",
                       "azure": f"azure://{row['id']}", "oci": f"oci://{row['id']}"}[provider]
        t = now_rfc3339()
        return {"metadata": {"name": name, "labels": labels,
                             "annotations": {MACHINE_ANNOTATION: str(row["id"])}},
                "spec": {"providerID": provider_id},
                "status": {"capacity": res, "allocatable": dict(res),
                           "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                           "message": "kubelet is posting ready status",
                                           "lastHeartbeatTime": t, "lastTransitionTime": t}],
                           "addresses": [{"type": "Hostname", "address": name}],
                           "nodeInfo": {"architecture": labels["kubernetes.io/arch"], "kubeletVersion": "v1.32.4",
                                        "containerRuntimeVersion": "containerd://1.7", "operatingSystem": "linux",
                                        "osImage": "Ubuntu 22.04", "kernelVersion": "6.8.0", "bootID": "",
                                        "kubeProxyVersion": "", "machineID": "", "systemUUID": ""}}}


class RegionalClusters:
    """All clusters of one cloud mock, created on first use."""

    def __init__(self, provider: str, cloud: Inventory, catalog: Catalog, faults: Any, token: str) -> None:
        self.provider, self.cloud, self.catalog, self.faults, self.token = provider, cloud, catalog, faults, token
        self.regions = sorted(r for (p, r) in catalog.regions if p == provider)
        self.clusters: dict[str, RegionCluster] = {}
        self.apis: dict[str, KubeApi] = {}
        self._lock = threading.Lock()
        self._synced = 0.0

    def cluster(self, region: str) -> RegionCluster | None:
        if region not in self.regions:
            return None
        with self._lock:
            c = self.clusters.get(region)
            if c is None:
                c = self.clusters[region] = RegionCluster(self, region)
                self.apis[region] = KubeApi(c, self.token)
        return c

    def sync(self) -> None:
        """Mirror the cloud's machines into every cluster in use (the inventory is read outside any
        cluster lock: the cloud's own lock comes first)."""
        with self._lock:
            active = list(self.clusters.values())
        if not active:
            return
        rows = self.cloud.inventory()
        self._synced = time.monotonic()
        for c in active:
            c.sync_nodes(rows)

    def sync_if_stale(self) -> None:
        if time.monotonic() - self._synced >= SYNC_INTERVAL_S:
            self.sync()

    def reset(self) -> None:
        with self._lock:
            clusters = list(self.clusters.values())
        for c in clusters:
            c.clear()

    def describe(self, base_url: str) -> list[dict[str, str]]:
        return [{"name": f"{self.provider}-{r}", "provider": self.provider, "region": r,
                 "server": f"{base_url.rstrip('/')}{PREFIX}{r}", "token": self.token} for r in self.regions]


class ClusterMount:
    """WSGI wrapper of a cloud mock: ``/_k8s/<region>/...`` goes to that region's cluster, the cluster
    controls are answered here, everything else goes to the cloud (then preempt/revoke/reset reach the
    clusters)."""

    def __init__(self, app: Callable[..., Any], clusters: RegionalClusters) -> None:
        self.app, self.clusters = app, clusters

    def __getattr__(self, name: str) -> Any:      # the wrapped app's attributes (e.g. MotoPlus.backend)
        return getattr(self.app, name)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX):
            region, _, rest = path[len(PREFIX):].partition("/")
            c = self.clusters.cluster(region)
            if c is None:
                return json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                              "reason": "NotFound", "message": f"no {self.clusters.provider} cluster in region "
                              f"{region!r}"}, 404)(environ, start_response)
            self.clusters.sync()
            environ = {**environ, "PATH_INFO": "/" + rest, "SCRIPT_NAME": environ.get("SCRIPT_NAME", "") + PREFIX + region}
            return self.clusters.apis[region](environ, start_response)
        if path.rstrip("/") == "/_mock/clusters":
            req = Request(environ)
            return json_response({"clusters": self.clusters.describe(req.host_url)})(environ, start_response)
        if path.rstrip("/") == "/_mock/pods/finish" and environ.get("REQUEST_METHOD") == "POST":
            req = Request(environ)
            body = req.get_json(silent=True) or {}
            c = self.clusters.cluster(str(body.get("region", ""))) if isinstance(body, dict) else None
            if c is None:
                return json_response({"error": "region: a region of this cloud is required"}, 400)(environ, start_response)
            self.clusters.sync()
            return finish_request(body, c)(environ, start_response)
        result = self.app(environ, start_response)
        if path.startswith("/_mock/") and environ.get("REQUEST_METHOD") == "POST":
            what = path[len("/_mock/"):].strip("/")
            if what == "reset":
                self.clusters.reset()
            elif what in ("preempt", "revoke"):
                self.clusters.sync()
        return result


def mount(provider: str, app: Callable[..., Any], cloud: Inventory, catalog: Catalog, faults: Any) -> ClusterMount:
    """Wrap a cloud mock's WSGI app with its regional clusters."""
    from mockclouds.launcher import MOCK_SECRETS  # late: the launcher imports the servers

    return ClusterMount(app, RegionalClusters(provider, cloud, catalog, faults, MOCK_SECRETS["coreweave"]["token"]))
