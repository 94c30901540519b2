"""Placements -> the node pools infra should hold: the one conversion from controlplane types to
``infra.spec.NodePoolSpec`` (infra never imports controlplane)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from controlplane.model.identity import pool_name, workload_key
from infra.spec import NodePoolSpec, SpecError
from providers.catalog.fabric import pool_placement
from providers.catalog.model import CapacityType

__all__ = ["placement_for", "pool_from_assignment", "pool_name", "pools_from_plan"]


def placement_for(kind: str, topology: str, gpu_model: str, nodes: int) -> str:
    """Training gangs get a cluster placement group / compact policy; NVL72 racks are nvlink (one rule,
    in the catalog, that placement reads too)."""
    return pool_placement(kind, topology, gpu_model, nodes)


def pool_from_assignment(a: Any, index: int, *, team: str = "", kind: str = "training",
                         topology: str = "any", pool: str = "", workload: str = "") -> NodePoolSpec:
    """One ``controlplane.placement.engine.Assignment`` (or anything with its attributes) -> a pool.
    ``pool`` is the stored pool name (else derived from the name and team); ``workload`` the workload's
    cloud key (else ``workload_key(team, a.workload)``)."""
    gpus_per_node = max(1, int(a.gpus) // max(1, int(a.nodes)))
    key = workload or workload_key(team or "default", a.workload)
    return NodePoolSpec(
        pool=pool or pool_name(a.workload, index, key), workload=key, team=team or "default", provider=a.provider,
        region=a.region, zone=a.zone, instance_type=a.instance_type, gpu_model=a.gpu_model,
        gpus_per_node=gpus_per_node, nodes=int(a.nodes), capacity_type=CapacityType(a.capacity_type),
        reservation_id=a.reservation or "", placement=placement_for(kind, topology, a.gpu_model, int(a.nodes)),  # type: ignore[arg-type]
        ultraserver_type=getattr(a, "ultraserver_type", "") or "")


def pools_from_plan(plan: Mapping[str, Any], workloads: Mapping[str, Mapping[str, str]] | None = None,
                    source: str = "plan") -> list[NodePoolSpec]:
    """Pools from ``awan plan -o json`` output. ``workloads`` optionally maps a workload name to
    {team, kind, topology}; without it, multi-node assignments are treated as training gangs."""
    placements = plan.get("placements")
    if not isinstance(placements, list):
        raise SpecError(f"{source}: placements: expected a list (the output of `awan plan -o json`)")
    info = workloads or {}
    out: list[NodePoolSpec] = []
    for i, p in enumerate(placements):
        if not p.get("placed"):
            continue
        rows = p.get("assignments") or [p]
        w = info.get(p.get("workload", ""), p)      # `awan plan -o json` carries team, kind and topology
        for j, row in enumerate(rows):
            try:
                out.append(pool_from_assignment(_Row(p["workload"], row), j, team=w.get("team", ""),
                                                kind=w.get("kind", "training"), topology=w.get("topology", "any")))
            except KeyError as e:
                raise SpecError(f"{source}: placements[{i}].assignments[{j}]: {e.args[0]}: missing") from None
            except ValueError as e:
                raise SpecError(f"{source}: placements[{i}]: {e}") from None
    _check_unique(out, source)
    return out


def _check_unique(pools: Iterable[NodePoolSpec], source: str) -> None:
    seen: set[str] = set()
    for p in pools:
        if p.pool in seen:
            raise SpecError(f"{source}: pool {p.pool!r}: two placements give the same pool name")
        seen.add(p.pool)


class _Row:
    """An assignment row of the plan JSON with Assignment's attribute names."""

    def __init__(self, workload: str, row: Mapping[str, Any]) -> None:
        self.workload = row.get("workload", workload)
        self.provider, self.region, self.zone = row["provider"], row["region"], row["zone"]
        self.instance_type, self.nodes, self.gpus = row["instanceType"], row["nodes"], row["gpus"]
        self.gpu_model, self.capacity_type = row["gpuModel"], row["capacityType"]
        self.reservation = row.get("reservation") or ""
        self.ultraserver_type = row.get("ultraserverType") or ""
