"""Load the catalog shipped in ``providers/catalog/data`` (fast: plain csv, cached once)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from providers.catalog.model import CapacityType, InstanceType, Offering, Region, sold_as

DATA_DIR = Path(__file__).with_name("data")


@dataclass(slots=True)
class Catalog:
    instance_types: dict[tuple[str, str], InstanceType]
    regions: dict[tuple[str, str], Region]
    offerings: list[Offering]
    _by_provider: dict[str, list[Offering]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for o in self.offerings:
            self._by_provider.setdefault(o.provider, []).append(o)

    def instance_type(self, provider: str, name: str) -> InstanceType:
        return self.instance_types[(provider, name)]

    def find_instance_type(self, provider: str, name: str) -> InstanceType | None:
        """The catalog row of ``name`` on ``provider``, or None for a type the catalog does not sell."""
        return self.instance_types.get((provider, name))

    def region(self, provider: str, name: str) -> Region:
        return self.regions[(provider, name)]

    def for_provider(self, provider: str) -> list[Offering]:
        return self._by_provider.get(provider, [])

    def gpu_models(self) -> set[str]:
        return {it.gpu_model for it in self.instance_types.values()}

    def zones(self, provider: str) -> dict[str, str]:
        """zone -> region for one provider."""
        return {o.zone: o.region for o in self.for_provider(provider)}

    def replace_provider(self, provider: str, offerings: Iterable[Offering]) -> Catalog:
        """A copy in which one provider's offerings come from elsewhere (a live refresh)."""
        rest = [o for o in self.offerings if o.provider != provider]
        return Catalog(dict(self.instance_types), dict(self.regions), rest + list(offerings))


def _rows(name: str, data_dir: Path) -> list[dict[str, str]]:
    with (data_dir / name).open(newline="") as f:
        return list(csv.DictReader(f))


def load_catalog(data_dir: Path | None = None) -> Catalog:
    d = data_dir or DATA_DIR
    its = {
        (r["provider"], r["name"]): InstanceType(
            provider=r["provider"], name=r["name"], gpu_model=r["gpu_model"], gpus=int(r["gpus"]),
            gpu_memory_gib=float(r["gpu_memory_gib"]), vcpus=int(r["vcpus"]),
            memory_gib=float(r["memory_gib"]), nvlink_domain_gpus=int(r["nvlink_domain_gpus"]),
            fabric=r["fabric"], fabric_gbps=int(r["fabric_gbps"]), ultraserver=r["ultraserver"],
        )
        for r in _rows("instance_types.csv", d)
    }
    regions = {
        (r["provider"], r["name"]): Region(r["provider"], r["name"], r["geo"], r["country"])
        for r in _rows("regions.csv", d)
    }
    sources = {r["id"]: r["source"] for r in _rows("sources.csv", d)}
    offerings = [
        Offering(r["provider"], r["instance_type"], r["region"], r["zone"], CapacityType(r["capacity_type"]),
                 float(r["price_per_hour"]), sources[r["source"]])
        for r in _rows("offerings.csv", d)
        if sold_as(r["provider"], r["instance_type"], CapacityType(r["capacity_type"]))
    ]
    return Catalog(its, regions, offerings)


@cache
def default_catalog() -> Catalog:
    return load_catalog()
