"""Stored assignments -> the node pools infra provisions, through the provisioning side's conversion
(``controlplane.reconcile.desired``), so the loop and `awan stack`/`awan deploy` name pools alike."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from controlplane.placement.results import Assignment
from controlplane.reconcile.desired import catalog_ultraserver_type, pool_from_assignment, pool_name
from controlplane.store.workloads import StoredAssignment, StoredWorkload
from infra.spec import NodePoolSpec
from providers.catalog import CapacityType, Catalog

__all__ = ["pool_name", "pools_for"]


def pools_for(rows: Iterable[StoredWorkload], catalog: Catalog | None = None) -> list[NodePoolSpec]:
    """The pools of stored workloads. A stored assignment keeps no UltraServer type (no column: it is a
    fact of the instance type), so it comes from the catalog row of the row's provider and instance type."""
    out: list[NodePoolSpec] = []
    for row in rows:
        spec = row.spec.get("spec") or {}
        kind = spec.get("kind", "training")
        topology = (spec.get("topology") or {}).get("domain", "any")
        # The placement record is deferred in the loop's scans (the largest column): read only for a row
        # that has a reservation to name (every pass's plan loaded it for every row otherwise, one query each).
        assigned: Sequence[StoredAssignment] = row.assignments
        kinds = _reservation_kinds(row) if any(a.reservation for a in assigned) else {}
        for i, a in enumerate(assigned):
            view = Assignment(row.name, a.provider, a.region, a.zone, a.instance_type, a.nodes, a.gpus,
                              a.gpu_model, CapacityType(a.capacity_type), a.reservation,
                              ultraserver_type=catalog_ultraserver_type(a.provider, a.instance_type, catalog),
                              reservation_kind=kinds.get((i, a.reservation), ""))
            out.append(pool_from_assignment(view, i, team=row.team, kind=kind, topology=topology, pool=a.pool,
                                            workload=row.key, catalog=catalog))
    return out


def _reservation_kinds(row: StoredWorkload) -> dict[tuple[int, str], str]:
    """(row index, reservation) -> the placed pool's reservation kind, from the placement record the row was
    placed with (``Workload.placement``: its assignments in the order of the stored rows). Keyed by the
    reservation too, so a record that no longer matches the rows gives nothing rather than a wrong kind."""
    rows = (row.placement or {}).get("assignments") or []
    return {(i, str(r.get("reservation") or "")): str(r.get("reservationKind") or "")
            for i, r in enumerate(rows) if isinstance(r, dict)}
