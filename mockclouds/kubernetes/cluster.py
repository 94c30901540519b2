"""One fake Kubernetes cluster: the object store, admission and defaulting of the workload kinds, the
garbage collector, and the controllers (Job, Deployment/ReplicaSet, scheduler and kubelet) that run
after every write and on a timer for the transitions that depend on time.

``Cluster`` is what ``api.KubeApi`` serves. ``CoreWeaveBackend`` extends it with NodePools; the
regional clusters of the AWS, GCP and Azure mocks (``regional``) use it as is, with Nodes synced from
the cloud's instances.
"""

from __future__ import annotations

import builtins
import copy
import functools
import ipaddress
import logging
import math
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from mockclouds.faults import FaultBook
from mockclouds.kubernetes.errors import ApiError, bad_request, invalid, not_found
from mockclouds.kubernetes.informer import Informer
from mockclouds.kubernetes.kubelet import Kubelet, is_terminal
from mockclouds.kubernetes.resources import (
    DEPLOYMENTS,
    EVENTS,
    JOBS,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    RESOURCES,
    SERVICES,
    ResourceType,
)
from mockclouds.kubernetes.store import Matcher, Obj, ObjectStore, now_rfc3339
from mockclouds.kubernetes.workloads import (
    UID_LABELS,
    DeploymentController,
    JobController,
    owned_by,
    selector_matches,
)

SEED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
WORKLOAD_KINDS = (PODS, JOBS, DEPLOYMENTS, REPLICASETS)
MAX_EVENTS = 5000
MAX_ROUNDS = 50          # per drain; a controller ping-pong beyond this is left to the timer (and logged)
_log = logging.getLogger(__name__)


def _ticker(ref: weakref.ReferenceType[Cluster], wake: threading.Event) -> None:
    """The timer of one cluster; holds only a weak reference so a dropped cluster's thread ends."""
    while True:
        c = ref()
        if c is None or c.closed:
            return
        wait = min(max(c.next_due() - time.monotonic(), 0.01), 1.0)
        del c
        wake.wait(wait)
        wake.clear()
        c = ref()
        if c is None or c.closed:
            return
        try:
            c.tick()
        except Exception:       # a reconcile bug must not kill the timer; it is logged and the next tick retries
            _log.exception("mock cluster %s: tick failed", c.name)
        del c


class Cluster:
    name = "kubernetes"
    RESYNC_S = 30.0         # every object is reconciled again this often, whatever triggered or not

    def __init__(self, faults: FaultBook | None = None) -> None:
        self.faults = faults or FaultBook()
        self.store = ObjectStore()
        self.kubelet = Kubelet(self.store, self.record)
        self.jobs = JobController(self.store, self.record)
        self.deployments = DeploymentController(self.store, self.record)
        self.informer = Informer(self.kubelet.requests, self.kubelet.forget, self.jobs.forget)
        self.store.subscribe(self.informer.observe)
        self.stats: Counter[str] = Counter()     # reconciles per controller (read by the bounded-work test)
        self._resynced = time.monotonic()
        self.closed = False
        self._events: set[tuple[str, str, str]] = set()
        self._svc_ip = 0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.clear()

    # -- lifecycle -------------------------------------------------------------------------------
    def clear(self) -> None:
        with self.store.lock:
            self.store.clear()
            self.informer.clear()
            self.kubelet.reset()
            self.jobs.reset()
            self._events.clear()
            self._svc_ip = 0
            for ns in SEED_NAMESPACES:
                self.store.create(NAMESPACES, "", {"metadata": {"name": ns}, "status": {"phase": "Active"}},
                                  keep_status=True)

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    def _ensure_ticker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=_ticker, args=(weakref.ref(self), self._wake),
                                            name=f"mock-k8s-{self.name}", daemon=True)
            self._thread.start()
        self._wake.set()

    def next_due(self) -> float:
        with self.store.lock:
            return min(self.kubelet.next_due(), self.jobs.next_due(), self._resynced + self.RESYNC_S)

    def tick(self) -> None:
        """Timer work: pods and Jobs whose time has come, and the periodic resync. Subclasses add node
        syncing."""
        with self.store.lock:
            if time.monotonic() >= self._resynced + self.RESYNC_S:
                self.resync()
            self.reconcile()

    def resync(self) -> None:
        """Every object on its controller's queue again: the safety net of an informer's resync period
        (a missed trigger is repaired within RESYNC_S)."""
        with self.store.lock:
            self._resynced = time.monotonic()
            q = self.informer.queues
            for rt, queue in ((JOBS, q.jobs), (DEPLOYMENTS, q.deployments), (REPLICASETS, q.replicasets),
                              (PODS, q.kubelet)):
                for o in self._all(rt):
                    queue.add((o["metadata"].get("namespace") or "", o["metadata"]["name"]))
            self.informer.capacity_changed = True

    # -- controllers -----------------------------------------------------------------------------
    def record(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """An Event about ``obj``; one per (object, reason, message) so that a level-triggered pass repeating
        itself writes nothing."""
        meta = obj["metadata"]
        key = (meta.get("uid", ""), reason, message)
        if key in self._events or len(self._events) >= MAX_EVENTS:
            return
        self._events.add(key)
        rt = next((r for r in RESOURCES if r.kind == obj.get("kind")), None)
        ns = meta.get("namespace") or "default"
        t = now_rfc3339()
        self.store.create(EVENTS, ns, {
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}"},
            "involvedObject": {"kind": obj.get("kind", ""), "namespace": meta.get("namespace", ""),
                               "name": meta["name"], "uid": meta.get("uid", ""),
                               "apiVersion": rt.api_version if rt else "v1",
                               "resourceVersion": meta.get("resourceVersion", "")},
            "reason": reason, "message": message, "type": type_, "count": 1, "firstTimestamp": t,
            "lastTimestamp": t, "source": {"component": "mock-kubelet" if obj.get("kind") == "Pod"
                                           else "mock-controller-manager"},
            "reportingComponent": "awan-mock", "reportingInstance": self.name})

    def reconcile(self) -> None:
        """Drain the work queues: each round hands every controller the keys queued for it (by the writes
        of the request, of the timer, or of the previous round), until a round queues nothing new."""
        with self.store.lock:
            q, inf = self.informer.queues, self.informer
            now = time.monotonic()
            for key in self.kubelet.due_pods(now):
                q.kubelet.add(key)
            for key in self.jobs.due_jobs(now):
                q.jobs.add(key)
            for _ in range(MAX_ROUNDS):
                if q.idle() and not inf.capacity_changed:
                    return
                now = time.monotonic()
                for ns, name in q.kubelet.take():
                    pod = self.store.peek(PODS, ns, name)
                    if pod is not None:
                        self.stats["kubelet"] += 1
                        self.kubelet.visit(pod, inf.nodes.nodes.get((pod.get("spec") or {}).get("nodeName") or ""),
                                           now)
                for ns, name in q.jobs.take():
                    job = self.store.peek(JOBS, ns, name)
                    if job is not None:
                        self.stats["job"] += 1
                        self.jobs.reconcile_one(job, self._controlled(PODS, job))
                for ns, name in q.deployments.take():
                    d = self.store.peek(DEPLOYMENTS, ns, name)
                    if d is not None:
                        self.stats["deployment"] += 1
                        self.deployments.deployment_one(d, functools.partial(self._controlled, REPLICASETS, d))
                for ns, name in q.replicasets.take():
                    rs = self.store.peek(REPLICASETS, ns, name)
                    if rs is not None:
                        self.stats["replicaset"] += 1
                        self.deployments.replicaset_one(rs, self._controlled(PODS, rs))
                keys = list(inf.unbound) if inf.capacity_changed else [k for k in q.scheduler.take() if k in inf.unbound]
                q.scheduler.clear()
                inf.capacity_changed = False
                pending = [p for p in (self.store.peek(PODS, ns, name) for ns, name in keys) if p is not None]
                if pending:
                    self.stats["schedule"] += len(pending)
                    self.kubelet.schedule(pending, inf.nodes, inf.used)
            _log.warning("mock cluster %s: work queues still busy after %d rounds; the timer continues",
                         self.name, MAX_ROUNDS)
            self._wake.set()

    def _controlled(self, rt: ResourceType, owner: Obj) -> list[Obj]:
        """The objects of kind ``rt`` that ``owner`` controls (from the informer's owner index)."""
        uid = owner["metadata"]["uid"]
        out = []
        for ns, name in self.informer.owned(uid, rt.plural):
            o = self.store.peek(rt, ns, name)
            if o is not None and owned_by(o, uid):
                out.append(o)
        return out

    def _all(self, rt: ResourceType) -> list[Obj]:
        items, _ = self.store.list(rt, None, copy_out=False, ordered=False)
        return items

    # -- admission and defaults (subclasses add their kinds) -----------------------------------
    def admit(self, rt: ResourceType, body: Obj, old: Obj | None) -> Obj:
        """Validate and default a write; returns the body to store."""
        if rt is PODS:
            return _admit_pod(body, old)
        if rt is JOBS:
            return _admit_job(body, old)
        if rt is DEPLOYMENTS:
            return _admit_deployment(body)
        if rt is SERVICES and old is None:
            return self._admit_service(body)
        return body

    def after_write(self, rt: ResourceType, obj: Obj, created: bool) -> None:
        """Hook for kind-specific controllers that run synchronously with a write (NodePools)."""

    def after_delete(self, rt: ResourceType, obj: Obj) -> None:
        """Hook for what a delete sets off besides garbage collection (NodePool nodes, capacity)."""

    def _admit_service(self, body: Obj) -> Obj:
        body = copy.deepcopy(body)
        spec = body.setdefault("spec", {})
        if not isinstance(spec, dict):
            raise invalid("Service", "", (body.get("metadata") or {}).get("name", ""), [("spec", "must be an object")])
        spec.setdefault("type", "ClusterIP")
        if spec.get("clusterIP") != "None":
            self._svc_ip += 1
            spec["clusterIP"] = str(ipaddress.ip_address("10.96.0.10") + self._svc_ip)
            spec["clusterIPs"] = [spec["clusterIP"]]
        causes: list[tuple[str, str]] = []
        for i, p in enumerate(spec.get("ports") or []):
            port = p.get("port")
            if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
                causes.append((f"spec.ports[{i}].port", f"Invalid value: {port!r}: must be between 1 and 65535, "
                               "inclusive"))
                continue
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", port)
        if causes:
            raise invalid("Service", "", (body.get("metadata") or {}).get("name", ""), causes)
        body["status"] = {"loadBalancer": {}}
        return body

    # -- verbs -----------------------------------------------------------------------------------
    def region_of(self, rt: ResourceType, ns: str, name: str, body: Any) -> str | None:
        return None

    def get(self, rt: ResourceType, ns: str, name: str) -> Obj:
        return self.store.get(rt, ns, name)

    def list(self, rt: ResourceType, ns: str | None, match: Matcher) -> tuple[list[Obj], int]:
        return self.store.list(rt, ns, match)

    def watch(self, rt: ResourceType, ns: str | None, match: Matcher, since: int | None,
              timeout_s: float) -> Iterator[tuple[str, Obj]]:
        return self.store.watch(rt, ns, match, since, timeout_s)

    def create(self, rt: ResourceType, ns: str, body: Obj) -> Obj:
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        with self.store.lock:
            body = self.admit(rt, body, None)
            keep = rt in (PODS, NODES, NAMESPACES, SERVICES)
            if rt is PODS:
                body = {**body, "status": {"phase": "Pending", "qosClass": "BestEffort"}}
            obj = self.store.create(rt, ns, body, keep_status=keep)
            if rt is JOBS and not (obj["spec"].get("selector") or {}).get("matchLabels"):
                obj = self._label_job(obj)
            self.after_write(rt, obj, True)
            self._settle(rt)
            return self.store.try_get(rt, ns, obj["metadata"]["name"]) or obj

    def _label_job(self, job: Obj) -> Obj:
        """The controller-uid selector and template labels the apiserver gives a Job without manualSelector."""
        uid = job["metadata"]["uid"]
        job = copy.deepcopy(job)
        labels = {UID_LABELS[0]: uid, UID_LABELS[1]: uid, "batch.kubernetes.io/job-name": job["metadata"]["name"],
                  "job-name": job["metadata"]["name"]}
        job["spec"]["selector"] = {"matchLabels": {UID_LABELS[0]: uid}}
        tmeta = job["spec"]["template"].setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), **labels}
        return self.store.update(JOBS, job["metadata"]["namespace"], job["metadata"]["name"], job, check_rv=False)

    def replace(self, rt: ResourceType, ns: str, name: str, body: Obj, status: bool = False) -> Obj:
        with self.store.lock:
            if not status:
                body = self.admit(rt, body, self.store.get(rt, ns, name))
            obj = self.store.update(rt, ns, name, body, status=status)
            if not status:
                self.after_write(rt, obj, False)
            self._settle(rt)
            return self.store.try_get(rt, ns, name) or obj

    def patch(self, rt: ResourceType, ns: str, name: str, apply: Callable[[Obj], Obj], status: bool = False,
              create_missing: bool = False) -> tuple[Obj, bool]:
        """Read, patch, write under one lock. Returns (object, created)."""
        with self.store.lock:
            cur = self.store.try_get(rt, ns, name)
            if cur is None:
                if not create_missing:
                    raise not_found(rt.plural, rt.group, name)
                body = apply({})
                body.setdefault("metadata", {})["name"] = name
                return self.create(rt, ns, body), True
            return self.replace(rt, ns, name, apply(cur), status=status), False

    def delete(self, rt: ResourceType, ns: str, name: str, propagation: str | None = None) -> Obj:
        with self.store.lock:
            obj = self.store.delete(rt, ns, name)
            # batch/v1 Jobs orphan their pods unless told otherwise, as on a real apiserver (kubectl asks
            # for Background); every other kind cascades in the background.
            policy = propagation or ("Orphan" if rt is JOBS else "Background")
            self._collect(obj["metadata"]["uid"], policy)
            self.after_delete(rt, obj)
            self._settle(rt)
            return obj

    def delete_collection(self, rt: ResourceType, ns: str | None, match: Matcher,
                          propagation: str | None = None) -> builtins.list[Obj]:
        with self.store.lock:
            items, _ = self.store.list(rt, ns, match)
            return [self.delete(rt, o["metadata"].get("namespace", ""), o["metadata"]["name"], propagation)
                    for o in items]

    def _collect(self, owner_uid: str, policy: str) -> None:
        """The garbage collector: dependents of a deleted owner are deleted (Background/Foreground, which
        this fake does at once) or released (Orphan)."""
        if policy not in ("Orphan", "Background", "Foreground"):
            raise bad_request(f"unsupported propagationPolicy {policy!r}: Orphan, Background or Foreground")
        kinds = {rt.plural: rt for rt in WORKLOAD_KINDS}
        for plural, ns, name in list(self.informer.dependents.get(owner_uid, {})):
            rt = kinds[plural]
            o = self.store.peek(rt, ns, name)
            if o is not None:
                refs = o["metadata"].get("ownerReferences") or []
                if policy == "Orphan":
                    cur = copy.deepcopy(o)
                    cur["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != owner_uid]
                    if not cur["metadata"]["ownerReferences"]:
                        del cur["metadata"]["ownerReferences"]
                    self.store.update(rt, ns, name, cur, check_rv=False)
                else:
                    gone = self.store.delete(rt, ns, name)
                    self._collect(gone["metadata"]["uid"], "Background")

    def _settle(self, rt: ResourceType) -> None:
        if rt in WORKLOAD_KINDS or rt is NODES:
            self.reconcile()
            self._ensure_ticker()

    # -- logs and test controls ------------------------------------------------------------------
    def pod_logs(self, ns: str, name: str, container: str | None) -> tuple[Obj, str, builtins.list[str]]:
        """(pod, container, lines) or an ApiError as the apiserver words it."""
        pod = self.store.get(PODS, ns, name)
        names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        if container is None:
            default = (pod["metadata"].get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
            if default in names:
                container = default
            elif len(names) == 1:
                container = names[0]
            else:
                raise bad_request(f"a container name must be specified for pod {name}, choose one of: "
                                  f"[{' '.join(str(n) for n in names)}]")
        if container not in names:
            raise bad_request(f"container {container} is not valid for pod {name}")
        lines = self.kubelet.logs(pod, str(container))
        if lines is None:
            waiting = next((((cs.get("state") or {}).get("waiting") or {}).get("reason", "")
                            for cs in (pod.get("status") or {}).get("containerStatuses") or []
                            if cs.get("name") == container), "") or "ContainerCreating"
            if is_terminal(pod):
                return pod, str(container), []
            raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {waiting}')
        return pod, str(container), lines

    def finish_pods(self, ns: str | None, match: Matcher, exit_code: int) -> builtins.list[str]:
        """End the matching running pods now with ``exit_code``; returns their names."""
        with self.store.lock:
            done = [p["metadata"]["name"] for p in self.store.list(PODS, ns, match)[0]
                    if self.kubelet.finish(p, exit_code)]
            self.reconcile()
            return done

    def wait_for(self, pred: Callable[[], bool], timeout_s: float = 30.0) -> bool:
        """In-process helper: poll ``pred`` until it holds (for tests and the bench)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.02)
        return pred()


# -- admission of the workload kinds -----------------------------------------------------------------
def _name(body: Obj) -> str:
    return str((body.get("metadata") or {}).get("name") or (body.get("metadata") or {}).get("generateName") or "")


def _pod_spec_problems(spec: Any, at: str) -> list[tuple[str, str]]:
    if not isinstance(spec, dict):
        return [(at, "Required value")]
    causes: list[tuple[str, str]] = []
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [(f"{at}.containers", "Required value")]
    seen: set[str] = set()
    for i, c in enumerate(containers):
        if not isinstance(c, dict):
            causes.append((f"{at}.containers[{i}]", "must be an object"))
            continue
        if not c.get("name"):
            causes.append((f"{at}.containers[{i}].name", "Required value"))
        elif c["name"] in seen:
            causes.append((f"{at}.containers[{i}].name", f"Duplicate value: {c['name']!r}"))
        seen.add(str(c.get("name")))
        if not c.get("image"):
            causes.append((f"{at}.containers[{i}].image", "Required value"))
        for j, e in enumerate(c.get("env") or []):
            if not isinstance(e, dict) or not e.get("name"):
                causes.append((f"{at}.containers[{i}].env[{j}].name", "Required value"))
        for j, p in enumerate(c.get("ports") or []):
            cp = p.get("containerPort") if isinstance(p, dict) else None
            if not isinstance(cp, int) or isinstance(cp, bool) or not 1 <= cp <= 65535:
                causes.append((f"{at}.containers[{i}].ports[{j}].containerPort",
                               f"Invalid value: {cp!r}: must be between 1 and 65535, inclusive"))
    rp = spec.get("restartPolicy")
    if rp is not None and rp not in ("Always", "OnFailure", "Never"):
        causes.append((f"{at}.restartPolicy", f'Unsupported value: {rp!r}: supported values: "Always", '
                       '"OnFailure", "Never"'))
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and (not isinstance(ads, int) or isinstance(ads, bool) or ads <= 0):
        causes.append((f"{at}.activeDeadlineSeconds", f"Invalid value: {ads!r}: must be greater than 0"))
    return causes


def _default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("serviceAccountName", "default")
    for c in spec.get("containers") or []:
        c.setdefault("imagePullPolicy", "Always" if str(c.get("image", "")).endswith(":latest") else "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})


def _admit_pod(body: Obj, old: Obj | None) -> Obj:
    body = copy.deepcopy(body)
    if old is not None:
        # spec is immutable but for a few fields; the fake keeps binding (nodeName) and the rest as written
        return body
    causes = _pod_spec_problems(body.get("spec"), "spec")
    if causes:
        raise invalid("Pod", "", _name(body), causes)
    _default_pod_spec(body["spec"])
    return body


def _int_field(spec: Obj, key: str, at: str, causes: list[tuple[str, str]], minimum: int) -> None:
    v = spec.get(key)
    if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < minimum):
        causes.append((f"{at}.{key}", f"Invalid value: {v!r}: must be greater than or equal to {minimum}"))


def _admit_job(body: Obj, old: Obj | None) -> Obj:
    body = copy.deepcopy(body)
    spec = body.get("spec")
    name = _name(body)
    if not isinstance(spec, dict):
        raise invalid("Job", "batch", name, [("spec", "Required value")])
    causes = _pod_spec_problems((spec.get("template") or {}).get("spec"), "spec.template.spec")
    rp = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
    if not causes and rp not in ("OnFailure", "Never"):
        causes.append(("spec.template.spec.restartPolicy", f'Required value: valid values: "OnFailure", "Never" '
                       f"(got {rp!r})"))
    for key, minimum in (("parallelism", 0), ("completions", 0), ("backoffLimit", 0), ("activeDeadlineSeconds", 1)):
        _int_field(spec, key, "spec", causes, minimum)
    mode = spec.get("completionMode", "NonIndexed")
    if mode not in ("NonIndexed", "Indexed"):
        causes.append(("spec.completionMode", f'Unsupported value: {mode!r}: supported values: "NonIndexed", '
                       '"Indexed"'))
    elif mode == "Indexed" and spec.get("completions") is None:
        causes.append(("spec.completions", "Required value: when completion mode is Indexed"))
    if old is not None and not causes:
        ospec = old.get("spec") or {}
        for k in ("completions", "completionMode", "template"):
            if k == "template":
                # the apiserver-added labels may be sent back; compare what the user controls
                a = {**(spec.get(k) or {}), "metadata": None}
                b = {**(ospec.get(k) or {}), "metadata": None}
                if a != b:
                    causes.append((f"spec.{k}", "Invalid value: field is immutable"))
            elif spec.get(k, ospec.get(k)) != ospec.get(k) and not (k == "completionMode" and spec.get(k) is None):
                causes.append((f"spec.{k}", "Invalid value: field is immutable"))
        spec.setdefault("selector", ospec.get("selector"))
    if causes:
        raise invalid("Job", "batch", name, causes)
    if old is None:
        if spec.get("completions") is None and spec.get("parallelism") is None:
            spec["completions"] = 1
            spec["parallelism"] = 1
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        _default_pod_spec(spec["template"]["spec"])
    return body


def _admit_deployment(body: Obj) -> Obj:
    body = copy.deepcopy(body)
    spec = body.get("spec")
    name = _name(body)
    if not isinstance(spec, dict):
        raise invalid("Deployment", "apps", name, [("spec", "Required value")])
    tmpl = spec.get("template") or {}
    causes = _pod_spec_problems(tmpl.get("spec"), "spec.template.spec")
    sel = spec.get("selector")
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    if not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        causes.append(("spec.selector", "Required value"))
    elif not selector_matches(sel, labels):
        causes.append(("spec.template.metadata.labels", f"Invalid value: {labels!r}: `selector` does not match "
                       "template `labels`"))
    _int_field(spec, "replicas", "spec", causes, 0)
    rp = (tmpl.get("spec") or {}).get("restartPolicy") if isinstance(tmpl.get("spec"), dict) else None
    if rp not in (None, "Always"):
        causes.append(("spec.template.spec.restartPolicy", f'Unsupported value: {rp!r}: supported values: "Always"'))
    if causes:
        raise invalid("Deployment", "apps", name, causes)
    spec.setdefault("replicas", 1)
    spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%",
                                                                          "maxUnavailable": "25%"}})
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_pod_spec(tmpl["spec"])
    return body


__all__ = ["Cluster", "ApiError", "math"]
