"""Capacity as CKS can show it.

CoreWeave exposes no API for free capacity. What a client can see is (1) its quota per (zone, instance
type), modelled as the ConfigMap ``kube-system/coreweave-quota`` with keys ``<zone>.<instance type>`` and
node counts as values (Awan's stand-in for the org quota of the Cloud Console), (2) the nodes that
exist and (3) node pools that stay short with ``InsufficientCapacity``. So each pool reported here is
quota headroom (``capacity_known=False``: an upper bound), forced to 0 where a node pool currently shows
a stock-out. Without the ConfigMap nothing is known and no pools are reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from providers.catalog.model import Offering
from providers.coreweave.contracts import CONTRACT_LABEL
from providers.coreweave.nodepools import TOPO_ZONE, TYPE_LABEL, stocked_out
from providers.model import CapacityPool, CapacityReport, Quota

QUOTA_NAMESPACE, QUOTA_CONFIGMAP = "kube-system", "coreweave-quota"


def parse_quota(data: dict[str, str] | None, zones: Iterable[str]) -> dict[tuple[str, str], int]:
    """{(zone, instance type): nodes}; keys of unknown zones or with non-integer values are skipped."""
    out: dict[tuple[str, str], int] = {}
    known = set(zones)
    for key, value in (data or {}).items():
        zone, _, itype = key.partition(".")
        if zone in known and itype:
            try:
                out[(zone, itype)] = max(0, int(value))
            except (TypeError, ValueError):
                continue
    return out


def build_report(offerings: list[Offering], quota: dict[tuple[str, str], int] | None,
                 nodes: list[dict[str, Any]], pools: list[dict[str, Any]], zone_of_pool: dict[str, str]
                 ) -> CapacityReport:
    """``nodes`` and ``pools`` are API objects as dicts; ``zone_of_pool`` maps pool name -> zone."""
    used: dict[tuple[str, str], int] = {}
    for n in nodes:
        lab = (n.get("metadata") or {}).get("labels") or {}
        if lab.get(CONTRACT_LABEL):
            continue      # contract nodes draw on their contract, not on the quota (contracts.py)
        key = (lab.get(TOPO_ZONE, ""), lab.get(TYPE_LABEL, ""))
        used[key] = used.get(key, 0) + 1
    out_of_stock = {(zone_of_pool.get(p["metadata"]["name"], ""), p["spec"].get("instanceType", ""))
                    for p in pools if stocked_out(p)}
    regions = {o.zone: o.region for o in offerings}
    quotas: list[Quota] = []
    cap_pools: list[CapacityPool] = []
    for (zone, itype), limit in sorted((quota or {}).items()):
        if zone not in regions:
            continue
        quotas.append(Quota("coreweave", regions[zone], f"{QUOTA_CONFIGMAP}/{zone}.{itype}", "nodes",
                            float(limit), float(used.get((zone, itype), 0)), (itype,)))
        headroom = 0 if (zone, itype) in out_of_stock else max(0, limit - used.get((zone, itype), 0))
        for o in offerings:
            if o.zone == zone and o.instance_type == itype:
                cap_pools.append(CapacityPool("coreweave", o.region, zone, itype, o.capacity_type, headroom,
                                              capacity_known=False))
    return CapacityReport("coreweave", tuple(cap_pools), tuple(quotas), datetime.now(UTC))
