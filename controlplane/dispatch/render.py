"""A workload and its assignments -> the Kubernetes objects that run it, per cluster (pure functions).

* training: one Indexed Job (one pod per node, ``parallelism = completions = nodes``, ``backoffLimit: 0``:
  a gang that loses a member is restarted whole by Awan, from its checkpoint) and a headless Service
  that gives each pod a stable name, so rank 0 is ``MASTER_ADDR``. The Job is created suspended and,
  over NVLink domains, its pods gated: the gang starts all or nothing (gang.py);
* batch: one Indexed Job per cluster, no gang env beyond its index;
* inference: a Deployment and a Service per replica group (replicas may sit on different providers).

Every object carries the owner labels (workload key, team, incarnation), so the loop finds what it
created after a restart; names are deterministic, so creating twice is a 409, never a duplicate.
Pods are pinned to the workload's own nodes by the pool label the providers put on them, request the
node's GPUs as ``nvidia.com/gpu`` (one pod per node) and tolerate the GPU taint.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from controlplane.model.template import Container, Run
from controlplane.model.workload import GPUWorkload, TopologyDomain, WorkloadKind
from providers.nodelabels import POOL as LABEL_POOL
from providers.nodelabels import WORKLOAD as LABEL_WORKLOAD

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "awan"
L_WORKLOAD, L_TEAM, L_INCARNATION = "awan.dev/workload", "awan.dev/team", "awan.dev/incarnation"
L_GROUP = "awan.dev/replica-group"
A_CHECKPOINT = "awan.dev/checkpoint"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
GPU = "nvidia.com/gpu"
MASTER_PORT = 29500
CONTAINER = "main"
GANG_GATE = "awan.dev/gang"     # the schedulingGate of a gang's pods until their ranks are pinned (gang.py)


@dataclass(frozen=True, slots=True)
class Slot:
    """Nodes of one assignment: where they are and what each holds."""

    provider: str
    region: str
    pool: str
    nodes: int
    gpus_per_node: int
    replica_group: int = 0

    @property
    def cluster(self) -> tuple[str, str]:
        return (self.provider, self.region)


@dataclass(frozen=True, slots=True)
class Unit:
    """The objects of one workload in one cluster (applied in order: Services before their pods)."""

    cluster: tuple[str, str]
    objects: tuple[dict[str, Any], ...]
    group: int = 0


@dataclass(frozen=True, slots=True)
class Plan:
    key: str
    incarnation: int
    units: tuple[Unit, ...] = ()
    error: str = ""                 # why it cannot run as placed (e.g. a gang across clusters)
    names: frozenset[tuple[str, str]] = field(default_factory=frozenset)   # (kind, name)


class RenderError(ValueError):
    pass


def _digest(text: str, n: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def base_name(name: str, key: str, incarnation: int) -> str:
    """``<name>-<hash of key>-r<incarnation>``: a DNS label short enough for Indexed Job pod hostnames
    (``<job>-<index>``) and unique per (team, name, incarnation)."""
    stem = re.sub(r"[^a-z0-9-]", "-", name.lower())[:30].strip("-") or "run"
    return f"{stem}-{_digest(key)}-r{incarnation}"


def label_value(v: str) -> str:
    """As the providers write node labels (a workload key may be cut, never invalid)."""
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", v)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", clean)


def owner_labels(key: str, team: str, incarnation: int) -> dict[str, str]:
    return {MANAGED_BY: MANAGER, L_WORKLOAD: label_value(key), L_TEAM: team, L_INCARNATION: str(incarnation)}


def _env(c: Container, run: Run, extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = list(extra)
    if run.checkpoint is not None:
        out.append({"name": run.checkpoint.env, "value": run.checkpoint.uri})
    for e in c.env:
        if e.value_from is not None:
            ref = e.value_from.secret_key_ref
            out.append({"name": e.name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
        else:
            out.append({"name": e.name, "value": e.value or ""})
    return out


def _container(c: Container, gpus: int, env: list[dict[str, Any]], probe: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": CONTAINER, "image": c.image, "env": env,
                           "resources": {"limits": {GPU: str(gpus)}, "requests": {GPU: str(gpus)}}}
    if c.command:
        out["command"] = list(c.command)
    if c.args:
        out["args"] = list(c.args)
    if c.env_from:
        out["envFrom"] = [{"secretRef": {"name": e.secret_ref.name}, **({"prefix": e.prefix} if e.prefix else {})}
                          for e in c.env_from]
    if c.working_dir:
        out["workingDir"] = c.working_dir
    if c.ports:
        out["ports"] = [{"containerPort": p.container_port, "protocol": p.protocol.value,
                         **({"name": p.name} if p.name else {})} for p in c.ports]
    if c.shm_size:
        out["volumeMounts"] = [{"name": "dshm", "mountPath": "/dev/shm"}]
    if probe is not None:
        out["readinessProbe"] = probe
    return out


def _pod_spec(c: Container, slots: list[Slot], key: str, container: dict[str, Any], restart: str) -> dict[str, Any]:
    pools = sorted({s.pool for s in slots})
    spec: dict[str, Any] = {
        "restartPolicy": restart,
        # One pool: a plain nodeSelector on its label. Several (a gang over two NVLink domains): the
        # workload label every node of its pools carries, and a required affinity to those pools, since
        # nodes of a pool it held before a failover carry the same workload label until their stack
        # deletes them.
        "nodeSelector": {LABEL_POOL: pools[0]} if len(pools) == 1 else {LABEL_WORKLOAD: label_value(key)},
        "tolerations": [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [container],
    }
    if len(pools) > 1:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": LABEL_POOL, "operator": "In", "values": pools}]}]}}}
    if c.shm_size:
        spec["volumes"] = [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": c.shm_size}}]
    return spec


def _meta(name: str, ns: str, labels: dict[str, str], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": ns, "labels": dict(labels), "annotations": dict(annotations or {})}


def _job(w: GPUWorkload, slots: list[Slot], key: str, incarnation: int, ns: str, name: str,
         gang: bool) -> list[dict[str, Any]]:
    c, run = w.spec.template, w.spec.run
    assert c is not None
    nodes = sum(s.nodes for s in slots)
    gpn = max(s.gpus_per_node for s in slots)
    labels = owner_labels(key, w.team, incarnation)
    rank = {"name": "RANK", "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_ANNOTATION}']"}}}
    extra: list[dict[str, Any]] = [
        rank, {"name": "NODE_RANK", "value": "$(RANK)"}, {"name": "WORLD_SIZE", "value": str(nodes)},
        {"name": "NNODES", "value": str(nodes)}, {"name": "NPROC_PER_NODE", "value": str(gpn)},
        {"name": "AWAN_WORKLOAD", "value": key}, {"name": "AWAN_INCARNATION", "value": str(incarnation)},
        {"name": "AWAN_RESTARTS", "value": str(incarnation)}]
    if gang:
        extra += [{"name": "MASTER_ADDR", "value": f"{name}-0.{name}.{ns}.svc"},
                  {"name": "MASTER_PORT", "value": str(MASTER_PORT)}]
    pod = _pod_spec(c, slots, key, _container(c, gpn, _env(c, run, extra), None), "Never")
    if gang:
        pod["subdomain"] = name    # <job>-<index>.<service> resolves to each rank's pod
        if w.spec.topology.domain == TopologyDomain.NVLINK:
            # Ranks are pinned to NVLink domains block by block when the gang starts (gang.py).
            pod["schedulingGates"] = [{"name": GANG_GATE}]
    annotations = {A_CHECKPOINT: run.checkpoint.uri} if run.checkpoint else {}
    job: dict[str, Any] = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": _meta(name, ns, labels, annotations),
        "spec": {"completionMode": "Indexed", "completions": nodes, "parallelism": nodes,
                 # Awan restarts a failed run (whole, from its checkpoint) and counts it against maxRetries.
                 "backoffLimit": 0,
                 # A gang is created suspended: no pod exists until all its nodes are Ready and fit (gang.py).
                 "suspend": gang,
                 "template": {"metadata": {"labels": dict(labels), "annotations": dict(annotations)}, "spec": pod}}}
    if run.active_deadline_seconds is not None:
        job["spec"]["activeDeadlineSeconds"] = run.active_deadline_seconds
    out: list[dict[str, Any]] = []
    if gang:
        out.append({"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, ns, labels),
                    "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                             "selector": {L_WORKLOAD: labels[L_WORKLOAD], L_INCARNATION: str(incarnation)},
                             "ports": [{"name": "rendezvous", "port": MASTER_PORT, "targetPort": MASTER_PORT}]}})
    out.append(job)
    return out


def _probe(run: Run) -> dict[str, Any] | None:
    p = run.readiness_probe
    if p is None:
        return None
    out: dict[str, Any] = {"initialDelaySeconds": p.initial_delay_seconds, "periodSeconds": p.period_seconds,
                           "failureThreshold": p.failure_threshold}
    if p.http_get is not None:
        out["httpGet"] = {"path": p.http_get.path, "port": p.http_get.port}
    elif p.tcp_socket is not None:
        out["tcpSocket"] = {"port": p.tcp_socket.port}
    return out


def _inference(w: GPUWorkload, slots: list[Slot], key: str, incarnation: int, ns: str, name: str,
               group: int) -> list[dict[str, Any]]:
    c, run = w.spec.template, w.spec.run
    assert c is not None
    labels = {**owner_labels(key, w.team, incarnation), L_GROUP: str(group)}
    selector = {L_WORKLOAD: labels[L_WORKLOAD], L_INCARNATION: str(incarnation), L_GROUP: str(group)}
    gpn = max(s.gpus_per_node for s in slots)
    extra = [{"name": "AWAN_WORKLOAD", "value": key}, {"name": "AWAN_INCARNATION", "value": str(incarnation)}]
    pod = _pod_spec(c, slots, key, _container(c, gpn, _env(c, run, extra), _probe(run)), "Always")
    target = c.ports[0].container_port if c.ports else run.service_port
    port = run.service_port or target
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, ns, labels),
         "spec": {"selector": selector, "ports": [{"name": "serve", "port": port, "targetPort": target}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, ns, labels),
         "spec": {"replicas": sum(s.nodes for s in slots), "selector": {"matchLabels": selector},
                  "template": {"metadata": {"labels": dict(labels)}, "spec": pod}}},
    ]


def render(w: GPUWorkload, key: str, incarnation: int, slots: list[Slot], namespace_of: dict[tuple[str, str], str]
           ) -> Plan:
    """The objects that run ``w`` (incarnation ``incarnation``) on ``slots``; ``namespace_of`` gives each
    cluster's namespace. A plan with ``error`` cannot run as placed."""
    if w.spec.template is None:
        return Plan(key, incarnation, error="no spec.template: a capacity reservation runs nothing")
    if not slots:
        return Plan(key, incarnation, error="no assignments")
    base = base_name(w.name, key, incarnation)
    by_cluster: dict[tuple[str, str], list[Slot]] = {}
    for s in slots:
        by_cluster.setdefault(s.cluster, []).append(s)
    units: list[Unit] = []
    kind = w.spec.kind
    if kind == WorkloadKind.TRAINING:
        if len(by_cluster) > 1:
            where = ", ".join("/".join(c) for c in sorted(by_cluster))
            return Plan(key, incarnation, error=f"a training gang runs in one cluster; it was placed in {where}")
        [(cluster, group_slots)] = by_cluster.items()
        units.append(Unit(cluster, tuple(_job(w, group_slots, key, incarnation, namespace_of[cluster], base, True))))
    elif kind == WorkloadKind.BATCH:
        for i, (cluster, group_slots) in enumerate(sorted(by_cluster.items())):
            name = base if len(by_cluster) == 1 else f"{base}-c{i}"
            units.append(Unit(cluster, tuple(_job(w, group_slots, key, incarnation, namespace_of[cluster], name,
                                                  False))))
    else:
        groups: dict[tuple[int, tuple[str, str]], list[Slot]] = {}
        for s in slots:
            groups.setdefault((s.replica_group, s.cluster), []).append(s)
        for i, ((_g, cluster), group_slots) in enumerate(sorted(groups.items())):
            units.append(Unit(cluster, tuple(_inference(w, group_slots, key, incarnation, namespace_of[cluster],
                                                        f"{base}-g{i}", i)), group=i))
    names = frozenset((o["kind"], o["metadata"]["name"]) for u in units for o in u.objects)
    return Plan(key, incarnation, tuple(units), names=names)
