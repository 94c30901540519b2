"""The benchmark's node pools: N one-node pools spread round-robin over the four providers and several
regions of each, one on-demand GPU offering per region, chosen from the shipped catalog.

One node a pool keeps the mocks' capacity close to what they seed (the suite raises it anyway), and a
pool count equal to a resource count makes the per-pool figures easy to read.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.spec import NodePoolSpec
from providers.catalog import Catalog
from providers.catalog.model import PROVIDERS, CapacityType


@dataclass(frozen=True, slots=True)
class Slot:
    """Where pools go: one zone and instance type of one (provider, region)."""

    provider: str
    region: str
    zone: str
    instance_type: str
    gpu_model: str
    gpus_per_node: int


def slots(catalog: Catalog, regions_per_provider: int) -> list[Slot]:
    """``regions_per_provider`` regions of every provider (in name order), each with its first on-demand
    GPU offering (TPU slices are left out: a slice is not a node pool of one VM)."""
    chosen: dict[tuple[str, str], Slot] = {}
    for o in sorted(catalog.offerings, key=lambda o: (o.provider, o.region, o.zone, o.instance_type)):
        if o.capacity_type is not CapacityType.ON_DEMAND or o.instance_type.startswith("tpu-"):
            continue
        if (o.provider, o.region) in chosen:
            continue
        if sum(1 for p, _ in chosen if p == o.provider) >= regions_per_provider:
            continue
        it = catalog.instance_type(o.provider, o.instance_type)
        if it.gpus <= 0:
            continue
        chosen[(o.provider, o.region)] = Slot(o.provider, o.region, o.zone, o.instance_type, it.gpu_model, it.gpus)
    missing = [p for p in PROVIDERS if not any(s.provider == p for s in chosen.values())]
    if missing:
        raise RuntimeError(f"catalog: no on-demand GPU offering for provider {missing[0]!r}")
    return sorted(chosen.values(), key=lambda s: (s.provider, s.region))


def node_pools(n: int, catalog: Catalog, regions_per_provider: int = 3) -> list[NodePoolSpec]:
    """``n`` one-node pools, dealt round-robin over the providers, then over each provider's regions."""
    by_provider: dict[str, list[Slot]] = {}
    for s in slots(catalog, regions_per_provider):
        by_provider.setdefault(s.provider, []).append(s)
    providers = sorted(by_provider)
    out: list[NodePoolSpec] = []
    for i in range(n):
        prov_slots = by_provider[providers[i % len(providers)]]
        s = prov_slots[(i // len(providers)) % len(prov_slots)]
        out.append(NodePoolSpec(pool=f"bp-{i:05d}", workload=f"bench-wl-{i:05d}", team="bench",
                                provider=s.provider, region=s.region, zone=s.zone, instance_type=s.instance_type,
                                gpu_model=s.gpu_model, gpus_per_node=s.gpus_per_node, nodes=1,
                                capacity_type=CapacityType.ON_DEMAND, placement="none"))
    return out
