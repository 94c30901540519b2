"""Policies as plain frozen data: hard constraints, CEL rules, weighted preferences, caps, commitments.

Built by ``policy.load`` (the only place with I/O); read by the pure placement core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from controlplane.policy.cel_rules import CelRule


class PolicyError(ValueError):
    """A policy document that cannot be used; the message names the file and the field (and for CEL, the
    rule and the position)."""


@dataclass(frozen=True, slots=True)
class AllowDeny:
    """``allow`` None means everything; ``deny`` wins over ``allow``. Entries may be globs."""

    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DataClassRule:
    """Where data of one class (workload label ``data-class``) may be processed."""

    name: str
    geo: tuple[str, ...] | None = None        # allowed geographies (catalog Region.geo)
    countries: tuple[str, ...] | None = None  # allowed ISO countries
    source: str = ""


@dataclass(frozen=True, slots=True)
class Weights:
    """Soft preferences; each term of the score lies in [0, 1] and is multiplied by its weight
    (see placement/scoring.py for the exact terms)."""

    cost: float = 1.0
    committed: float = 0.5
    fewer_providers: float = 0.2
    spread: float = 0.0          # > 0 turns on spreading of inference replicas over providers
    health: float = 0.3
    data_locality: float = 0.2


@dataclass(frozen=True, slots=True)
class ProviderShareCap:
    """No provider holds more than ``max_share`` of the fleet's GPUs once the fleet passes ``min_fleet_gpus``.

    - Until a placement would take the fleet past ``min_fleet_gpus`` GPUs the cap does not apply at all: a
      young fleet is not refused for being small (a 640-GPU gang on an empty fleet places).
    - A workload only one provider can serve (what it asks for, under the policies, is sold by one provider:
      GPU model, shape and fabric, provider/region allow-lists and residency; the workload's own
      ``location`` does not count, or pinning would be a way around the cap) is ``exempt`` by default: the
      cap cannot move it elsewhere, it could only leave it pending. Its GPUs still count, so the cap pushes
      other work away from that provider. ``sole_provider: capped`` refuses it like any other.
    """

    max_share: float            # 0 < max_share <= 1
    min_fleet_gpus: int = 1024
    source: str = ""
    sole_provider: str = "exempt"     # exempt | capped


@dataclass(frozen=True, slots=True)
class TeamBudget:
    team: str
    gpus: int | None = None
    dollars_per_hour: float | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class Commitment:
    """A contract with a provider. Committed capacity is used before on-demand; take-or-pay capacity costs
    nothing extra until it is used up (it is paid for either way)."""

    name: str
    provider: str
    gpu_model: str
    start: datetime
    end: datetime
    gpus: int | None = None
    dollars_per_hour: float | None = None
    take_or_pay: bool = True
    regions: tuple[str, ...] | None = None          # globs; None = any region of the provider
    capacity_types: tuple[str, ...] = ("reserved", "on-demand")
    price_per_gpu_hour: float | None = None         # contract rate; None = the pool's price
    source: str = ""

    def active(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class PolicySet:
    """All policy in force, merged (see load.py for the order). Immutable and hashable by identity, so the
    placement core can cache per-policy work keyed on it."""

    providers: AllowDeny = field(default_factory=AllowDeny)
    regions: AllowDeny = field(default_factory=AllowDeny)
    gpu_models: AllowDeny = field(default_factory=AllowDeny)
    capacity_types: AllowDeny = field(default_factory=AllowDeny)
    max_price_per_gpu_hour: float | None = None
    data_classes: tuple[DataClassRule, ...] = ()
    rules: tuple[CelRule, ...] = ()
    weights: Weights = field(default_factory=Weights)
    provider_share: ProviderShareCap | None = None
    team_budgets: tuple[TeamBudget, ...] = ()
    commitments: tuple[Commitment, ...] = ()
    sources: tuple[str, ...] = ()
    # Seconds a finished run's capacity is held before it is released (policy ``lifecycle``; later wins).
    idle_timeout_s: float = 300.0
    # "forbid": never give a workload more GPUs than it asked (1 x A100 on a whole 8-GPU node); "allow"
    # (default): allowed, the decision states the surplus and its cost, and exact fits win on cost per GPU asked
    surplus_gpus: str = "allow"
    # inference replicas: at most this many more on one provider than on the least-used provider that can
    # still take one (like Kubernetes topologySpreadConstraints maxSkew over providers); None = no limit.
    # When no option keeps within it, the replica is placed anyway (ScheduleAnyway), best score first.
    spread_max_skew: int | None = None

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    @classmethod
    def default(cls) -> PolicySet:
        """No constraints beyond the workload's own, default weights."""
        return cls(sources=("(built-in defaults)",))

    def data_class(self, name: str) -> DataClassRule | None:
        for d in self.data_classes:
            if d.name == name:
                return d
        return None

    def budget(self, team: str) -> TeamBudget | None:
        for b in self.team_budgets:
            if b.team == team:
                return b
        return None
