"""Where a run is, read from its objects and pods as the cluster returns them (pure).

A pod that failed because its node went away (preemption, a lost node, eviction) is an infrastructure
failure: the run is not failed by it; observation of the nodes re-places the workload, and that restart
is counted. Only a pod that exited non-zero by itself (or a Job past its deadline) fails the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from controlplane.dispatch.render import INDEX_ANNOTATION, L_GROUP, L_INCARNATION

# Pod failure reasons that say "the machine went", not "the program failed".
_INFRA_REASONS = frozenset({"NodeLost", "Evicted", "Preempted", "Preempting", "Shutdown", "NodeShutdown",
                            "Terminated", "DeletionByPodGC", "DeletionByTaintManager", "NodeAffinity",
                            "UnexpectedAdmissionError", "OutOfgpu", "OutOfcpu"})


class Phase(StrEnum):
    STARTING = "Starting"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    LOST = "Lost"           # a pod lost its node: wait for observation to re-place


@dataclass(frozen=True, slots=True)
class PodView:
    name: str
    rank: int
    phase: str
    node: str
    exit_code: int | None
    reason: str
    ready: bool

    @property
    def infra_failure(self) -> bool:
        return self.phase == "Failed" and (self.reason in _INFRA_REASONS or self.exit_code is None)


@dataclass(frozen=True, slots=True)
class RunStatus:
    phase: Phase
    running: int
    want: int
    exit_code: int | None = None
    reason: str = ""
    message: str = ""


def _terminated(pod: dict[str, Any]) -> dict[str, Any] | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        st = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
        if st:
            return dict(st)
    return None


def _rank(pod: dict[str, Any]) -> int:
    meta = pod.get("metadata") or {}
    for src in (meta.get("labels") or {}, meta.get("annotations") or {}):
        v = src.get(INDEX_ANNOTATION)
        if v is not None and str(v).isdigit():
            return int(v)
    # Indexed Job pods are named <job>-<index>-<random>; a Deployment's pods have no rank.
    parts = str(meta.get("name", "")).rsplit("-", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else 0


def pod_view(pod: dict[str, Any]) -> PodView:
    st = pod.get("status") or {}
    term = _terminated(pod)
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
    disrupted = any(c.get("type") == "DisruptionTarget" and c.get("status") == "True"
                    for c in st.get("conditions") or [])
    reason = str(st.get("reason") or (term or {}).get("reason") or "")
    if disrupted and reason not in _INFRA_REASONS:
        reason = "Preempted"
    code = term.get("exitCode") if term else None
    return PodView(name=(pod.get("metadata") or {}).get("name", ""), rank=_rank(pod), phase=str(st.get("phase") or "Pending"),
                   node=str((pod.get("spec") or {}).get("nodeName") or ""),
                   exit_code=int(code) if code is not None else None, reason=reason, ready=ready)


def _cond(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_ and c.get("status") == "True":
            return dict(c)
    return None


def of_incarnation(items: list[dict[str, Any]], incarnation: int) -> list[dict[str, Any]]:
    return [o for o in items if ((o.get("metadata") or {}).get("labels") or {}).get(L_INCARNATION) == str(incarnation)]


def job_status(job: dict[str, Any], pods: list[PodView]) -> RunStatus:
    spec, st = job.get("spec") or {}, job.get("status") or {}
    want = int(spec.get("completions") or spec.get("parallelism") or 1)
    running = sum(1 for p in pods if p.phase == "Running")
    done = int(st.get("succeeded") or 0)
    if _cond(job, "Complete") or done >= want or (len(pods) >= want and all(p.phase == "Succeeded" for p in pods)
                                                    and len({p.rank for p in pods}) >= want):
        return RunStatus(Phase.SUCCEEDED, running, want, exit_code=0, reason="Completed")
    lost = [p for p in pods if p.infra_failure]
    failed = [p for p in pods if p.phase == "Failed" and not p.infra_failure]
    if failed:
        first = min(failed, key=lambda p: p.rank)
        return RunStatus(Phase.FAILED, running, want, exit_code=first.exit_code, reason=first.reason or "Error",
                         message=f"rank {first.rank} (pod {first.name}) exited {first.exit_code}")
    cond = _cond(job, "Failed")
    if cond is not None and not lost:
        reason = str(cond.get("reason") or "Failed")
        return RunStatus(Phase.FAILED, running, want, reason=reason, message=str(cond.get("message") or reason))
    if lost:
        return RunStatus(Phase.LOST, running, want, reason=lost[0].reason or "NodeLost",
                         message=f"pod {lost[0].name} lost its node")
    return RunStatus(Phase.RUNNING if running >= want else Phase.STARTING, running, want)


def deployment_status(dep: dict[str, Any], pods: list[PodView]) -> RunStatus:
    want = int((dep.get("spec") or {}).get("replicas") or 0)
    ready = int((dep.get("status") or {}).get("readyReplicas") or 0)
    ready = max(ready, sum(1 for p in pods if p.phase == "Running" and p.ready))
    return RunStatus(Phase.RUNNING if want and ready >= want else Phase.STARTING, ready, want)


def combine(parts: list[RunStatus]) -> RunStatus:
    """A workload over several units: failed if any failed, lost if any lost, succeeded when all did,
    running when each runs (or is done)."""
    if not parts:
        return RunStatus(Phase.STARTING, 0, 0)
    running, want = sum(p.running for p in parts), sum(p.want for p in parts)
    for ph in (Phase.FAILED, Phase.LOST):
        hit = [p for p in parts if p.phase == ph]
        if hit:
            return RunStatus(ph, running, want, hit[0].exit_code, hit[0].reason, hit[0].message)
    if all(p.phase == Phase.SUCCEEDED for p in parts):
        return RunStatus(Phase.SUCCEEDED, running, want, 0, "Completed")
    if all(p.phase in (Phase.RUNNING, Phase.SUCCEEDED) for p in parts):
        return RunStatus(Phase.RUNNING, running, want)
    return RunStatus(Phase.STARTING, running, want)


def group_of(o: dict[str, Any]) -> str:
    group: str = ((o.get("metadata") or {}).get("labels") or {}).get(L_GROUP, "")
    return group
