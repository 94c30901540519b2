"""All-or-nothing start of a training gang, and its ranks pinned to NVLink domains (pure functions).

Why this mechanism. A gang whose ranks start while others cannot be scheduled holds GPUs doing nothing
and, with NCCL, hangs at rendezvous until a timeout. Kubernetes offers two admission levers that real
fleets use for this, and Awan uses both, the way Kueue does:

* ``spec.suspend: true`` on the Job (Kueue's admission): the Job exists, but the job controller creates
  no pod. Awan resumes it only when every node of the gang's pools is Ready and has the GPUs a rank needs
  free (nodes Awan provisioned are its workload's alone, so what competes for them is Awan's own pods,
  e.g. those of an earlier incarnation still terminating). Until then nothing of the gang runs; the
  deadline (``activeDeadlineSeconds``) starts only when the Job is resumed.
* ``schedulingGates`` on the pods (pod scheduling readiness, KEP-3521; Kueue's topology-aware scheduling
  ungates the same way): a gang over several NVLink domains (GB200 NVL72 racks / UltraServers) needs each
  contiguous range of ranks on one rack, which one pod template cannot say. Its pods are created gated;
  once all of them exist Awan adds the rack's ``awan.dev/nvlink-domain`` to each pod's nodeSelector (a
  gated pod may still narrow it, KEP-3838) and removes the gate, so the scheduler binds them together.

Every decision is taken afresh from what the cluster says each pass (level-triggered): a controller
killed between the resume and the last ungate resumes nothing twice and keeps the ranks it already
pinned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from controlplane.dispatch.render import GANG_GATE, GPU, INDEX_ANNOTATION, L_INCARNATION, L_WORKLOAD
from providers.nodelabels import NVLINK_DOMAIN
from providers.nodelabels import POOL as LABEL_POOL

GATE = GANG_GATE


@dataclass(frozen=True, slots=True)
class NodeView:
    name: str
    pool: str
    domain: str          # NVLink domain (rack / UltraServer), "" where the node has none
    usable: bool         # Ready, schedulable, no taint a gang pod does not tolerate
    free_gpus: float


@dataclass(frozen=True, slots=True)
class Hold:
    """Whether the gang may start now, and if not, why (the workload's message while it waits)."""

    ready: bool
    why: str = ""
    domains: tuple[str, ...] = ()        # rank block k -> its NVLink domain ("" when not pinned)
    block: int = 0                       # ranks per block (0: not pinned)


def node_selector(pools: Iterable[str]) -> str:
    ps = sorted(set(pools))
    return f"{LABEL_POOL}={ps[0]}" if len(ps) == 1 else f"{LABEL_POOL} in ({','.join(ps)})"


def _gpus(v: Any) -> float:
    try:
        return float(str(v))
    except ValueError:
        return 0.0


def _requested(pod: Mapping[str, Any]) -> float:
    total = 0.0
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        total += _gpus({**(res.get("limits") or {}), **(res.get("requests") or {})}.get(GPU, 0))
    return total


def _labels(o: Mapping[str, Any]) -> dict[str, str]:
    return dict((o.get("metadata") or {}).get("labels") or {})


def node_views(nodes: list[dict[str, Any]], pods: list[dict[str, Any]], workload: str, incarnation: int
               ) -> list[NodeView]:
    """The gang's nodes as the scheduler would weigh them; ``pods`` are Awan's pods in the cluster (those
    of this very run do not count against its own nodes)."""
    used: dict[str, float] = {}
    for p in pods:
        labels = _labels(p)
        if labels.get(L_WORKLOAD) == workload and labels.get(L_INCARNATION) == str(incarnation):
            continue
        node = (p.get("spec") or {}).get("nodeName")
        if node and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            used[node] = used.get(node, 0.0) + _requested(p)
    out: list[NodeView] = []
    for n in nodes:
        meta, spec, st = n.get("metadata") or {}, n.get("spec") or {}, n.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
        # Gang pods tolerate the GPU taint only (render._pod_spec).
        tainted = any(t.get("effect") in ("NoSchedule", "NoExecute") and t.get("key") != GPU
                      for t in spec.get("taints") or [])
        labels = meta.get("labels") or {}
        free = _gpus((st.get("allocatable") or {}).get(GPU, 0)) - used.get(meta.get("name", ""), 0.0)
        out.append(NodeView(str(meta.get("name", "")), str(labels.get(LABEL_POOL, "")),
                            str(labels.get(NVLINK_DOMAIN, "")), ready and not spec.get("unschedulable") and not tainted,
                            free))
    return out


def block_size(ranks: int, domain_gpus: int | None, gpus_per_node: int, views: list[NodeView]) -> int:
    """Ranks that must share one NVLink domain: ``domainSize`` GPUs' worth of nodes, else (no size given)
    as many as the largest domain among the gang's nodes holds."""
    if domain_gpus:
        return max(1, min(ranks, domain_gpus // max(1, gpus_per_node)))
    sizes: dict[str, int] = {}
    for v in views:
        if v.domain:
            sizes[v.domain] = sizes.get(v.domain, 0) + 1
    return min(ranks, max(sizes.values())) if sizes else ranks


def assign_domains(ranks: int, block: int, views: list[NodeView], gpus_per_node: int,
                   fixed: Mapping[int, str] | None = None) -> tuple[str, ...] | None:
    """Rank block k (ranks k*block ..) -> a domain with room for the whole block, domains taken in name
    order; ``fixed`` keeps blocks already pinned (a pass that was cut short). None when some block fits
    nowhere."""
    room: dict[str, int] = {}
    for v in views:
        if v.domain and v.usable and v.free_gpus + 1e-9 >= gpus_per_node:
            room[v.domain] = room.get(v.domain, 0) + 1
    blocks = -(-ranks // block)
    out: list[str] = []
    fixed = fixed or {}
    for k in range(blocks):
        size = min(block, ranks - k * block)
        if k in fixed:
            out.append(fixed[k])
            room[fixed[k]] = room.get(fixed[k], 0) - size
            continue
        out.append("")
    for k in range(blocks):
        if out[k]:
            continue
        size = min(block, ranks - k * block)
        d = next((d for d in sorted(room) if room[d] >= size), None)
        if d is None:
            return None
        out[k] = d
        room[d] -= size
    return tuple(out)


def admit(want: Mapping[str, int], gpus_per_node: int, views: list[NodeView], *, nvlink: bool,
          domain_gpus: int | None) -> Hold:
    """May the gang start: for each pool, at least the nodes it was placed on Ready with a rank's GPUs
    free; over NVLink domains also every block of ranks given a whole domain."""
    ranks = sum(want.values())
    fit = [v for v in views if v.usable and v.free_gpus + 1e-9 >= gpus_per_node]
    short: list[str] = []
    for pool, n in sorted(want.items()):
        have = sum(1 for v in fit if v.pool == pool)
        if have < n:
            short.append(f"{pool} {have}/{n}")
    if short:
        return Hold(False, f"gang held: nodes Ready with {gpus_per_node} GPU(s) free: {', '.join(short)}")
    if not nvlink or not any(v.domain for v in fit):
        return Hold(True)
    block = block_size(ranks, domain_gpus, gpus_per_node, fit)
    domains = assign_domains(ranks, block, fit, gpus_per_node)
    if domains is None:
        return Hold(False, f"gang held: no NVLink domain with room for each block of {block} ranks")
    return Hold(True, domains=domains, block=block)


def rank_of(pod: Mapping[str, Any]) -> int | None:
    meta = pod.get("metadata") or {}
    for src in (meta.get("labels") or {}, meta.get("annotations") or {}):
        v = src.get(INDEX_ANNOTATION)
        if v is not None and str(v).isdigit():
            return int(v)
    return None


def gated(pod: Mapping[str, Any]) -> bool:
    return any(g.get("name") == GATE for g in (pod.get("spec") or {}).get("schedulingGates") or [])


def pinned(pods: Iterable[Mapping[str, Any]], block: int) -> dict[int, str]:
    """Blocks whose ranks were already given a domain (pods ungated by an earlier pass)."""
    out: dict[int, str] = {}
    for p in pods:
        r = rank_of(p)
        d = ((p.get("spec") or {}).get("nodeSelector") or {}).get(NVLINK_DOMAIN)
        if r is not None and d and not gated(p):
            out.setdefault(r // block, str(d))
    return out
