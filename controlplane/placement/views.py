"""The views placement shares between its modules: plain data, built by candidates.py (pools, classes,
groups) and the packing/scoring path (takes, options, failures), read by rules, scoring, explanations and the
engine. Kept in one module that imports no other placement module, so the package's imports form a tree
(tests/controlplane/placement/test_placement_imports.py walks them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from controlplane.model.workload import GPUWorkload, TopologyDomain, WorkloadKind
from controlplane.policy.model import Commitment, TeamBudget
from providers.catalog import InstanceType, Region
from providers.model import CapacityPool, HealthStatus

# placer._rank of an option: (-score, marginal $/h, nodes, provider, region, instance type); best sorts first
Rank = tuple[float, float, int, str, str, str]
# WorkloadClass.key_of: the class's fields as a plain tuple
ClassKey = tuple[Any, ...]


@dataclass(slots=True)
class PoolView:
    idx: int                    # index into snapshot.pools (and the free-node array of the state)
    pool: CapacityPool
    it: InstanceType
    region: Region
    price: float                # $ per node-hour (pool override, else catalog)
    price_per_gpu_hour: float
    capacity_type: str
    health: HealthStatus
    blocked: bool
    commitments: tuple[Commitment, ...] = ()   # active contracts this pool can burn down
    cel_map: dict[str, Any] = field(default_factory=dict)
    # Read by every decision, so kept flat here instead of looked up through pool/it each time:
    quotas: tuple[tuple[int, float], ...] = ()  # (index in snapshot.quotas, units one node uses)
    reserved: bool = False                      # draws on a reservation / capacity block
    nodes_per_domain: int = 1                   # it.nodes_per_domain
    health_term: float = 1.0                    # scoring.health_term(self)


@dataclass(frozen=True, slots=True)
class WorkloadClass:
    models: tuple[str, ...]
    count: int
    per_node: int | None
    domain: TopologyDomain
    domain_size: int | None
    capacity_types: tuple[str, ...]
    geo: tuple[str, ...] | None
    regions: tuple[str, ...] | None
    max_price: float | None
    kind: str
    team: str
    labels: tuple[tuple[str, str], ...]
    priority: int
    replicas: int
    memory: float | None = None     # minimum GiB per GPU (gpus.memory)

    @classmethod
    def of(cls, w: GPUWorkload) -> WorkloadClass:
        return cls(*cls.key_of(w))

    @staticmethod
    def key_of(w: GPUWorkload) -> ClassKey:
        """The class's fields as a plain tuple, in field order: equal tuples <=> equal classes. Hashing and
        comparing a tuple is done in C, so the per-decision lookup of a known class (SnapshotIndex.lookup)
        costs no dataclass construction."""
        s = w.spec
        loc = s.location
        return (tuple(s.gpus.model), s.gpus.count, s.gpus.per_node, s.topology.domain, s.topology.domain_size,
                tuple([str(c) for c in s.capacity_type]), tuple(loc.geo) if loc.geo is not None else None,
                tuple(loc.regions) if loc.regions is not None else None, s.max_price_per_gpu_hour, str(s.kind),
                w.metadata.team, tuple(sorted(w.metadata.labels.items())), s.priority, s.replicas,
                s.gpus.memory)

    @property
    def data_class(self) -> str:
        return dict(self.labels).get("data-class", "")

    @property
    def data_region(self) -> str:
        return dict(self.labels).get("data-region", "")

    @property
    def spreads(self) -> bool:
        return self.kind == WorkloadKind.INFERENCE.value and self.replicas > 1

    def cel_map(self) -> dict[str, Any]:
        return {"team": self.team, "labels": dict(self.labels), "kind": self.kind, "gpus": self.count * self.replicas,
                "count": self.count, "perNode": self.per_node or 0, "models": list(self.models),
                "capacityTypes": list(self.capacity_types), "priority": self.priority, "replicas": self.replicas,
                "topology": str(self.domain), "domainSize": self.domain_size or 0, "gpuMemory": self.memory or 0}


@dataclass(slots=True)
class Group:
    """Pools of one (provider, region, instance type) that pass every hard constraint for a class."""

    provider: str
    region: str
    it: InstanceType
    pools: list[PoolView]
    nodes_per_unit: int
    units: int                  # units per replica (gang)
    upper_bound: float = 0.0    # best score any option here can reach (for pruning)
    key: str = ""               # "provider/region": the unit explanations speak of
    need_nodes: int = 0         # nodes one replica takes here (units x nodes per unit)
    # pools in packing order when that order cannot change (no commitment whose burn-down reorders them)
    fixed_order: list[PoolView] | None = None
    # Set when fixed_order is and no quota applies to any pool: packing then reads free nodes only, along
    # ``plan`` (gangs.fill_plain). One bucket per place the gang may be packed into (the region, a zone, a
    # pool: see gangs._buckets), each [(pool idx, rack nodes or 0, units per rack, pool view)] in order.
    plan: list[list[tuple[int, int, int, PoolView]]] | None = None
    # A plan for one unit per replica (most workloads): the plan's pools in bucket order that can hold a unit,
    # each as (pool idx, free nodes a unit needs there). fill_plain then takes the first that has them.
    first_fit: list[tuple[int, int, PoolView]] | None = None
    rank_tail: tuple[str, str, str] = ("", "", "")   # the tie-breakers of placer._rank
    # only this group's provider can serve the class: the provider share cap does not refuse it (unless the
    # policy says soleProvider: capped; see policy.model.ProviderShareCap)
    cap_exempt: bool = False
    # pool idx -> (Option, its placer._rank) of a plan group's one-pool option as a first replica scores it
    # (no provider used yet): everything in it is static for the index (see placer._choose)
    solo: dict[int, tuple[Option, Rank]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.key = f"{self.provider}/{self.region}"
        self.need_nodes = self.units * self.nodes_per_unit
        self.rank_tail = (self.provider, self.region, self.it.name)


@dataclass(slots=True)
class ClassCandidates:
    groups: list[Group]                  # sorted by upper bound, best first
    rejections: dict[str, str]           # provider/region with no passing pool -> the first rule failing
    ref_price_per_gpu_hour: float        # normaliser of the cost term
    locality: dict[int, float] = field(default_factory=dict)   # pool idx -> data-locality term (static)
    wc: WorkloadClass | None = None
    budget: TeamBudget | None = None     # the class's team budget under the index's policies
    # RejectionTails of this class (built on first use; static, like everything here)
    tails: RejectionTails | None = None
    # provider/region of ``rejections`` -> how far its furthest pool got through the rules (explain.py leads
    # with the rule that decided: the furthest)
    stages: dict[str, int] = field(default_factory=dict)
    price_floor: float = 0.0             # the least $/hour one replica can cost in any group (capacity aside)
    # ``rejections`` sorted by key, each one's rule, each rule's keys and count (explain.unplaced_rule_counts;
    # built on first use)
    static_rules: tuple[dict[str, str], dict[str, str], dict[str, list[str]], dict[str, int]] | None = None


@dataclass(slots=True)
class Take:
    """``nodes`` of one pool; ``covered`` of them burn down ``commitment``."""

    pv: PoolView
    nodes: int
    covered: int = 0
    commitment: str = ""
    marginal: float = 0.0       # $/hour this row adds
    listed: float = 0.0         # $/hour at the pool's price


@dataclass(slots=True)
class Option:
    group: Group
    takes: list[Take]
    gpus: int
    marginal: float
    listed: float
    committed_gpus: int
    score: float = 0.0
    # the score's terms (scoring.option_score): cost, committed, health, dataLocality, then spread or
    # fewerProviders as ``spreads`` says; kept as numbers, named only when an explanation is read
    term_values: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)
    spreads: bool = False
    # explanation text of this option once formatted (explain.py); an option never changes once scored, and
    # a one-pool option is shared by every decision that meets it (Group.solo)
    text: str | None = None
    runner_up_json: dict[str, Any] | None = None

    @property
    def terms(self) -> dict[str, float]:
        c, m, h, loc, x = self.term_values
        return {"cost": c, "committed": m, "health": h, "dataLocality": loc,
                ("spread" if self.spreads else "fewerProviders"): x}


class Failure(NamedTuple):
    """Why one group could not take the workload. The text is formatted only when an explanation is read;
    ``text`` captures the figures of the moment (free nodes, headroom), so it says what was true then.
    (A named tuple: one is made for most groups a search meets, and a tuple is the cheapest to make.)"""

    kind: str        # no-capacity | no-quota | cap | budget
    text: Callable[[], str]

    @property
    def message(self) -> str:
        return self.text()


HOLE = "<no rejection>"    # a placeholder, compared by identity (see RejectionTails)


class RejectionTails:
    """The part of a placed decision's rejections that is the same for every decision of a class with the
    same winner, winning score (as printed) and search depth: the class's static rejections and "outscored:
    at most ..." for each provider/region first met among the groups the search did not reach.

    ``base`` gives it as a dict sorted by key (as Decision.to_json prints it), cached, plus placeholders for
    the other provider/regions the search reached: ``placed_rejections`` fills those from the decision's
    own failures and runners-up and drops the ones left empty, so the dict stays sorted without sorting it
    again. Everything read is static for the class (its candidates do not change while its index lives), so
    entries never go stale; the cache is bounded."""

    LIMIT = 256

    __slots__ = ("static", "groups", "cache", "rules")

    def __init__(self, static: Mapping[str, str], groups: list[Group]) -> None:
        self.static, self.groups = static, groups
        self.cache: dict[tuple[int, str, str], tuple[dict[str, str], tuple[str, ...]]] = {}
        # explain.placed_rule_counts' view of a base, by the same key: each provider/region's rule, each
        # rule's provider/regions in key order and their count (holes left out)
        self.rules: dict[tuple[int, str, str], tuple[dict[str, str], dict[str, list[str]], dict[str, int]]] = {}

    def base(self, seen: int, win: str, score: str) -> tuple[dict[str, str], tuple[str, ...]]:
        key = (seen, win, score)
        got = self.cache.get(key)
        if got is None:
            out = dict(self.static)          # no group's provider/region is in it
            tail = f" < winner {score} ({win})"
            for g in self.groups[seen:]:
                if g.key != win and g.key not in out:
                    out[g.key] = f"outscored: at most {g.upper_bound:.3f}{tail}"
            holes = []
            for g in self.groups[:seen]:
                if g.key != win and g.key not in out:
                    out[g.key] = HOLE
                    holes.append(g.key)
            if len(self.cache) >= self.LIMIT:
                self.cache.clear()
                self.rules.clear()
            got = self.cache[key] = ({k: out[k] for k in sorted(out)}, tuple(holes))
        return got
