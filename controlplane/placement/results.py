"""What placement returns: assignments, decisions with their explanation, and batch results (+ JSON)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from providers.catalog import CapacityType


@dataclass(frozen=True, slots=True)
class Assignment:
    """Nodes of one pool given to one workload (one row of a placement)."""

    workload: str
    provider: str
    region: str
    zone: str
    instance_type: str
    nodes: int
    gpus: int
    gpu_model: str
    capacity_type: CapacityType
    reservation: str = ""            # the pool's reservation / capacity block id ("" for open pools)
    price_per_hour: float = 0.0      # marginal $/hour of this row (0 while a take-or-pay commitment covers it)
    replica_group: int = 0           # which replica (gang) this row belongs to
    commitment: str = ""             # the contract this row burns down, if any
    list_price_per_hour: float = 0.0  # the pool's price for these nodes, whatever the contract says
    team: str = ""
    ultraserver_type: str = ""       # the UltraServer the NVLink domain is sold as (catalog), "" elsewhere
    reservation_kind: str = ""       # the pool's CapacityPool.reservation_kind ("capacity-block" or "")

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider, "region": self.region, "zone": self.zone,
            "instanceType": self.instance_type, "nodes": self.nodes, "gpus": self.gpus,
            "gpuModel": self.gpu_model, "capacityType": str(self.capacity_type),
            "reservation": self.reservation, "commitment": self.commitment,
            "pricePerHour": round(self.price_per_hour, 4), "listPricePerHour": round(self.list_price_per_hour, 4),
            "replicaGroup": self.replica_group, "ultraserverType": self.ultraserver_type,
            "reservationKind": self.reservation_kind,
        }


@dataclass(slots=True)
class Explanation:
    reasons: list[str] = field(default_factory=list)
    runners_up: list[dict[str, Any]] = field(default_factory=list)
    rejections: dict[str, str] = field(default_factory=dict)     # provider/region -> the rule that ruled it out


_NONE = Explanation()

# An explanation without its rejections map, and the rejections counted by rule: (rule, how many
# provider/regions, the first of them by key, its text) per rule, most first (explain.placed_rule_counts)
RuleSummary = tuple[Explanation, list[tuple[str, int, str, str]]]


@dataclass(slots=True)
class Decision:
    """One workload's outcome. The explanation (reasons, runners-up, rejections) is kept as the data it is
    made of (the winning and runner-up options, the failure per provider/region) and turned into text on
    first use: a decision nobody reads costs no string formatting. Reading it gives the same text at any
    time, since the data are captured when the decision is made."""

    workload: str
    placed: bool
    assignments: list[Assignment] = field(default_factory=list)
    score: float = 0.0
    # no-capacity | no-quota | nothing-matches | cap | budget | "" when placed
    unplaced_kind: str = ""
    priority: int = 0
    asked_gpus: int = 0         # gpus.count x replicas: what was asked (the surplus is gpus beyond it)
    explain: Callable[[], Explanation] | None = field(default=None, repr=False, compare=False)
    # the same captured data summarised: rejections counted by rule instead of listed (what `awan plan`
    # writes by default); None where the engine gives no such shortcut (then count the full map)
    summarize: Callable[[], RuleSummary] | None = field(default=None, repr=False, compare=False)
    _explanation: Explanation | None = field(default=None, repr=False, compare=False)

    def explanation(self) -> Explanation:
        if self._explanation is None:
            self._explanation = self.explain() if self.explain is not None else _NONE
            self.explain = self.summarize = None     # drop the captured options once the text exists
        return self._explanation

    @property
    def reasons(self) -> list[str]:
        return self.explanation().reasons

    @property
    def runners_up(self) -> list[dict[str, Any]]:
        return self.explanation().runners_up

    @property
    def rejections(self) -> dict[str, str]:
        return self.explanation().rejections

    @property
    def price_per_hour(self) -> float:
        return sum(a.price_per_hour for a in self.assignments)

    @property
    def gpus(self) -> int:
        return sum(a.gpus for a in self.assignments)

    @property
    def surplus_gpus(self) -> int:
        """GPUs placed beyond what was asked (a 1-GPU job on a whole 8-GPU node: 7)."""
        return max(0, self.gpus - self.asked_gpus) if self.placed and self.asked_gpus else 0

    @property
    def surplus_cost_per_hour(self) -> float:
        """What the surplus costs: its share of the marginal $/hour."""
        g = self.gpus
        return self.price_per_hour * self.surplus_gpus / g if g else 0.0

    def to_json(self, keep: bool = True, why: Explanation | None = None) -> dict[str, Any]:
        """The decision as docs/plan-output.md has it. ``keep=False`` (a writer that streams thousands of
        decisions once): the explanation is built for this call and not kept, so memory holds one at a time;
        reading it later builds the same text again from the same captured data. ``why``: an explanation the
        caller built (``summarize``) instead."""
        rows = self.assignments
        if why is None:
            why = self.explanation() if keep or self.explain is None else self.explain()
        out: dict[str, Any] = {"workload": self.workload, "placed": self.placed}
        # top-level fields describe the placement when all rows agree, else null (see "assignments")
        if len(rows) == 1:       # the usual single-row placement: every row agrees
            a = rows[0]
            out.update(provider=str(a.provider), region=str(a.region), zone=str(a.zone),
                       instanceType=str(a.instance_type), nodes=a.nodes, gpus=a.gpus, gpuModel=str(a.gpu_model),
                       capacityType=str(a.capacity_type), reservation=str(a.reservation),
                       pricePerHour=round(self.price_per_hour, 4))
        else:
            def one(attr: str) -> Any:
                vals = {getattr(a, attr) for a in rows}
                return str(next(iter(vals))) if len(vals) == 1 else None
            common = {k: one(attr) if rows else None for k, attr in _COMMON}
            out.update(provider=common["provider"], region=common["region"], zone=common["zone"],
                       instanceType=common["instanceType"], nodes=sum(a.nodes for a in rows), gpus=self.gpus,
                       gpuModel=common["gpuModel"], capacityType=common["capacityType"],
                       reservation=common["reservation"], pricePerHour=round(self.price_per_hour, 4))
        rej = why.rejections
        keys = list(rej)
        order = sorted(keys)
        out.update(score=round(self.score, 4), reasons=list(why.reasons), assignments=[a.to_json() for a in rows],
                   runnersUp=list(why.runners_up),
                   # sorted by key; the engine builds them sorted already, so mostly a copy
                   rejections=dict(rej) if order == keys else {k: rej[k] for k in order})
        if not self.placed:
            out["unplacedReason"] = self.unplaced_kind
        elif self.surplus_gpus:     # only when there is one (issue 17: over-allocation is never silent)
            out["surplusGpus"] = self.surplus_gpus
            out["surplusCostPerHour"] = round(self.surplus_cost_per_hour, 4)
        return out


_COMMON = (("provider", "provider"), ("region", "region"), ("zone", "zone"), ("instanceType", "instance_type"),
           ("gpuModel", "gpu_model"), ("capacityType", "capacity_type"), ("reservation", "reservation"))


@dataclass(slots=True)
class PlacementResult:
    decisions: list[Decision]
    commitments: dict[str, dict[str, Any]] = field(default_factory=dict)   # burn-down per contract
    provider_gpus: dict[str, int] = field(default_factory=dict)             # existing + placed, per provider

    def assignments(self) -> list[Assignment]:
        return [a for d in self.decisions for a in d.assignments]

    def summary(self) -> dict[str, Any]:
        placed = [d for d in self.decisions if d.placed]
        by_provider: dict[str, int] = {}
        for a in self.assignments():
            by_provider[a.provider] = by_provider.get(a.provider, 0) + a.gpus
        unplaced: dict[str, int] = {}
        for d in self.decisions:
            if not d.placed:
                unplaced[d.unplaced_kind] = unplaced.get(d.unplaced_kind, 0) + 1
        return {
            "workloads": len(self.decisions),
            "placed": len(placed),
            "unplaced": len(self.decisions) - len(placed),
            "unplacedByReason": dict(sorted(unplaced.items())),
            "gpusPlaced": sum(d.gpus for d in placed),
            "gpusByProvider": dict(sorted(by_provider.items())),
            "costPerHour": round(placed_cost(self), 4),
            "listCostPerHour": round(sum(a.list_price_per_hour for a in self.assignments()), 4),
            "commitments": dict(sorted(self.commitments.items())),
        }

    def to_json(self) -> dict[str, Any]:
        return {"placements": [d.to_json() for d in self.decisions], "summary": self.summary()}


def placed_cost(result: PlacementResult | list[Decision]) -> float:
    """The batch objective's cost term: total marginal $/hour of what was placed (take-or-pay commitments
    count 0 until used up, see placement/engine.py)."""
    decisions = result.decisions if isinstance(result, PlacementResult) else result
    return sum(a.price_per_hour for d in decisions for a in d.assignments)
