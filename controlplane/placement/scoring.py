"""Soft preferences: the score of an option (higher is better). Every term lies in [0, 1] and is multiplied
by its policy weight (policy.model.Weights):

- cost:           1 - (marginal $/hour of the option per GPU requested) / (dearest $/GPU-hour among the class's candidates);
                  take-or-pay commitments have marginal cost 0 until used up;
- committed:      share of the option's list price a commitment in force saves (take-or-pay: all of it; a
                  contract rate: the discount). Being reserved earns nothing by itself: a capacity block at
                  its full price is judged by its price, like on-demand (issue 17: a GB200 rack went to an
                  AWS Capacity Block at $982.80/h over CoreWeave on-demand at $756/h for the bonus).
                  Capacity already paid for is a take-or-pay commitment in the policies;
- health:         1 if the provider/region is OK, 0 if DEGRADED (DOWN is a hard constraint);
- data_locality:  1 in the data's region (label ``data-region``, e.g. ``aws:eu-west-1``, or the workload's only
                  region), 0.5 in the same geography, 0 elsewhere; 1 for all when the data's place is unknown;
- spread:         inference with replicas > 1: 1 on a provider the workload does not use yet, 0.5 on a new
                  region of a used provider, 0 otherwise;
- fewer_providers: every other multi-gang workload: 1 on a provider it already uses (or the first), else 0.
"""

from __future__ import annotations

from collections.abc import Sequence

from controlplane.placement.rules import region_matches
from controlplane.placement.snapshot import FleetSnapshot
from controlplane.placement.views import Group, PoolView, WorkloadClass
from controlplane.policy.model import PolicySet
from providers.model import HealthStatus


def locality(wc: WorkloadClass, pv: PoolView, snap: FleetSnapshot) -> float:
    where = wc.data_region or (wc.regions[0] if wc.regions and len(wc.regions) == 1 else "")
    if not where:
        return 1.0
    if region_matches(where, pv.pool.provider, pv.pool.region):
        return 1.0
    prov, _, name = where.rpartition(":")
    geo = None
    for (p, r), reg in snap.catalog.regions.items():
        if r == name and (not prov or p == prov):
            geo = reg.geo
            break
    return 0.5 if geo is not None and geo == pv.region.geo else 0.0


def health_term(pv: PoolView) -> float:
    """(Also precomputed as ``PoolView.health_term``.)"""
    return 0.0 if pv.health == HealthStatus.DEGRADED else 1.0


def lowest_rate(pv: PoolView) -> float:
    """The lowest $/GPU-hour a node of this pool can cost: 0 under a take-or-pay contract, a contract's own
    price when lower than the pool's."""
    rate = pv.price_per_gpu_hour
    for c in pv.commitments:
        if c.take_or_pay:
            return 0.0
        if c.price_per_gpu_hour is not None:
            rate = min(rate, c.price_per_gpu_hour)
    return rate


def group_upper_bound(g: Group, wc: WorkloadClass, ps: PolicySet, ref: float, loc: dict[int, float]) -> float:
    """The best score any option of this group can reach: prices at their lowest (commitments unused),
    the workload-history terms at 1. Used to stop a search once no unseen group can win.

    The cost term is per GPU *asked for*, like option_score's: a replica here always takes ``need_nodes``
    whole nodes, so a 1-GPU job on an 8-GPU type pays for 8 GPUs (a bound that ignored this let every
    8-GPU group look as good as a 1-GPU one and be packed for nothing)."""
    w = ps.weights
    gpus = g.need_nodes * g.it.gpus
    per_asked = gpus / min(gpus, wc.count)
    lowest = min(lowest_rate(pv) for pv in g.pools)
    cheapest = lowest * per_asked
    committed = max((1.0 - lowest_rate(pv) / pv.price_per_gpu_hour for pv in g.pools
                     if pv.commitments and pv.price_per_gpu_hour > 0), default=0.0)
    return (w.cost * max(0.0, 1.0 - cheapest / ref) + w.committed * committed
            + w.health * max(health_term(pv) for pv in g.pools)
            + w.data_locality * max(loc[pv.idx] for pv in g.pools)
            + (w.spread if wc.spreads else w.fewer_providers))


def option_score(wc: WorkloadClass, ps: PolicySet, ref: float, loc: dict[int, float], pools: Sequence[PoolView],
                 gpus: int, marginal: float, listed: float, used_providers: dict[str, set[str]],
                 spreads: bool) -> tuple[float, tuple[float, float, float, float, float]]:
    """Score of an option drawing on ``pools`` (all of one group), with its terms for explanations: cost,
    committed, health, dataLocality, then spread (``spreads``, i.e. ``wc.spreads``) or fewerProviders."""
    w = ps.weights
    pv0 = pools[0]
    prov, reg = pv0.pool.provider, pv0.pool.region
    # per GPU the workload asked for: a whole 8-GPU node for a 1-GPU job costs 8x
    cost = max(0.0, 1.0 - (marginal / min(gpus, wc.count)) / ref)
    committed = (listed - marginal) / listed if listed > 0 else 0.0
    if len(pools) == 1:
        health, local = pv0.health_term, loc[pv0.idx]
    else:
        health = min(pv.health_term for pv in pools)
        local = min(loc[pv.idx] for pv in pools)
    if spreads:
        term = 1.0 if prov not in used_providers else (0.5 if reg not in used_providers[prov] else 0.0)
        extra = w.spread * term
    else:
        term = 1.0 if not used_providers or prov in used_providers else 0.0
        extra = w.fewer_providers * term
    score = (w.cost * cost + w.committed * committed + w.health * health + w.data_locality * local + extra)
    return score, (cost, committed, health, local, term)
