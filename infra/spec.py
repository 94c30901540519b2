"""What a stack should hold, as plain data: the input of every program and engine.

One stack per (provider, region). The controller converts its placements into ``NodePoolSpec``s
(``controlplane.reconcile.desired``); infra never sees controlplane types.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

from providers.catalog.model import PROVIDERS, CapacityType

Placement = Literal["cluster", "nvlink", "none"]
_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")   # fullmatch: "$" would pass "x\n"


class SpecError(ValueError):
    """A stack or pool description that cannot be provisioned; the message names the field."""


class ReservationKind(StrEnum):
    """What a reserved pool draws on. Decided by placement (the capacity pool it chose), never guessed
    from the shape of an id: EC2 promises no prefix for offering or reservation ids."""

    NEW = "new"                                  # create an on-demand capacity reservation for the pool
    RESERVATION = "reservation"                  # an existing capacity reservation (reservation_id)
    CAPACITY_BLOCK = "capacity-block"            # a purchased Capacity Block (reservation_id: its reservation)
    BLOCK_OFFERING = "capacity-block-offering"   # buy this Capacity Block offering (reservation_id: offering)


@dataclass(frozen=True, slots=True)
class NodePoolSpec:
    """One GPU node pool: ``nodes`` nodes of one instance type in one zone, for one workload.

    ``reservation_id`` and ``reservation_kind`` (reserved capacity only): see ``ReservationKind``; left
    empty, the kind is RESERVATION when an id is given, else NEW (``reservation_source``). Capacity Block
    instances launch with market type ``capacity-block``, as EC2 requires.
    """

    pool: str
    workload: str
    team: str
    provider: str
    region: str
    zone: str
    instance_type: str
    gpu_model: str
    gpus_per_node: int
    nodes: int
    capacity_type: CapacityType = CapacityType.ON_DEMAND
    reservation_id: str = ""
    placement: Placement = "none"
    ultraserver_type: str = ""
    reservation_kind: str = ""

    def __post_init__(self) -> None:
        where = f"pool {self.pool!r}"
        if not _NAME.fullmatch(self.pool):
            raise SpecError(f"{where}: pool: must be a DNS-1123 label (lowercase letters, digits, '-')")
        if self.provider not in PROVIDERS:
            raise SpecError(f"{where}: provider: unknown {self.provider!r} (known: {', '.join(PROVIDERS)})")
        if not self.region:
            raise SpecError(f"{where}: region: required")
        if self.nodes < 0:
            raise SpecError(f"{where}: nodes: must be >= 0")
        if self.gpus_per_node < 0:
            raise SpecError(f"{where}: gpus_per_node: must be >= 0")
        if self.placement not in ("cluster", "nvlink", "none"):
            raise SpecError(f"{where}: placement: must be cluster, nvlink or none")
        if not isinstance(self.capacity_type, CapacityType):
            object.__setattr__(self, "capacity_type", CapacityType(self.capacity_type))
        if self.reservation_kind and self.reservation_kind not in {k.value for k in ReservationKind}:
            raise SpecError(f"{where}: reservation_kind: unknown {self.reservation_kind!r} "
                            f"(known: {', '.join(k.value for k in ReservationKind)})")
        if self.reservation_kind and not self.reserved:
            raise SpecError(f"{where}: reservation_kind: only for capacity type 'reserved'")
        if self.reservation_kind in (ReservationKind.RESERVATION, ReservationKind.CAPACITY_BLOCK,
                                     ReservationKind.BLOCK_OFFERING) and not self.reservation_id:
            raise SpecError(f"{where}: reservation_id: required for reservation_kind {self.reservation_kind!r}")

    @property
    def reservation_source(self) -> ReservationKind | None:
        """What the pool draws on (None: not reserved)."""
        if not self.reserved:
            return None
        if self.reservation_kind:
            return ReservationKind(self.reservation_kind)
        return ReservationKind.RESERVATION if self.reservation_id else ReservationKind.NEW

    @property
    def capacity_block(self) -> bool:
        """Instances of this pool run in a Capacity Block (market type capacity-block)."""
        return self.reservation_source in (ReservationKind.CAPACITY_BLOCK, ReservationKind.BLOCK_OFFERING)

    @property
    def spot(self) -> bool:
        return self.capacity_type is CapacityType.SPOT

    @property
    def reserved(self) -> bool:
        return self.capacity_type is CapacityType.RESERVED

    @property
    def training(self) -> bool:
        """Pools whose nodes talk to each other (gangs) get placement groups / compact policies."""
        return self.placement in ("cluster", "nvlink")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["capacity_type"] = self.capacity_type.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NodePoolSpec:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise SpecError(f"pool {d.get('pool')!r}: {unknown[0]}: unknown field")
        return cls(**d)


def stack_name(provider: str, region: str) -> str:
    return f"awan-{provider}-{region}"


def parse_stack_name(name: str) -> tuple[str, str]:
    """``awan-aws-us-east-1`` -> ("aws", "us-east-1")."""
    for p in PROVIDERS:
        prefix = f"awan-{p}-"
        if name.startswith(prefix) and len(name) > len(prefix):
            return p, name[len(prefix):]
    raise SpecError(f"stack {name!r}: not an Awan stack name (awan-<provider>-<region>)")


@dataclass(frozen=True, slots=True)
class StackSpec:
    """Everything one (provider, region) stack should contain. ``config`` carries provider settings
    (gcp project, azure resource group, coreweave namespace/zone) that programs and engines read."""

    provider: str
    region: str
    pools: tuple[NodePoolSpec, ...] = ()
    config: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pools", tuple(sorted(self.pools, key=lambda p: p.pool)))
        seen: set[str] = set()
        for p in self.pools:
            if (p.provider, p.region) != (self.provider, self.region):
                raise SpecError(f"pool {p.pool!r}: provider/region {p.provider}/{p.region} does not belong "
                                f"in stack {self.name}")
            if p.pool in seen:
                raise SpecError(f"pool {p.pool!r}: pool: appears twice in stack {self.name}")
            seen.add(p.pool)

    @property
    def name(self) -> str:
        return stack_name(self.provider, self.region)

    def to_json(self) -> str:
        return json.dumps({"provider": self.provider, "region": self.region, "config": self.config,
                           "pools": [p.to_dict() for p in self.pools]}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StackSpec:
        try:
            d = json.loads(text)
            return cls(provider=d["provider"], region=d["region"], config=dict(d.get("config") or {}),
                       pools=tuple(NodePoolSpec.from_dict(p) for p in d.get("pools") or ()))
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise SpecError(f"stack spec: not valid ({e})") from None


CLUSTER_KEY = "cluster@"    # settings key "cluster@<region glob>": the cluster that serves those regions


def cluster_setting(region_glob: str) -> str:
    """The provider-settings key naming the Kubernetes cluster of the regions matching ``region_glob`` (the
    configuration's ``clusters:`` entries: several per provider kind). Its value may hold ``{region}``."""
    return f"{CLUSTER_KEY}{region_glob}"


def stack_settings(settings: dict[str, str], region: str) -> dict[str, str]:
    """One stack's config out of its provider's settings: the first ``cluster@<glob>`` entry whose glob matches
    the region becomes ``cluster`` (unless set outright); the other entries are left out."""
    from fnmatch import fnmatchcase

    out = {k: v for k, v in settings.items() if not k.startswith(CLUSTER_KEY)}
    if "cluster" not in out:
        for k, v in settings.items():
            if k.startswith(CLUSTER_KEY) and fnmatchcase(region, k[len(CLUSTER_KEY):]):
                out["cluster"] = v.replace("{region}", region.lower())
                break
    return out


def desired_stacks(pools: Iterable[NodePoolSpec], existing: Iterable[str] = (),
                   config: dict[str, dict[str, str]] | None = None) -> list[StackSpec]:
    """Group pools per (provider, region). Stacks named in ``existing`` that no longer get any pool are
    still returned, empty, so that ``up`` deletes what they hold. ``config`` maps provider -> settings
    (``stack_settings``: which cluster serves the region)."""
    groups: dict[tuple[str, str], list[NodePoolSpec]] = {}
    for p in pools:
        groups.setdefault((p.provider, p.region), []).append(p)
    for name in existing:
        groups.setdefault(parse_stack_name(name), [])
    cfg = config or {}
    return [StackSpec(provider=pv, region=rg, pools=tuple(ps), config=stack_settings(dict(cfg.get(pv, {})), rg))
            for (pv, rg), ps in sorted(groups.items())]
