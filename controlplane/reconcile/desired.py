"""Placements -> the node pools infra should hold: the one conversion from controlplane types to
``infra.spec.NodePoolSpec`` (infra never imports controlplane)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from controlplane.model.identity import pool_name, workload_key
from controlplane.placement.results import Assignment
from infra.spec import NodePoolSpec, ReservationKind, SpecError
from providers.catalog import Catalog, default_catalog
from providers.catalog.fabric import Placement, is_nvlink_rack, pool_placement, ultraserver_type
from providers.catalog.model import CapacityType

__all__ = ["catalog_ultraserver_type", "placement_for", "pool_from_assignment", "pool_name", "pools_from_plan"]


def placement_for(kind: str, topology: str, provider: str, instance_type: str, nodes: int,
                  catalog: Catalog | None = None) -> Placement:
    """Training gangs get a cluster placement group / compact policy; NVL72 racks (the catalog row of the
    instance type says so) are nvlink: one rule, in the catalog, that placement reads too."""
    it = (catalog or default_catalog()).find_instance_type(provider, instance_type)
    return pool_placement(kind, topology, it is not None and is_nvlink_rack(it), nodes)


def catalog_ultraserver_type(provider: str, instance_type: str, catalog: Catalog | None = None) -> str:
    """The UltraServer type the catalog sells ``instance_type``'s NVLink domain as ("" if none or unknown):
    what a stored assignment row (which keeps no such column) provisions with."""
    it = (catalog or default_catalog()).find_instance_type(provider, instance_type)
    return ultraserver_type(it) if it is not None else ""


def pool_from_assignment(a: Assignment, index: int, *, team: str = "", kind: str = "training",
                         topology: str = "any", pool: str = "", workload: str = "",
                         catalog: Catalog | None = None) -> NodePoolSpec:
    """One placement ``Assignment`` -> a pool. ``pool`` is the stored pool name (else derived from the name
    and team); ``workload`` the workload's cloud key (else ``workload_key(team, a.workload)``)."""
    gpus_per_node = max(1, int(a.gpus) // max(1, int(a.nodes)))
    key = workload or workload_key(team or "default", a.workload)
    capacity_type = CapacityType(a.capacity_type)
    return NodePoolSpec(
        pool=pool or pool_name(a.workload, index, key), workload=key, team=team or "default", provider=a.provider,
        region=a.region, zone=a.zone, instance_type=a.instance_type, gpu_model=a.gpu_model,
        gpus_per_node=gpus_per_node, nodes=int(a.nodes), capacity_type=capacity_type,
        reservation_id=a.reservation or "",
        placement=placement_for(kind, topology, a.provider, a.instance_type, int(a.nodes), catalog),
        ultraserver_type=a.ultraserver_type, reservation_kind=reservation_kind(a, capacity_type))


def reservation_kind(a: Assignment, capacity_type: CapacityType) -> str:
    """What the pool draws on, from the placement record (the placed pool's ``reservation_kind``): a Capacity
    Block's reservation, else (reserved with an id) an existing reservation, else "" (the spec decides: a new
    reservation). Never read from the shape of an id."""
    if capacity_type is not CapacityType.RESERVED or not a.reservation:
        return ""
    if a.reservation_kind == ReservationKind.CAPACITY_BLOCK.value:
        return ReservationKind.CAPACITY_BLOCK.value
    return ReservationKind.RESERVATION.value


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
                out.append(pool_from_assignment(_assignment(p["workload"], row), j, team=w.get("team", ""),
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


def _assignment(workload: str, row: Mapping[str, Any]) -> Assignment:
    """An assignment row of the plan JSON (``Assignment.to_json``) back into the placement record. A plan
    written before rows carried ``ultraserverType`` gets it from the catalog, as stored rows do."""
    provider, instance_type = row["provider"], row["instanceType"]
    ultra = row.get("ultraserverType")
    return Assignment(
        workload=row.get("workload", workload), provider=provider, region=row["region"], zone=row["zone"],
        instance_type=instance_type, nodes=int(row["nodes"]), gpus=int(row["gpus"]), gpu_model=row["gpuModel"],
        capacity_type=CapacityType(row["capacityType"]), reservation=row.get("reservation") or "",
        ultraserver_type=str(ultra) if ultra is not None else catalog_ultraserver_type(provider, instance_type),
        reservation_kind=str(row.get("reservationKind") or ""))
