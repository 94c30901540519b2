"""Small fleets for placement tests: a handful of hand-made pools over the real catalog."""

from __future__ import annotations

from datetime import UTC, datetime

from controlplane.model import parse_manifests
from controlplane.placement import FleetSnapshot
from controlplane.policy import merge, parse_policy_text
from providers.catalog import CapacityType, default_catalog
from providers.model import CapacityPool

AT = datetime(2026, 10, 1, tzinfo=UTC)


def pool(provider, region, zone, it, ct="on-demand", nodes=16, reservation="", price=None):
    return CapacityPool(provider=provider, region=region, zone=zone, instance_type=it,
                        capacity_type=CapacityType(ct), available_nodes=nodes, reservation_id=reservation,
                        price_per_hour=price)


def snapshot(pools, **kw):
    return FleetSnapshot(catalog=default_catalog(), pools=tuple(pools), taken_at=AT, **kw)


def workload(spec: str, name: str = "w", team: str = "t", labels: str = "{}"):
    return parse_manifests(f"metadata: {{name: {name}, team: {team}, labels: {labels}}}\nspec: {spec}\n")[0]


def policies(spec: str = "{}"):
    return merge(parse_policy_text(f"metadata: {{name: p}}\nspec: {spec}\n", "p.yaml"))


def catalog_snapshot():
    return FleetSnapshot.from_catalog(default_catalog(), taken_at=AT)
