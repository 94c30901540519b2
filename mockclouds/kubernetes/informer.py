"""Writes -> work-queue keys, as client-go's shared informers feed the controllers of a real cluster.

The store calls ``Informer.observe`` with every event as it is recorded (under the store lock). From the
object a write touched, the informer keeps a few indexes current (dependents by owner uid, pods by node,
per-node requests of the pods bound there, unbound pods, nodes by label) and puts keys on the queue of
each controller that has to look again: the Job or ReplicaSet owning a pod, the Deployment owning a
ReplicaSet, the pod itself for the kubelet, the unbound pod for the scheduler. A controller then
reconciles the keys it was handed, never the whole cluster, so the work a write sets off does not
grow with the number of objects. ``Cluster`` adds a periodic resync (every key again) as a safety net.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mockclouds.kubernetes.resources import DEPLOYMENTS, JOBS, NODES, PODS, REPLICASETS
from mockclouds.kubernetes.store import Obj, WatchEvent

Key = tuple[str, str]                    # (namespace, name); "" namespace for cluster-scoped kinds
Dependent = tuple[str, str, str]         # (plural, namespace, name)
OWNED_KINDS = frozenset({PODS.plural, JOBS.plural, DEPLOYMENTS.plural, REPLICASETS.plural})
TERMINAL = ("Succeeded", "Failed")


class WorkQueue:
    """Keys waiting for one controller: deduplicated, first in first out (client-go's workqueue)."""

    def __init__(self) -> None:
        self._items: dict[Key, None] = {}

    def add(self, key: Key) -> None:
        self._items[key] = None

    def take(self) -> list[Key]:
        """Everything queued so far; what is added while these are worked on waits for the next round."""
        items = list(self._items)
        self._items.clear()
        return items

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def _key(obj: Obj) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


def _bound_live(pod: Obj) -> str:
    """The node a pod counts against (bound and not finished), or ""."""
    if (pod.get("status") or {}).get("phase") in TERMINAL:
        return ""
    return str((pod.get("spec") or {}).get("nodeName") or "")


@dataclass
class NodeView:
    """Nodes by name and by label, so the scheduler looks only at nodes a pod's nodeSelector allows."""

    nodes: dict[str, Obj] = field(default_factory=dict)
    by_label: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    _sorted: list[Obj] | None = None

    def put(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        self.remove(name)
        self.nodes[name] = node
        for kv in (node["metadata"].get("labels") or {}).items():
            self.by_label.setdefault(kv, set()).add(name)
        self._sorted = None

    def remove(self, name: str) -> None:
        old = self.nodes.pop(name, None)
        if old is None:
            return
        for kv in (old["metadata"].get("labels") or {}).items():
            names = self.by_label.get(kv)
            if names is not None:
                names.discard(name)
                if not names:
                    del self.by_label[kv]
        self._sorted = None

    def all(self) -> list[Obj]:
        """Every node, in name order (the order the scheduler tries them)."""
        if self._sorted is None:
            self._sorted = [self.nodes[n] for n in sorted(self.nodes)]
        return self._sorted

    def candidates(self, pod: Obj) -> list[Obj]:
        """The nodes whose labels satisfy the pod's nodeSelector, in name order (every node when it has
        none). Affinity, taints and resources are still checked per node by the scheduler."""
        selector = (pod.get("spec") or {}).get("nodeSelector") or {}
        if not selector:
            return self.all()
        names: set[str] | None = None
        for kv in selector.items():
            hit = self.by_label.get((str(kv[0]), str(kv[1])), set())
            names = set(hit) if names is None else names & hit
            if not names:
                return []
        return [self.nodes[n] for n in sorted(names or ())]

    def clear(self) -> None:
        self.nodes.clear()
        self.by_label.clear()
        self._sorted = None


@dataclass
class Queues:
    kubelet: WorkQueue = field(default_factory=WorkQueue)        # pods
    scheduler: WorkQueue = field(default_factory=WorkQueue)      # unbound pods
    jobs: WorkQueue = field(default_factory=WorkQueue)
    deployments: WorkQueue = field(default_factory=WorkQueue)
    replicasets: WorkQueue = field(default_factory=WorkQueue)

    def all(self) -> tuple[WorkQueue, ...]:
        return self.kubelet, self.scheduler, self.jobs, self.deployments, self.replicasets

    def idle(self) -> bool:
        return not any(len(q) for q in self.all())


class Informer:
    """Indexes plus queues, kept current from the store's events (``observe``)."""

    def __init__(self, requests: Callable[[Obj], dict[str, float]],
                 on_pod_gone: Callable[[str], None], on_job_gone: Callable[[str], None]) -> None:
        self.requests, self.on_pod_gone, self.on_job_gone = requests, on_pod_gone, on_job_gone
        self.queues = Queues()
        self.nodes = NodeView()
        self.dependents: dict[str, dict[Dependent, None]] = {}    # owner uid -> its dependents
        self._owners: dict[str, list[str]] = {}                   # dependent uid -> owner uids
        self.pods_on: dict[str, dict[Key, None]] = {}             # node name -> pods naming it
        self._pod_node: dict[str, str] = {}                       # pod uid -> node it names
        self.load: dict[str, dict[str, dict[str, float]]] = {}    # node -> pod uid -> requests (live pods)
        self._load_node: dict[str, str] = {}                      # pod uid -> node it loads
        self.unbound: dict[Key, None] = {}
        self.capacity_changed = False      # a node appeared or changed, or a bound pod ended: retry every unbound pod

    def clear(self) -> None:
        for q in self.queues.all():
            q.clear()
        self.nodes.clear()
        for d in (self.dependents, self._owners, self.pods_on, self._pod_node, self.load, self._load_node,
                  self.unbound):
            d.clear()
        self.capacity_changed = False

    # -- reads -----------------------------------------------------------------------------------
    def used(self, node: str) -> dict[str, float]:
        total: dict[str, float] = {}
        for req in self.load.get(node, {}).values():
            for k, v in req.items():
                total[k] = total.get(k, 0.0) + v
        return total

    def owned(self, uid: str, plural: str) -> list[Key]:
        return [(ns, name) for (p, ns, name) in self.dependents.get(uid, {}) if p == plural]

    # -- events ----------------------------------------------------------------------------------
    def observe(self, ev: WatchEvent) -> None:
        if ev.plural == PODS.plural:
            self._pod(ev.type, ev.obj)
        elif ev.plural == JOBS.plural:
            self.queues.jobs.add(_key(ev.obj))
            if ev.type == "DELETED":
                self.on_job_gone(ev.obj["metadata"]["uid"])
        elif ev.plural == REPLICASETS.plural:
            self.queues.replicasets.add(_key(ev.obj))
            self._to_owner(ev.obj, "Deployment", self.queues.deployments)
        elif ev.plural == DEPLOYMENTS.plural:
            self.queues.deployments.add(_key(ev.obj))
        elif ev.plural == NODES.plural:
            self._node(ev.type, ev.obj)
        else:
            return
        if ev.plural in OWNED_KINDS:
            self._index_owners(ev.type, ev.plural, ev.obj)

    def _to_owner(self, obj: Obj, kind: str, queue: WorkQueue) -> None:
        ns = obj["metadata"].get("namespace") or ""
        for ref in obj["metadata"].get("ownerReferences") or []:
            if ref.get("controller") and ref.get("kind") == kind and ref.get("name"):
                queue.add((ns, str(ref["name"])))

    def _index_owners(self, type_: str, plural: str, obj: Obj) -> None:
        meta = obj["metadata"]
        uid = meta["uid"]
        dep: Dependent = (plural, meta.get("namespace") or "", meta["name"])
        for owner in self._owners.pop(uid, []):
            deps = self.dependents.get(owner)
            if deps is not None:
                deps.pop(dep, None)
                if not deps:
                    del self.dependents[owner]
        if type_ == "DELETED":
            return
        owners = [str(r.get("uid")) for r in meta.get("ownerReferences") or [] if r.get("uid")]
        if owners:
            self._owners[uid] = owners
            for owner in owners:
                self.dependents.setdefault(owner, {})[dep] = None

    def _pod(self, type_: str, pod: Obj) -> None:
        key, uid = _key(pod), pod["metadata"]["uid"]
        gone = type_ == "DELETED"
        # pods by the node they name (the kubelet of a node that goes away must look at them)
        old_node = self._pod_node.pop(uid, "")
        if old_node:
            on = self.pods_on.get(old_node)
            if on is not None:
                on.pop(key, None)
                if not on:
                    del self.pods_on[old_node]
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        if node and not gone:
            self._pod_node[uid] = node
            self.pods_on.setdefault(node, {})[key] = None
        # what bound, unfinished pods request of their node
        was = self._load_node.pop(uid, "")
        if was:
            self.load.get(was, {}).pop(uid, None)
            if not self.load.get(was):
                self.load.pop(was, None)
        now = "" if gone else _bound_live(pod)
        if now:
            self._load_node[uid] = now
            self.load.setdefault(now, {})[uid] = self.requests(pod)
        if was and not now:
            self.capacity_changed = True
        # the scheduler's pods
        spec, st = pod.get("spec") or {}, pod.get("status") or {}
        if not gone and not spec.get("nodeName") and st.get("phase") not in TERMINAL \
                and not pod["metadata"].get("deletionTimestamp"):
            self.unbound[key] = None
            self.queues.scheduler.add(key)
        else:
            self.unbound.pop(key, None)
        if gone:
            self.on_pod_gone(uid)
        else:
            self.queues.kubelet.add(key)
        self._to_owner(pod, "Job", self.queues.jobs)
        self._to_owner(pod, "ReplicaSet", self.queues.replicasets)

    def _node(self, type_: str, node: Obj) -> None:
        name = node["metadata"]["name"]
        if type_ == "DELETED":
            self.nodes.remove(name)
        else:
            self.nodes.put(node)
            self.capacity_changed = True
        for key in self.pods_on.get(name, {}):
            self.queues.kubelet.add(key)       # node lost, tainted NoExecute, or ready again
