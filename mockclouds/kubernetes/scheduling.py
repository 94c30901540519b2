"""The fit check of the fake kube-scheduler: can this pod run on this node?

Checked, in the order kube-scheduler's filter plugins report them: node readiness and cordon
(NodeUnschedulable), nodeSelector and required node affinity (NodeAffinity), taints against
tolerations (TaintToleration) and resource requests against allocatable minus what bound pods
already request (NodeResourcesFit: cpu, memory, nvidia.com/gpu and any other extended resource,
plus the pod count). Pure functions over plain objects; the caller holds the store lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mockclouds.kubernetes.quantity import parse_quantity

Obj = dict[str, Any]


def pod_requests(pod: Obj) -> dict[str, float]:
    """Sum of container requests (limits stand in for absent requests, as the apiserver defaults them),
    max'ed with each init container, plus one pod."""
    spec = pod.get("spec") or {}
    total: dict[str, float] = {}
    for c in spec.get("containers") or []:
        res = c.get("resources") or {}
        req = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        for k, v in req.items():
            total[k] = total.get(k, 0.0) + parse_quantity(v)
    for c in spec.get("initContainers") or []:
        res = c.get("resources") or {}
        req = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        for k, v in req.items():
            total[k] = max(total.get(k, 0.0), parse_quantity(v))
    total["pods"] = 1.0
    return total


def expr_match(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator", ""), list(expr.get("values") or [])
    have = labels.get(key)
    if op == "In":
        return have is not None and have in values
    if op == "NotIn":
        return have is None or have not in values
    if op == "Exists":
        return have is not None
    if op == "DoesNotExist":
        return have is None
    if op in ("Gt", "Lt"):
        try:
            a, b = int(have or ""), int(values[0])
        except (ValueError, IndexError):
            return False
        return a > b if op == "Gt" else a < b
    return False


def _affinity_ok(spec: Obj, node: Obj) -> bool:
    labels = node["metadata"].get("labels") or {}
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return True
    # Terms are ORed; the expressions of one term are ANDed. matchFields knows metadata.name only.
    for t in terms:
        exprs_ok = all(expr_match(e, labels) for e in t.get("matchExpressions") or [])
        fields_ok = all(expr_match(e, {"metadata.name": node["metadata"]["name"]}) for e in t.get("matchFields") or [])
        if exprs_ok and fields_ok:
            return True
    return False


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    for tol in tolerations:
        effect = tol.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        op = tol.get("operator") or "Equal"
        key = tol.get("key") or ""
        if op == "Exists" and (not key or key == taint.get("key")):
            return True
        if op == "Equal" and key == taint.get("key") and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def untolerated_taint(pod: Obj, node: Obj, effects: tuple[str, ...] = ("NoSchedule", "NoExecute")) -> Obj | None:
    tols = (pod.get("spec") or {}).get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in effects and not tolerates(tols, taint):
            return taint
    return None


def node_ready(node: Obj) -> bool:
    conds = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def misfit(pod: Obj, node: Obj, used: Mapping[str, float], requests: Mapping[str, float] | None = None) -> str | None:
    """Why ``pod`` cannot go on ``node`` (kube-scheduler's wording), or None when it fits. ``used`` is
    what pods already bound to the node request; ``requests`` the pod's (computed when not given)."""
    spec = pod.get("spec") or {}
    if not node_ready(node):
        return "node(s) were not ready"
    if (node.get("spec") or {}).get("unschedulable"):
        return "node(s) were unschedulable"
    labels = node["metadata"].get("labels") or {}
    selector = spec.get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()) or not _affinity_ok(spec, node):
        return "node(s) didn't match Pod's node affinity/selector"
    taint = untolerated_taint(pod, node)
    if taint is not None:
        value = f"={taint['value']}" if taint.get("value") else ""
        return f"node(s) had untolerated taint {{{taint.get('key')}{value}}}"
    alloc = (node.get("status") or {}).get("allocatable") or {}
    for res, want in (requests if requests is not None else pod_requests(pod)).items():
        if want <= 0:
            continue
        have = parse_quantity(alloc.get(res, 0)) - used.get(res, 0.0)
        if want > have + 1e-9:
            return "Too many pods" if res == "pods" else f"Insufficient {res}"
    return None


def unschedulable_message(total: int, reasons: Mapping[str, int]) -> str:
    parts = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
    msg = f"0/{total} nodes are available"
    return f"{msg}: {parts}." if parts else f"{msg}."
