"""Packing one replica (a gang) into one (provider, region, instance type) group, honouring topology:

- nvlink:  whole NVLink domains of ``domainSize`` GPUs, each inside one pool (one zone; for rack-scale
           types whole racks/UltraServers), all in one region;
- cluster: the whole gang in one pool (one zone, one instance type: one placement group);
- zone:    the whole gang in one zone (it may mix that zone's pools: reserved then on-demand);
- any:     any zones of the region.

A gang is packed whole or not at all. Pools are used cheapest-marginal first (commitments and
reservations before on-demand), then caps and team budgets are checked on the result.

Most groups have a fixed pool order and no quota (``Group.plan``): ``fill_plain`` packs those from free
nodes alone, with the same buckets and the same greedy order as ``_fill``; ``pack`` is the general case.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from controlplane.model.workload import TopologyDomain
from controlplane.placement.state import FleetState
from controlplane.placement.views import Failure, Group, Option, PoolView, Take, WorkloadClass
from controlplane.policy.model import Commitment, PolicySet, ProviderShareCap, TeamBudget
from providers.model import Quota

_ANY = TopologyDomain.ANY


def _contract(pv: PoolView, state: FleetState, local: dict[str, float]) -> Commitment | None:
    for c in pv.commitments:
        left = state.commit_left.get(c.name, 0.0) - local.get(c.name, 0.0)
        need = pv.it.gpus if c.gpus is not None else pv.price
        if left + 1e-9 >= need:
            return c
    return None


def _price_take(pv: PoolView, nodes: int, state: FleetState, local: dict[str, float]) -> Take:
    t = Take(pv, nodes, listed=nodes * pv.price)
    c = _contract(pv, state, local)
    covered = 0
    if c is not None:
        left = state.commit_left[c.name] - local.get(c.name, 0.0)
        per = pv.it.gpus if c.gpus is not None else pv.price
        covered = min(nodes, int((left + 1e-9) // per))
        local[c.name] = local.get(c.name, 0.0) + covered * per
        t.covered, t.commitment = covered, c.name
    rate = pv.price
    if c is not None:
        rate = 0.0 if c.take_or_pay else (c.price_per_gpu_hour * pv.it.gpus if c.price_per_gpu_hour is not None
                                          else pv.price)
    t.marginal = covered * rate + (nodes - covered) * pv.price
    return t


def _order_key(pv: PoolView, state: FleetState) -> tuple[float, int, str, str, int]:
    c = _contract(pv, state, {})
    eff = pv.price if c is None else (0.0 if c.take_or_pay else (c.price_per_gpu_hour or pv.price_per_gpu_hour)
                                      * pv.it.gpus)
    return (eff / pv.it.gpus, 0 if (c or pv.pool.reservation_id) else 1, pv.pool.zone, pv.capacity_type, pv.idx)


def _buckets(g: Group, wc: WorkloadClass, pools: list[PoolView]) -> list[list[PoolView]]:
    if wc.domain == TopologyDomain.CLUSTER:
        return [[pv] for pv in pools]
    if wc.domain == TopologyDomain.ZONE:
        zones: dict[str, list[PoolView]] = {}
        for pv in pools:
            zones.setdefault(pv.pool.zone, []).append(pv)
        return list(zones.values())
    return [pools]


def _units_in(pv: PoolView, nodes: int, g: Group, wc: WorkloadClass) -> int:
    npd = pv.it.nodes_per_domain
    if wc.domain == TopologyDomain.NVLINK and npd > 1:
        # rack-scale types: a domain must sit inside one whole rack; partial racks are not assumed contiguous
        return (nodes // npd) * (npd // g.nodes_per_unit)
    return nodes // g.nodes_per_unit


def fill_plain(g: Group, free: list[int]) -> list[tuple[PoolView, int]] | None:
    """``_fill`` for a group with a ``plan`` (fixed order, no quota): the same buckets, order and greedy
    take per pool, reading only free nodes. Without a quota both of ``pack``'s fills agree, so a None here
    is always a capacity shortfall."""
    assert g.plan is not None
    npu = g.nodes_per_unit
    for bucket in g.plan:
        need = g.units
        got: list[tuple[PoolView, int]] = []
        for idx, rack, per_rack, pv in bucket:
            # units here: whole racks of an NVLink rack type (see _units_in), else nodes // nodes per unit
            k = (free[idx] // rack) * per_rack if rack else free[idx] // npu
            if k <= 0:
                continue
            if k > need:
                k = need
            got.append((pv, k * npu))
            need -= k
            if need == 0:
                return got
    return None


def _fill(g: Group, wc: WorkloadClass, state: FleetState, pools: list[PoolView], use_quota: bool
          ) -> list[tuple[PoolView, int]] | None:
    for bucket in _buckets(g, wc, pools):
        need = g.units
        got: list[tuple[PoolView, int]] = []
        q_used: dict[int, float] = {}
        for pv in bucket:
            avail = state.free[pv.idx]
            if use_quota:
                for qi, units in pv.quotas:
                    avail = min(avail, int((state.quota_left[qi] - q_used.get(qi, 0.0) + 1e-9) // units))
            k = min(need, _units_in(pv, max(0, avail), g, wc))
            if k <= 0:
                continue
            nodes = k * g.nodes_per_unit
            got.append((pv, nodes))
            for qi, units in pv.quotas:
                q_used[qi] = q_used.get(qi, 0.0) + units * nodes
            need -= k
            if need == 0:
                return got
    return None


def shortfall(g: Group, wc: WorkloadClass, state: FleetState, pools: list[PoolView], quota: bool
               ) -> Callable[[], str]:
    """The figures of a shortfall now, as a function that words them later."""
    n = g.need_nodes
    if quota:
        for pv in pools:
            for qi, units in pv.quotas:
                q = state.index.snapshot.quotas[qi]
                need = n * units
                left = state.quota_left[qi]
                if left + 1e-9 < need:
                    def word(q: Quota = q, left: float = left, need: float = need, pv: PoolView = pv) -> str:
                        return (f"quota: {q.name} headroom {left:g} {q.unit} < {need:g} "
                                f"({pv.pool.provider}/{pv.pool.region} {pv.it.name})")
                    return word
        return lambda: f"quota: {g.provider}/{g.region} quotas too small for {n} nodes"
    # A failure is recorded for most groups a search meets (~61,000 for a 10,000-workload plan): only the
    # figures of the moment are taken here, as a partial of a module-level function (no closure cells)
    free = state.free
    if len(pools) == 1:
        pv = pools[0]
        return partial(_capacity_text, g, wc.domain, pv, free[pv.idx])
    if wc.domain == _ANY:
        return partial(_region_text, g, pools, sum([free[pv.idx] for pv in pools]))
    best = max(pools, key=lambda pv: (free[pv.idx], -pv.idx))
    return partial(_capacity_text, g, wc.domain, best, free[best.idx])


def _region_text(g: Group, pools: list[PoolView], total: int) -> str:
    n = g.need_nodes
    return (f"capacity: {g.provider}/{g.region} {g.it.name} has {total} nodes free in "
            f"{len({pv.pool.zone for pv in pools})} zone(s), {'gang' if n > 1 else 'workload'} needs {n}")


def _capacity_text(g: Group, domain: TopologyDomain, best: PoolView, best_free: int) -> str:
    n = g.need_nodes
    extra = ""
    if domain == TopologyDomain.NVLINK:
        extra = f" ({g.units} NVLink domain(s) of {g.nodes_per_unit} nodes)"
    elif domain in (TopologyDomain.CLUSTER, TopologyDomain.ZONE):
        extra = f" in one {'pool' if domain == TopologyDomain.CLUSTER else 'zone'}"
    return (f"capacity: {best.pool.zone} {best.it.name} has {best_free} nodes free, "
            f"{'gang' if n > 1 else 'workload'} needs {n}{extra}")


def pack(g: Group, wc: WorkloadClass, state: FleetState, ps: PolicySet) -> Option | Failure:
    pools = g.fixed_order
    if pools is None:
        pools = sorted(g.pools, key=lambda pv: _order_key(pv, state))
    free = state.free
    if len(pools) == 1:
        short = free[pools[0].idx] < g.need_nodes
    else:
        short = sum(free[pv.idx] for pv in pools) < g.need_nodes
    if short:   # not enough free nodes in the whole group, whatever the topology: no need to try packing
        return Failure("no-capacity", shortfall(g, wc, state, pools, quota=False))
    got = _fill(g, wc, state, pools, use_quota=True)
    if got is None:
        if _fill(g, wc, state, pools, use_quota=False) is not None:
            return Failure("no-quota", shortfall(g, wc, state, pools, quota=True))
        return Failure("no-capacity", shortfall(g, wc, state, pools, quota=False))
    local: dict[str, float] = {}
    takes = [_price_take(pv, n, state, local) for pv, n in got]
    gpus = sum(t.nodes for t in takes) * g.it.gpus
    listed = sum(t.listed for t in takes)
    committed = sum((t.covered if t.commitment else (t.nodes if t.pv.pool.reservation_id else 0)) for t in takes)
    opt = Option(g, takes, gpus, sum(t.marginal for t in takes), listed, committed * g.it.gpus)
    why = check_caps(opt, wc, state, ps)
    return why or opt


def check_caps(opt: Option, wc: WorkloadClass, state: FleetState, ps: PolicySet) -> Failure | None:
    return caps_failure(opt.group.provider, opt.gpus, opt.listed, wc.team, state, ps, ps.budget(wc.team),
                        opt.group.cap_exempt)


def share_after(cap: ProviderShareCap, state: FleetState, prov: str, gpus: int) -> float:
    """The share of the fleet's GPUs ``prov`` would hold with ``gpus`` more (the cap's own measure), or 0
    while the fleet would not pass ``min_fleet_gpus``: the cap applies only once it does."""
    total = state.total_gpus + gpus
    if total <= cap.min_fleet_gpus:
        return 0.0
    return (state.provider_gpus.get(prov, 0) + gpus) / total


def caps_failure(prov: str, gpus: int, listed: float, team: str, state: FleetState, ps: PolicySet,
                 b: TeamBudget | None, cap_exempt: bool = False) -> Failure | None:
    """The provider share cap and the team budget (``b``, the team's) on an option of ``gpus`` GPUs at
    ``listed`` $/hour on ``prov``. ``cap_exempt``: the workload is one only ``prov`` can serve
    (Group.cap_exempt)."""
    cap = ps.provider_share
    if cap is not None and not cap_exempt:
        share = share_after(cap, state, prov, gpus)
        if share > cap.max_share + 1e-9:
            of = state.total_gpus + gpus
            return Failure("cap", lambda: f"cap: {prov} would hold {share:.0%} > {cap.max_share:.0%} of {of} GPUs "
                                          f"(the fleet is past minFleetGpus {cap.min_fleet_gpus})")
    if b is not None:
        if b.gpus is not None and state.team_gpus.get(team, 0) + gpus > b.gpus:
            use = state.team_gpus.get(team, 0) + gpus
            return Failure("budget", lambda: f"budget: team {team} would use {use} GPUs > {b.gpus}")
        dollars = state.team_dollars.get(team, 0.0) + listed
        if b.dollars_per_hour is not None and dollars > b.dollars_per_hour + 1e-9:
            return Failure("budget", lambda: f"budget: team {team} would spend ${dollars:,.2f}/h > "
                                             f"${b.dollars_per_hour:,.2f}/h")
    return None
