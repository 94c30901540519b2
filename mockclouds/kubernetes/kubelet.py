"""The simulated kube-scheduler and kubelet (in the spirit of KWOK): binds pods to nodes that exist and
fit, then walks each bound pod through Pending -> Running -> Succeeded/Failed on the schedule its
``Program`` gives, writing pod status and Events as a real node would. Pods on a node that disappears
(or gains a NoExecute taint they do not tolerate) fail with reason ``NodeLost`` (or ``Evicted``) and a
``DisruptionTarget`` condition.

All methods run with the store lock held (called from ``Cluster.reconcile``). Run-time facts that have
no place in the API (when a container started, its log) live in ``PodRun`` keyed by pod uid.
"""

from __future__ import annotations

import base64
import heapq
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from mockclouds.kubernetes.program import Program, ProgramError, expand, program_of
from mockclouds.kubernetes.resources import CONFIGMAPS, NODES, PODS, SECRETS
from mockclouds.kubernetes.scheduling import (
    misfit,
    node_ready,
    pod_requests,
    unschedulable_message,
    untolerated_taint,
)
from mockclouds.kubernetes.store import Obj, ObjectStore, now_rfc3339


class NodeSource(Protocol):
    """The scheduler's view of the nodes (``informer.NodeView``)."""

    def all(self) -> list[Obj]: ...
    def candidates(self, pod: Obj) -> list[Obj]: ...

TERMINAL = ("Succeeded", "Failed")
Recorder = Callable[[Obj, str, str, str], None]       # (object, type, reason, message)


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class PodRun:
    program: Program
    node: str
    bound_at: float                     # time.monotonic() of binding
    started_wall: float = 0.0           # time.time() when the container started (0: not yet)
    started_mono: float = 0.0
    restarts: int = 0
    env: dict[str, dict[str, str]] = field(default_factory=dict)     # container -> resolved env
    logs: dict[str, list[str]] = field(default_factory=dict)          # container -> lines so far
    finished: bool = False
    ready: bool = False                 # the Ready condition has been written for this start
    armed: float = -1.0                 # the due time a timer is set for (-1: none pending)

    def due(self) -> float:
        """monotonic time of this pod's next transition (inf: none)."""
        if self.finished:
            return math.inf
        if not self.started_mono:
            return self.bound_at + self.program.start_s
        end_at = self.started_mono + self.program.duration_s
        return end_at if self.ready else min(self.started_mono + self.program.ready_s, end_at)


class EnvError(Exception):
    """A secret/configmap reference that cannot be resolved: CreateContainerConfigError."""


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in TERMINAL


class Kubelet:
    def __init__(self, store: ObjectStore, record: Recorder) -> None:
        self.store, self.record = store, record
        self.runs: dict[str, PodRun] = {}
        self._requests: dict[str, dict[str, float]] = {}
        self._timers: list[tuple[float, str, str, str]] = []     # (due, namespace, name, uid), a heap
        self._ip = 0
        self.visits: Counter[str] = Counter()     # pods looked at, per role (the bounded-work test reads it)

    def reset(self) -> None:
        self.runs.clear()
        self._requests.clear()
        self._timers.clear()
        self._ip = 0

    def next_due(self) -> float:
        """monotonic time of the earliest pod timer (a stale one only wakes the ticker early)."""
        return self._timers[0][0] if self._timers else math.inf

    # -- helpers ---------------------------------------------------------------------------------
    def _write_status(self, pod: Obj, status: Obj) -> Obj:
        return self.store.update(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"], {"status": status},
                                 status=True, check_rv=False)

    def _next_ip(self) -> str:
        self._ip += 1
        return f"10.244.{(self._ip // 250) % 250}.{self._ip % 250 + 2}"

    # -- scheduler -------------------------------------------------------------------------------
    def schedule(self, pending: list[Obj], nodes: NodeSource, used: Callable[[str], dict[str, float]]) -> None:
        """Bind each of ``pending`` (unbound, unfinished pods) that fits somewhere; mark the rest
        Unschedulable. ``used(node)`` is what the pods bound there request (kept current by the informer,
        so a bind here counts for the next pod)."""
        # Pod scheduling readiness (KEP-3521): a pod with schedulingGates is not considered until every
        # gate is removed; it shows PodScheduled=False/SchedulingGated, as kube-scheduler reports it.
        for p in [p for p in pending if (p.get("spec") or {}).get("schedulingGates")]:
            self._gated(p)
        pending = [p for p in pending if not (p.get("spec") or {}).get("schedulingGates")]
        # Oldest first, then by name (completion index order for an indexed Job's pods).
        pending = sorted(pending, key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))
        for p in pending:
            self.visits["schedule"] += 1
            req = self.requests(p)
            chosen = next((n for n in nodes.candidates(p) if misfit(p, n, used(n["metadata"]["name"]), req) is None),
                          None)
            if chosen is None:
                # The message counts every node's reason, as kube-scheduler's does: the slow path, taken
                # only by a pod that fits nowhere.
                every = nodes.all()
                reasons: dict[str, int] = {}
                for n in every:
                    why = misfit(p, n, used(n["metadata"]["name"]), req)
                    if why is not None:
                        reasons[why] = reasons.get(why, 0) + 1
                self._unschedulable(p, unschedulable_message(len(every), reasons))
                continue
            self._bind(p, chosen)

    def _gated(self, pod: Obj) -> None:
        st = dict(pod.get("status") or {})
        old = next((c for c in st.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        if old and old.get("reason") == "SchedulingGated":
            return
        st.update(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated",
                                                "message": "Scheduling is blocked due to non-empty scheduling gates",
                                                "lastProbeTime": None, "lastTransitionTime": now_rfc3339()}])
        st.setdefault("qosClass", "BestEffort")
        self._write_status(pod, st)

    def _unschedulable(self, pod: Obj, message: str) -> None:
        st = dict(pod.get("status") or {})
        cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                "lastProbeTime": None}
        old = next((c for c in st.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        if old and old.get("message") == message and old.get("status") == "False":
            return
        cond["lastTransitionTime"] = (old or {}).get("lastTransitionTime") or now_rfc3339()
        st.update(phase="Pending", conditions=[cond])
        st.setdefault("qosClass", "BestEffort")
        self._write_status(pod, st)
        self.record(pod, "Warning", "FailedScheduling", message)

    def _bind(self, pod: Obj, node: Obj) -> None:
        name = node["metadata"]["name"]
        ns, pname = pod["metadata"]["namespace"], pod["metadata"]["name"]
        cur = self.store.get(PODS, ns, pname)
        cur["spec"]["nodeName"] = name
        self.store.update(PODS, ns, pname, cur, check_rv=False)
        self.record(pod, "Normal", "Scheduled", f"Successfully assigned {ns}/{pname} to {name}")
        bound = self.store.peek(PODS, ns, pname)
        if bound is not None:
            self.admit(bound, node)

    def admit(self, pod: Obj, node: Obj) -> None:
        """A pod bound to ``node`` (by the scheduler or by spec.nodeName): the kubelet takes it on."""
        uid = pod["metadata"]["uid"]
        if uid in self.runs:
            return
        t = now_rfc3339()
        base = {"phase": "Pending", "hostIP": _host_ip(node), "startTime": t, "qosClass": _qos(pod),
                "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": t,
                                "lastProbeTime": None}]}
        try:
            program = program_of(pod)
        except ProgramError as e:
            self._write_status(pod, {**base, "phase": "Failed", "reason": "MockProgramError", "message": str(e)})
            self.record(pod, "Warning", "Failed", str(e))
            return
        run = self.runs[uid] = PodRun(program, node["metadata"]["name"], time.monotonic())
        base["containerStatuses"] = [_waiting(c, "ContainerCreating", "") for c in _containers(pod)]
        self._write_status(pod, base)
        self._arm(pod, run)

    # -- one pod -----------------------------------------------------------------------------------
    def visit(self, pod: Obj, node: Obj | None, now: float) -> None:
        """What the kubelet (and the pod GC and taint manager) does for one pod whose object or node
        changed, or whose time has come: fail it when its node is gone or taints it NoExecute, take it on
        when bound to a ready node, or move it to its next phase."""
        self.visits["kubelet"] += 1
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name or is_terminal(pod):
            return
        if node is None:
            self._fail_disrupted(pod, "NodeLost", f"Node {node_name} which was running pod {pod['metadata']['name']}"
                                 " is gone (deleted, preempted or revoked)", "DeletionByPodGC",
                                 "PodGC: node no longer exists")
            return
        taint = untolerated_taint(pod, node, ("NoExecute",))
        if taint is not None:
            self._fail_disrupted(pod, "Evicted", f"Taint {taint.get('key')} on node {node_name} evicted the pod",
                                 "DeletionByTaintManager", "Taint manager: deleting due to NoExecute taint")
            return
        run = self.runs.get(pod["metadata"]["uid"])
        if run is None:
            if node_ready(node):
                self.admit(pod, node)
            return
        if run.due() <= now:
            if not run.started_mono:
                self._start(pod, run)
            else:
                self._progress(pod, run, now)
        self._arm(pod, run)

    def _arm(self, pod: Obj, run: PodRun) -> None:
        """Wake the pod up when its next transition is due (one live timer per pod)."""
        due = run.due()
        if due == math.inf:
            run.armed = -1.0            # nothing more to wait for: a timer still queued is stale
        elif due != run.armed:
            run.armed = due
            meta = pod["metadata"]
            heapq.heappush(self._timers, (due, meta["namespace"], meta["name"], meta["uid"]))

    def due_pods(self, now: float) -> list[tuple[str, str]]:
        """(namespace, name) of the pods whose timer has fired; timers made stale by a later one are dropped."""
        out: list[tuple[str, str]] = []
        while self._timers and self._timers[0][0] <= now:
            due, ns, name, uid = heapq.heappop(self._timers)
            run = self.runs.get(uid)
            if run is not None and run.armed == due:
                run.armed = -1.0
                out.append((ns, name))
        return out

    def _fail_disrupted(self, pod: Obj, reason: str, message: str, cond_reason: str, cond_message: str) -> None:
        run = self.runs.get(pod["metadata"]["uid"])
        if run is not None:
            run.finished = True
            for c in run.logs.values():
                c.append(f"[mock-kubelet] container killed: {reason}")
        t = now_rfc3339()
        st = dict(pod.get("status") or {})
        conds = [c for c in st.get("conditions") or [] if c.get("type") not in ("Ready", "ContainersReady",
                                                                               "DisruptionTarget")]
        conds += [{"type": "DisruptionTarget", "status": "True", "reason": cond_reason, "message": cond_message,
                   "lastTransitionTime": t, "lastProbeTime": None},
                  {"type": "Ready", "status": "False", "reason": "PodFailed", "lastTransitionTime": t,
                   "lastProbeTime": None}]
        started = run.started_wall if run and run.started_wall else None
        st.update(phase="Failed", reason=reason, message=message, conditions=conds,
                  containerStatuses=[_terminated(c, 137, reason, started, t, run.restarts if run else 0)
                                     for c in _containers(pod)])
        self._write_status(pod, st)
        self.record(pod, "Warning", reason, message)

    # -- lifecycle -------------------------------------------------------------------------------
    def forget(self, uid: str) -> None:
        """A pod was deleted: drop what the kubelet kept of it."""
        self.runs.pop(uid, None)
        self._requests.pop(uid, None)

    def requests(self, pod: Obj) -> dict[str, float]:
        """pod_requests, cached per pod (containers' resources cannot change once created)."""
        uid = pod["metadata"]["uid"]
        got = self._requests.get(uid)
        if got is None:
            got = self._requests[uid] = pod_requests(pod)
        return got

    def _resolve_env(self, pod: Obj, c: Obj) -> dict[str, str]:
        ns = pod["metadata"]["namespace"]
        env: dict[str, str] = {}
        for src in c.get("envFrom") or []:
            prefix = src.get("prefix") or ""
            for kind, rt in (("secretRef", SECRETS), ("configMapRef", CONFIGMAPS)):
                ref = src.get(kind)
                if not ref:
                    continue
                obj = self.store.try_get(rt, ns, ref.get("name", ""))
                if obj is None:
                    if ref.get("optional"):
                        continue
                    raise EnvError(f'{rt.singular} "{ref.get("name")}" not found')
                for k, v in _data(obj).items():
                    env[prefix + k] = v
        for e in c.get("env") or []:
            name = e.get("name", "")
            if "value" in e or "valueFrom" not in e:
                env[name] = expand(str(e.get("value") or ""), env)
                continue
            vf = e["valueFrom"] or {}
            if "fieldRef" in vf:
                env[name] = _field(pod, (vf["fieldRef"] or {}).get("fieldPath", ""))
                continue
            for kind, rt in (("secretKeyRef", SECRETS), ("configMapKeyRef", CONFIGMAPS)):
                ref = vf.get(kind)
                if not ref:
                    continue
                obj = self.store.try_get(rt, ns, ref.get("name", ""))
                data = _data(obj) if obj is not None else None
                if data is None or ref.get("key") not in data:
                    if ref.get("optional"):
                        break
                    what = f'{rt.singular} "{ref.get("name")}" not found' if obj is None else \
                        f'couldn\'t find key {ref.get("key")} in {rt.kind} {ns}/{ref.get("name")}'
                    raise EnvError(what)
                env[name] = data[ref["key"]]
            if "resourceFieldRef" in vf:
                env[name] = "0"
        return env

    def _start(self, pod: Obj, run: PodRun) -> None:
        containers = _containers(pod)
        try:
            envs = {c["name"]: self._resolve_env(pod, c) for c in containers}
        except EnvError as e:
            # Retry in a second, as the kubelet does with back-off (the Secret may be created meanwhile).
            run.bound_at = time.monotonic() + 1.0 - run.program.start_s
            st = dict(pod.get("status") or {})
            st["containerStatuses"] = [_waiting(c, "CreateContainerConfigError", str(e)) for c in containers]
            if st != pod.get("status"):
                self._write_status(pod, st)
                self.record(pod, "Warning", "Failed", f"Error: {e}")
            return
        run.env = envs
        run.started_wall, run.started_mono = time.time(), time.monotonic()
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        for c in containers:
            env = envs[c["name"]]
            lines = run.logs.setdefault(c["name"], [])
            if run.restarts:
                lines.append(f"[mock-kubelet] container {c['name']} restarted (restart {run.restarts})")
            lines.append(f"[mock-kubelet] container {c['name']} started: image {c.get('image', '')}, "
                         f"pod {ns}/{name}, node {run.node}")
            lines += [f"[mock-kubelet] env {k}={v}" for k, v in sorted(env.items())]
            if c is containers[0]:
                lines += [expand(line, env) for line in run.program.lines]
        st = dict(pod.get("status") or {})
        t = rfc3339(run.started_wall)
        ready = run.ready = run.program.ready_s == 0
        st.update(phase="Running", podIP=st.get("podIP") or self._next_ip(),
                  conditions=_conditions(st, ready, t),
                  containerStatuses=[_running(c, t, ready, run.restarts) for c in containers])
        st["podIPs"] = [{"ip": st["podIP"]}]
        self._write_status(pod, st)
        self.record(pod, "Normal", "Started", f"Started container {containers[0]['name']}")

    def _progress(self, pod: Obj, run: PodRun, now: float) -> None:
        prog = run.program
        containers = _containers(pod)
        if now >= run.started_mono + prog.duration_s:
            self._exit(pod, run, containers)
            return
        if now >= run.started_mono + prog.ready_s:
            run.ready = True
            st = dict(pod.get("status") or {})
            t = now_rfc3339()
            if not all(cs.get("ready") for cs in st.get("containerStatuses") or []):
                st.update(conditions=_conditions(st, True, t),
                          containerStatuses=[_running(c, rfc3339(run.started_wall), True, run.restarts)
                                             for c in containers])
                self._write_status(pod, st)

    def _exit(self, pod: Obj, run: PodRun, containers: list[Obj]) -> None:
        code = run.program.exit_code
        for c in containers:
            run.logs.setdefault(c["name"], []).append(f"[mock-kubelet] container {c['name']} exited with code {code}")
        policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
        if policy == "Always" or (policy == "OnFailure" and code != 0):
            run.restarts += 1
            run.started_mono = 0.0
            run.bound_at = time.monotonic() - run.program.start_s    # restart at once (no back-off)
            self._start(pod, run)
            return
        run.finished = True
        t = now_rfc3339()
        st = dict(pod.get("status") or {})
        st.update(phase="Succeeded" if code == 0 else "Failed",
                  conditions=_conditions(st, False, t, reason="PodCompleted" if code == 0 else "PodFailed"),
                  containerStatuses=[_terminated(c, code, "Completed" if code == 0 else "Error", run.started_wall, t,
                                                 run.restarts) for c in containers])
        self._write_status(pod, st)

    # -- logs ------------------------------------------------------------------------------------
    def logs(self, pod: Obj, container: str) -> list[str] | None:
        """The container's lines, or None when it has not started."""
        run = self.runs.get(pod["metadata"]["uid"])
        if run is None or container not in run.logs:
            return None
        return list(run.logs[container])

    def finish(self, pod: Obj, exit_code: int) -> bool:
        """Make a running pod's container exit now with ``exit_code`` (the ``/_mock/pods/finish`` control)."""
        run = self.runs.get(pod["metadata"]["uid"])
        if run is None or run.finished or not run.started_mono:
            return False
        run.program = Program(run.program.start_s, 0.0, exit_code, run.program.ready_s, run.program.lines)
        self._exit(pod, run, _containers(pod))
        return True


# -- status fragments ------------------------------------------------------------------------------
def _containers(pod: Obj) -> list[Obj]:
    return [c for c in (pod.get("spec") or {}).get("containers") or [] if isinstance(c, dict) and c.get("name")]


def _host_ip(node: Obj) -> str:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            return str(a.get("address"))
    return "10.0.0.1"


def _qos(pod: Obj) -> str:
    return "BestEffort" if not any((c.get("resources") or {}) for c in _containers(pod)) else "Burstable"


def _data(obj: Obj) -> dict[str, str]:
    out = {k: str(v) for k, v in (obj.get("stringData") or {}).items()}
    if obj.get("kind") == "Secret":
        for k, v in (obj.get("data") or {}).items():
            try:
                out[k] = base64.b64decode(str(v)).decode()
            except ValueError:
                out[k] = ""
    else:
        out.update({k: str(v) for k, v in (obj.get("data") or {}).items()})
    return out


def _field(pod: Obj, path: str) -> str:
    meta, spec, st = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    simple = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
              "status.podIP": st.get("podIP"), "status.hostIP": st.get("hostIP")}
    if path in simple:
        return str(simple[path] or "")
    for prefix, key in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        if path.startswith(prefix + "['") and path.endswith("']"):
            return str((meta.get(key) or {}).get(path[len(prefix) + 2:-2], ""))
    return ""


def _image_id(c: Obj) -> str:
    return f"docker.io/library/{c.get('image', '')}@sha256:{'0' * 64}"


def _waiting(c: Obj, reason: str, message: str) -> Obj:
    w: Obj = {"reason": reason}
    if message:
        w["message"] = message
    return {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False, "restartCount": 0,
            "started": False, "state": {"waiting": w}}


def _running(c: Obj, started_at: str, ready: bool, restarts: int) -> Obj:
    return {"name": c["name"], "image": c.get("image", ""), "imageID": _image_id(c),
            "containerID": f"containerd://{abs(hash((c['name'], started_at))):x}", "ready": ready,
            "restartCount": restarts, "started": True, "state": {"running": {"startedAt": started_at}}}


def _terminated(c: Obj, code: int, reason: str, started: float | None, finished: str, restarts: int) -> Obj:
    term: Obj = {"exitCode": code, "reason": reason, "finishedAt": finished}
    if started:
        term["startedAt"] = rfc3339(started)
    return {"name": c["name"], "image": c.get("image", ""), "imageID": _image_id(c), "ready": False,
            "restartCount": restarts, "started": False, "state": {"terminated": term}}


def _conditions(st: Obj, ready: bool, t: str, reason: str = "") -> list[Obj]:
    old = {c.get("type"): c for c in st.get("conditions") or []}
    out = []
    for type_, ok in (("PodReadyToStartContainers", True), ("Initialized", True), ("Ready", ready),
                      ("ContainersReady", ready), ("PodScheduled", True)):
        prev = old.get(type_) or {}
        status = "True" if ok else "False"
        c: Obj = {"type": type_, "status": status, "lastProbeTime": None,
                  "lastTransitionTime": prev.get("lastTransitionTime", t) if prev.get("status") == status else t}
        if not ok and reason:
            c["reason"] = reason
        out.append(c)
    return out


__all__ = ["Kubelet", "PodRun", "is_terminal", "TERMINAL", "NODES"]
