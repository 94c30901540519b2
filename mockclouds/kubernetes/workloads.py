"""The workload controllers of the fake: Job (batch/v1), Deployment -> ReplicaSet -> Pods (apps/v1),
and the garbage collector that follows ownerReferences.

Level-triggered like kube-controller-manager: each pass reads the objects and makes the pods and
statuses match. Runs with the store lock held (from ``Cluster.reconcile``). Job bookkeeping that a
real Job controller keeps with pod finalizers (which pods were already counted) is kept in
``JobController.counted`` so that deleted pods do not un-count failures.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from mockclouds.kubernetes.kubelet import is_terminal, rfc3339
from mockclouds.kubernetes.program import INDEX_ANNOTATION
from mockclouds.kubernetes.resources import DEPLOYMENTS, JOBS, PODS, REPLICASETS, ResourceType
from mockclouds.kubernetes.scheduling import expr_match
from mockclouds.kubernetes.store import Obj, ObjectStore, now_rfc3339

Recorder = Callable[[Obj, str, str, str], None]
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
HASH_LABEL = "pod-template-hash"


def owner_ref(obj: Obj, rt: ResourceType) -> Obj:
    return {"apiVersion": rt.api_version, "kind": rt.kind, "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def owned_by(obj: Obj, uid: str) -> bool:
    return any(r.get("uid") == uid and r.get("controller") for r in obj["metadata"].get("ownerReferences") or [])


def by_controller(objs: list[Obj]) -> dict[str, list[Obj]]:
    """Objects grouped by the uid of their controller owner (one pass, not one scan per owner)."""
    out: dict[str, list[Obj]] = {}
    for o in objs:
        for r in o["metadata"].get("ownerReferences") or []:
            if r.get("controller"):
                out.setdefault(str(r.get("uid")), []).append(o)
                break
    return out


def selector_matches(selector: Obj | None, labels: dict[str, str] | None) -> bool:
    """A LabelSelector object (matchLabels + matchExpressions) against labels; an empty one matches nothing
    (as for a Service without a selector)."""
    if not selector:
        return False
    lab = labels or {}
    if any(lab.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    return all(expr_match(e, lab) for e in selector.get("matchExpressions") or [])


def _rand() -> str:
    return uuid.uuid4().hex[:5]


def _cond(old: list[Obj], type_: str, status: str, reason: str, message: str) -> Obj:
    prev = next((c for c in old if c.get("type") == type_), {})
    t = now_rfc3339()
    same = prev.get("status") == status
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastProbeTime": prev.get("lastProbeTime", t) if same else t,
            "lastTransitionTime": prev.get("lastTransitionTime", t) if same else t}


def _ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def _ranges(indexes: set[int]) -> str:
    out: list[str] = []
    for i in sorted(indexes):
        if out and out[-1].split("-")[-1] == str(i - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{i}"
        else:
            out.append(str(i))
    return ",".join(out)


class JobController:
    def __init__(self, store: ObjectStore, record: Recorder) -> None:
        self.store, self.record = store, record
        # job uid -> pod uid -> "succeeded" | "failed" | "ignored"
        self.counted: dict[str, dict[str, str]] = {}
        self.started: dict[str, float] = {}           # job uid -> monotonic start (activeDeadlineSeconds)
        self.deadlines: dict[str, tuple[float, str, str]] = {}   # running job uid -> (due, namespace, name)

    def reset(self) -> None:
        self.counted.clear()
        self.started.clear()
        self.deadlines.clear()

    def forget(self, uid: str) -> None:
        """The Job was deleted."""
        self.counted.pop(uid, None)
        self.started.pop(uid, None)
        self.deadlines.pop(uid, None)

    def next_due(self) -> float:
        """monotonic time of the earliest activeDeadlineSeconds expiry."""
        return min((d for d, _, _ in self.deadlines.values()), default=float("inf"))

    def due_jobs(self, now: float) -> list[tuple[str, str]]:
        return [(ns, name) for d, ns, name in self.deadlines.values() if d <= now]

    def reconcile_one(self, job: Obj, pods: list[Obj]) -> None:
        """One Job against the pods it controls (reads both; writes pods and the Job's status)."""
        if _finished(job):
            self.deadlines.pop(job["metadata"]["uid"], None)
            return
        self._one(job, pods)

    def _one(self, job: Obj, pods: list[Obj]) -> None:
        spec, meta = job.get("spec") or {}, job["metadata"]
        uid, ns = meta["uid"], meta["namespace"]
        status = copy.deepcopy(job.get("status") or {})
        conds: list[Obj] = status.get("conditions") or []
        if _finished(job):
            return
        counted = self.counted.setdefault(uid, {})
        indexed = spec.get("completionMode") == "Indexed"
        parallelism = int(spec.get("parallelism", 1) if spec.get("parallelism") is not None else 1)
        completions = spec.get("completions")
        backoff = int(spec["backoffLimit"]) if spec.get("backoffLimit") is not None else 6
        suspended = bool(spec.get("suspend"))

        fail_job: tuple[str, str] | None = None
        for p in pods:
            puid = p["metadata"]["uid"]
            if puid in counted or not is_terminal(p):
                continue
            if p["status"]["phase"] == "Succeeded":
                counted[puid] = "succeeded"
                continue
            action = _failure_action(spec.get("podFailurePolicy"), p)
            counted[puid] = "ignored" if action == "Ignore" else "failed"
            if action == "FailJob":
                fail_job = ("PodFailurePolicy", f"Pod {ns}/{p['metadata']['name']} has condition or exit code "
                            "matching a FailJob rule")
        active = [p for p in pods if not is_terminal(p) and not p["metadata"].get("deletionTimestamp")]
        succeeded_idx = {int(p["metadata"]["annotations"][INDEX_ANNOTATION]) for p in pods
                         if counted.get(p["metadata"]["uid"]) == "succeeded"
                         and INDEX_ANNOTATION in (p["metadata"].get("annotations") or {})} if indexed else set()
        n_succeeded = sum(1 for v in counted.values() if v == "succeeded")
        n_failed = sum(1 for v in counted.values() if v == "failed") + sum(
            int(cs.get("restartCount", 0)) for p in active for cs in (p.get("status") or {}).get("containerStatuses") or [])

        if not suspended and uid not in self.started:
            self.started[uid] = time.monotonic()
            status["startTime"] = now_rfc3339()
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None and uid in self.started:
            self.deadlines[uid] = (self.started[uid] + float(deadline), ns, meta["name"])
        if fail_job is None and n_failed > backoff:
            fail_job = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        if fail_job is None and deadline is not None and uid in self.started and \
                time.monotonic() >= self.started[uid] + float(deadline):
            fail_job = ("DeadlineExceeded", "Job was active longer than specified deadline")

        if indexed:
            done = completions is not None and len(succeeded_idx) >= int(completions)
        elif completions is None:
            done = n_succeeded > 0 and not active
        else:
            done = n_succeeded >= int(completions)

        if fail_job or done:
            self.deadlines.pop(uid, None)
            for p in active:
                self.store.delete(PODS, ns, p["metadata"]["name"])
            active = []
            t = now_rfc3339()
            if fail_job:
                conds = [c for c in conds if c.get("type") not in ("FailureTarget", "Failed")]
                conds += [_cond(conds, "FailureTarget", "True", *fail_job), _cond(conds, "Failed", "True", *fail_job)]
                self.record(job, "Warning", fail_job[0], fail_job[1])
            else:
                conds = [c for c in conds if c.get("type") not in ("SuccessCriteriaMet", "Complete")]
                conds += [_cond(conds, "SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number "
                                "of succeeded pods"),
                          _cond(conds, "Complete", "True", "CompletionsReached", "Reached expected number of "
                                "succeeded pods")]
                status["completionTime"] = t
                self.record(job, "Normal", "Completed", "Job completed")
        elif suspended:
            for p in active:
                self.store.delete(PODS, ns, p["metadata"]["name"])
            active = []
            conds = [c for c in conds if c.get("type") != "Suspended"] + [
                _cond(conds, "Suspended", "True", "JobSuspended", "Job suspended")]
        else:
            conds = [c for c in conds if c.get("type") != "Suspended"] + (
                [_cond(conds, "Suspended", "False", "JobResumed", "Job resumed")]
                if any(c.get("type") == "Suspended" for c in conds) else [])
            active = active + self._create_pods(job, active, succeeded_idx, n_succeeded, parallelism, completions,
                                                indexed)
        status.update(active=len(active), succeeded=n_succeeded, failed=n_failed,
                      ready=sum(1 for p in active if _ready(p)), terminating=0)
        if indexed:
            status["completedIndexes"] = _ranges(succeeded_idx)
        status["conditions"] = conds
        for k in ("active", "succeeded", "failed"):
            if not status.get(k):
                status.pop(k, None)
        if not conds:
            status.pop("conditions", None)
        if status != (job.get("status") or {}):
            self.store.update(JOBS, ns, meta["name"], {"status": status}, status=True, check_rv=False)

    def _create_pods(self, job: Obj, active: list[Obj], succeeded_idx: set[int], n_succeeded: int,
                     parallelism: int, completions: Any, indexed: bool) -> list[Obj]:
        made: list[Obj] = []
        if indexed:
            total = int(completions or 0)
            busy = {int((p["metadata"].get("annotations") or {}).get(INDEX_ANNOTATION, -1)) for p in active}
            todo = [i for i in range(total) if i not in succeeded_idx and i not in busy]
            for i in todo[:max(0, parallelism - len(active))]:
                made.append(self._pod(job, i))
        else:
            remaining = (int(completions) - n_succeeded) if completions is not None else parallelism
            want = min(parallelism, remaining) if completions is not None else (parallelism if n_succeeded == 0 else 0)
            for _ in range(max(0, want - len(active))):
                made.append(self._pod(job, None))
        return made

    def _pod(self, job: Obj, index: int | None) -> Obj:
        meta, spec = job["metadata"], job.get("spec") or {}
        tmpl = copy.deepcopy(spec.get("template") or {})
        pmeta = tmpl.get("metadata") or {}
        labels = dict(pmeta.get("labels") or {})
        ann = dict(pmeta.get("annotations") or {})
        for k in JOB_NAME_LABELS:
            labels[k] = meta["name"]
        for k in UID_LABELS:
            labels[k] = meta["uid"]
        pspec = tmpl.get("spec") or {}
        name = f"{meta['name']}-{_rand()}"
        if index is not None:
            labels[INDEX_LABEL] = str(index)
            ann[INDEX_ANNOTATION] = str(index)
            name = f"{meta['name']}-{index}-{_rand()}"
            pspec["hostname"] = f"{meta['name']}-{index}"
            for c in pspec.get("containers") or []:
                env = [e for e in c.get("env") or [] if e.get("name") != "JOB_COMPLETION_INDEX"]
                c["env"] = [{"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                    "fieldPath": f"metadata.annotations['{INDEX_ANNOTATION}']"}}}, *env]
        body = {"metadata": {"name": name, "labels": labels, "annotations": ann,
                             "ownerReferences": [owner_ref(job, JOBS)]},
                "spec": pspec, "status": {"phase": "Pending"}}
        pod = self.store.create(PODS, meta["namespace"], body, keep_status=True)
        self.record(job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
        return pod


def _finished(job: Obj) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


def _failure_action(policy: Obj | None, pod: Obj) -> str:
    """The action of the first podFailurePolicy rule matching the failed pod ("Count" when none)."""
    for rule in (policy or {}).get("rules") or []:
        codes = rule.get("onExitCodes")
        if codes:
            values, negate = list(codes.get("values") or []), codes.get("operator") == "NotIn"
            exits = [((cs.get("state") or {}).get("terminated") or {}).get("exitCode")
                     for cs in (pod.get("status") or {}).get("containerStatuses") or []
                     if not codes.get("containerName") or cs.get("name") == codes.get("containerName")]
            if any(x is not None and x != 0 and ((x in values) != negate) for x in exits):
                return str(rule.get("action", "Count"))
        for pc in rule.get("onPodConditions") or []:
            if any(c.get("type") == pc.get("type") and c.get("status") == pc.get("status", "True")
                   for c in (pod.get("status") or {}).get("conditions") or []):
                return str(rule.get("action", "Count"))
    return "Count"


def template_hash(template: Obj) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


class DeploymentController:
    """Deployment -> one ReplicaSet per pod template (older ones scaled to 0) -> pods."""

    def __init__(self, store: ObjectStore, record: Recorder) -> None:
        self.store, self.record = store, record

    def deployment_one(self, d: Obj, replicasets: Callable[[], list[Obj]]) -> None:
        """One Deployment: its ReplicaSet for the current template at the wanted scale, older ones at 0,
        then its status. ``replicasets()`` reads the ReplicaSets it controls (again after the writes)."""
        self._deployment(d, replicasets())
        self._deployment_status(d, replicasets())

    def replicaset_one(self, rs: Obj, pods: list[Obj]) -> None:
        self._replicaset(rs, pods)

    def _deployment(self, d: Obj, mine: list[Obj]) -> None:
        spec, meta = d.get("spec") or {}, d["metadata"]
        tmpl = copy.deepcopy(spec.get("template") or {})
        h = template_hash(tmpl)
        replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        current = next((rs for rs in mine if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) == h), None)
        if current is None:
            tmeta = tmpl.setdefault("metadata", {})
            tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: h}
            sel = copy.deepcopy(spec.get("selector") or {})
            sel["matchLabels"] = {**(sel.get("matchLabels") or {}), HASH_LABEL: h}
            rs_name = f"{meta['name']}-{h}"
            self.store.create(REPLICASETS, meta["namespace"], {
                "metadata": {"name": rs_name, "labels": tmeta["labels"], "ownerReferences": [owner_ref(d, DEPLOYMENTS)],
                             "annotations": {"deployment.kubernetes.io/desired-replicas": str(replicas)}},
                "spec": {"replicas": replicas, "selector": sel, "template": tmpl}})
            self.record(d, "Normal", "ScalingReplicaSet", f"Scaled up replica set {rs_name} to {replicas}")
        elif int((current.get("spec") or {}).get("replicas", 0)) != replicas:
            cur = copy.deepcopy(current)
            cur["spec"]["replicas"] = replicas
            self.store.update(REPLICASETS, meta["namespace"], cur["metadata"]["name"], cur, check_rv=False)
        for rs in mine:
            if rs is not current and (rs["metadata"].get("labels") or {}).get(HASH_LABEL) != h \
                    and int((rs.get("spec") or {}).get("replicas", 0)) != 0:
                cur = copy.deepcopy(rs)
                cur["spec"]["replicas"] = 0
                self.store.update(REPLICASETS, meta["namespace"], cur["metadata"]["name"], cur, check_rv=False)

    def _replicaset(self, rs: Obj, pods: list[Obj]) -> None:
        spec, meta = rs.get("spec") or {}, rs["metadata"]
        ns = meta["namespace"]
        for p in pods:
            if is_terminal(p):       # failed pods (node lost, evicted) are replaced and cleaned up
                self.store.delete(PODS, ns, p["metadata"]["name"])
        active = [p for p in pods if not is_terminal(p)]
        want = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        if len(active) < want:
            tmpl = copy.deepcopy(spec.get("template") or {})
            pmeta = tmpl.get("metadata") or {}
            for _ in range(want - len(active)):
                pod = self.store.create(PODS, ns, {
                    "metadata": {"name": f"{meta['name']}-{_rand()}", "labels": dict(pmeta.get("labels") or {}),
                                 "annotations": dict(pmeta.get("annotations") or {}),
                                 "ownerReferences": [owner_ref(rs, REPLICASETS)]},
                    "spec": tmpl.get("spec") or {}, "status": {"phase": "Pending"}}, keep_status=True)
                active.append(pod)
                self.record(rs, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
        elif len(active) > want:
            # Unscheduled and not-ready pods go first, as the ReplicaSet controller prefers.
            victims = sorted(active, key=lambda p: (bool((p.get("spec") or {}).get("nodeName")), _ready(p)))
            for p in victims[:len(active) - want]:
                self.store.delete(PODS, ns, p["metadata"]["name"])
                self.record(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}")
            active = victims[len(active) - want:]
        status = {"replicas": len(active), "fullyLabeledReplicas": len(active),
                  "readyReplicas": sum(1 for p in active if _ready(p)),
                  "availableReplicas": sum(1 for p in active if _ready(p)),
                  "observedGeneration": meta.get("generation", 1)}
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
        if status != (rs.get("status") or {}):
            self.store.update(REPLICASETS, ns, meta["name"], {"status": status}, status=True, check_rv=False)

    def _deployment_status(self, d: Obj, mine: list[Obj]) -> None:
        spec, meta = d.get("spec") or {}, d["metadata"]
        h = template_hash(spec.get("template") or {})
        replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        total = sum(int((rs.get("status") or {}).get("replicas", 0)) for rs in mine)
        ready = sum(int((rs.get("status") or {}).get("readyReplicas", 0)) for rs in mine)
        updated = sum(int((rs.get("status") or {}).get("replicas", 0)) for rs in mine
                      if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) == h)
        old = (d.get("status") or {}).get("conditions") or []
        available = ready >= replicas
        complete = available and updated == replicas and total == replicas
        rs_name = f"{meta['name']}-{h}"
        conds = [
            _cond(old, "Available", "True" if available else "False",
                  "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                  "Deployment has minimum availability." if available else "Deployment does not have minimum "
                  "availability."),
            _cond(old, "Progressing", "True", "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                  f'ReplicaSet "{rs_name}" has successfully progressed.' if complete
                  else f'ReplicaSet "{rs_name}" is progressing.'),
        ]
        for c in conds:      # keep update times stable unless the reason changed
            prev: Obj = next((o for o in old if o.get("type") == c["type"]), {})
            if prev.get("reason") == c["reason"] and prev.get("status") == c["status"]:
                c["lastUpdateTime"] = prev.get("lastUpdateTime", c["lastTransitionTime"])
            else:
                c["lastUpdateTime"] = now_rfc3339()
            c.pop("lastProbeTime", None)
        status: dict[str, Any] = {"observedGeneration": meta.get("generation", 1), "replicas": total,
                                  "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": ready,
                                  "unavailableReplicas": max(0, replicas - ready), "conditions": conds}
        status = {k: v for k, v in status.items() if v or k in ("observedGeneration", "conditions")}
        if status != (d.get("status") or {}):
            self.store.update(DEPLOYMENTS, meta["namespace"], meta["name"], {"status": status}, status=True,
                              check_rv=False)


__all__ = ["JobController", "DeploymentController", "owner_ref", "owned_by", "selector_matches", "rfc3339"]
