"""A lower bound on the batch's cost: the LP relaxation (and the MILP) of the placement problem, with HiGHS.

The problem, over the workloads our engine placed (so both sides place the same set):
    minimise   sum_{c,p} x[c,p] * nodes(c,p) * price(p)                      ($/hour)
    such that  sum_p x[c,p] = n_c                  for each class c of identical workloads
               sum_c x[c,p] * nodes(c,p) <= free(p) for each capacity pool p
               provider GPUs <= cap share * placed GPUs (when a provider cap is in force)
               x >= 0; x integer for workloads that must sit in one pool (the MILP), free for gangs that
               may span zones.
``nodes(c,p) = ceil(gpus / gpus per node)``: a gang is whole (all its nodes are paid for). Workloads with
identical requirements form one class, so a 100,000-workload batch is a few hundred columns per pool kind.

and, in the MILP only, each single-replica gang whole in one (provider, region, instance type) group, as the
engine places it (the LP relaxation may spread a fraction of a 1,024-GPU gang over several regions, which
no placement can do: that alone was most of the batch's gap to the LP bound, issue 17 defect 8).

Why it is a valid bound: every constraint here is one the engine must also meet, and some of the engine's
(the one-region rule for gangs, whole NVLink racks, team budgets, CEL rules, soft preferences) are left out,
which can only lower the optimum. If the engine uses a pool this model thinks the workload may not use,
that pool is added as an option and counted in ``mismatches`` (a difference of interpretation to look at).
"""

from __future__ import annotations

import fnmatch
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import highspy

from providers.catalog import Catalog

PoolKey = tuple[str, str, str, str, str]   # provider, zone, instance type, capacity type, reservation


def pool_key(p: Any) -> PoolKey:
    return (p.provider, p.zone, p.instance_type, str(getattr(p.capacity_type, "value", p.capacity_type)),
            getattr(p, "reservation_id", getattr(p, "reservation", "")) or "")


@dataclass(slots=True)
class LPResult:
    status: str
    lp_bound: float | None          # $/hour, LP relaxation
    milp_cost: float | None         # $/hour, best integer solution found
    milp_bound: float | None        # $/hour, HiGHS's dual bound on the MILP (>= lp_bound)
    classes: int
    columns: int
    seconds: float
    mismatches: int = 0
    notes: list[str] = field(default_factory=list)
    # the LP relaxation's solution: class key -> pool -> workloads (fractional), to compare with a placement
    solution: dict[tuple, dict[PoolKey, float]] = field(default_factory=dict)


def _region_ok(spec: Any, provider: str, region: str, catalog: Catalog, geo_allowed: tuple[str, ...] | None) -> bool:
    reg = catalog.regions.get((provider, region))
    loc = spec.location
    if loc.geo and (reg is None or reg.geo not in loc.geo):
        return False
    if geo_allowed is not None and (reg is None or reg.geo not in geo_allowed):
        return False
    if loc.regions:
        for pat in loc.regions:
            prov, _, name = pat.rpartition(":")
            if (not prov or prov == provider) and fnmatch.fnmatchcase(region, name):
                return True
        return False
    return True


def _class_key(w: Any) -> tuple:
    s = w.spec
    return (tuple(s.gpus.model), s.gpus.count, s.gpus.per_node, s.topology.domain, s.topology.domain_size,
            tuple(str(c) for c in s.capacity_type), tuple(s.location.geo or ()), tuple(s.location.regions or ()),
            s.max_price_per_gpu_hour, s.replicas, w.metadata.labels.get("data-class", ""))


def _nodes(w: Any, gpus_per_node: int) -> int:
    return w.spec.replicas * math.ceil(w.spec.gpus.count / gpus_per_node)


def _may_split(w: Any) -> bool:
    """May one workload's nodes come from several pools? (one-region rule relaxed: a looser, still valid bound)"""
    return str(w.spec.topology.domain) in ("any", "zone") or w.spec.replicas > 1


def _feasible(w: Any, pool: Any, catalog: Catalog, policies: Any, price: float) -> bool:
    s = w.spec
    it = catalog.instance_type(pool.provider, pool.instance_type)
    if it.gpu_model not in s.gpus.model:
        return False
    if str(getattr(pool.capacity_type, "value", pool.capacity_type)) not in {str(c) for c in s.capacity_type}:
        return False
    if s.gpus.per_node is not None and it.gpus != s.gpus.per_node:
        return False
    if str(s.topology.domain) == "nvlink" and s.topology.domain_size and it.nvlink_domain_gpus < s.topology.domain_size:
        return False
    per_gpu = price / it.gpus
    for cap in (s.max_price_per_gpu_hour, getattr(policies, "max_price_per_gpu_hour", None)):
        if cap is not None and per_gpu > cap + 1e-9:
            return False
    geo_allowed = None
    dc_name = w.metadata.labels.get("data-class")
    if dc_name and policies is not None and (dc := policies.data_class(dc_name)) is not None:
        geo_allowed = dc.geo
        reg = catalog.regions.get((pool.provider, pool.region))
        if dc.countries is not None and (reg is None or reg.country not in dc.countries):
            return False
    return _region_ok(s, pool.provider, pool.region, catalog, geo_allowed)


def pool_prices(pools: Iterable[Any], catalog: Catalog) -> dict[PoolKey, float]:
    offered = {(o.provider, o.zone, o.instance_type, o.capacity_type.value): o.price_per_hour for o in catalog.offerings}
    out: dict[PoolKey, float] = {}
    for p in pools:
        k = pool_key(p)
        price = p.price_per_hour if p.price_per_hour is not None else offered.get(k[:4])
        if price is not None:
            out[k] = float(price)
    return out


def lp_bound(placed: Sequence[tuple[Any, Sequence[Any]]], pools: Sequence[Any], catalog: Catalog,
             policies: Any = None, provider_cap: float | None = None, min_fleet_gpus: int = 0, time_limit: float = 60.0,
             solve_milp: bool = True, one_region: bool = True) -> LPResult:
    """``placed``: (workload, its assignments) for each workload the engine placed. ``pools``: the capacity
    the batch started from (CapacityPool list). ``one_region``: the MILP keeps each single-replica gang in
    one region (the engine's rule); the LP relaxation cannot (see below), so it stays the looser bound."""
    t0 = time.perf_counter()
    prices = pool_prices(pools, catalog)
    free = {pool_key(p): int(p.available_nodes) for p in pools if pool_key(p) in prices}
    by_key = {pool_key(p): p for p in pools if pool_key(p) in prices}

    classes: dict[tuple, list[Any]] = defaultdict(list)
    used_by_class: dict[tuple, set[PoolKey]] = defaultdict(set)
    mismatches = 0
    for w, assignments in placed:
        ck = _class_key(w)
        classes[ck].append(w)
        for a in assignments:
            used_by_class[ck].add(pool_key(a))

    columns: list[tuple[tuple, PoolKey, int, float, bool]] = []   # class, pool, nodes per workload, cost, integer
    notes: list[str] = []
    for ck, ws in classes.items():
        w = ws[0]
        options = {k for k, p in by_key.items() if _feasible(w, p, catalog, policies, prices[k])}
        extra = used_by_class[ck] - options
        if extra:
            mismatches += len(extra)
            options |= {k for k in extra if k in by_key}
            if any(k not in by_key for k in extra):
                notes.append(f"class {ck[0]}x{ck[1]}: engine used a pool not in the snapshot")
        for k in sorted(options):
            it = catalog.instance_type(k[0], k[2])
            n = _nodes(w, it.gpus)
            columns.append((ck, k, n, n * prices[k], not _may_split(w)))

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    inf = highspy.kHighsInf
    for _, _, _, cost, _ in columns:
        h.addCol(cost, 0.0, inf, 0, [], [])
    rows_by_class: dict[tuple, list[int]] = defaultdict(list)
    rows_by_pool: dict[PoolKey, list[int]] = defaultdict(list)
    for j, (ck, k, _, _, _) in enumerate(columns):
        rows_by_class[ck].append(j)
        rows_by_pool[k].append(j)
    for ck, ws in classes.items():
        idx = rows_by_class.get(ck, [])
        if not idx:
            return LPResult("infeasible: a placed class has no option", None, None, None, len(classes),
                            len(columns), time.perf_counter() - t0, mismatches, notes)
        h.addRow(len(ws), len(ws), len(idx), idx, [1.0] * len(idx))
    # One region per gang (the engine's rule: a replica sits in one provider/region/instance type): for a
    # class of single-replica gangs that may split over pools, y[c, g] workloads go to group g and the
    # class's pool columns in g sum to it. In the LP y is fractional, so a gang may still be spread over
    # regions (the relaxation: 0.3 of a 1,024-GPU gang in each of three regions); the MILP makes y whole.
    group_vars: list[int] = []
    if one_region:
        for ck, ws in classes.items():
            if ws[0].spec.replicas != 1 or not _may_split(ws[0]):
                continue
            by_group: dict[tuple[str, str, str], list[int]] = defaultdict(list)
            for j in rows_by_class[ck]:
                k = columns[j][1]
                by_group[(k[0], by_key[k].region, k[2])].append(j)
            if len(by_group) < 2:
                continue
            for idx in by_group.values():
                y = h.getNumCol()
                h.addCol(0.0, 0.0, inf, 0, [], [])
                group_vars.append(y)
                h.addRow(0.0, 0.0, len(idx) + 1, [*idx, y], [1.0] * len(idx) + [-1.0])
    for k, idx in rows_by_pool.items():
        h.addRow(-inf, float(free[k]), len(idx), idx, [float(columns[j][2]) for j in idx])
    if provider_cap is not None:
        total = max(sum(w.total_gpus for ws in classes.values() for w in ws), min_fleet_gpus)
        by_provider: dict[str, list[int]] = defaultdict(list)
        for j, (_, k, _, _, _) in enumerate(columns):
            by_provider[k[0]].append(j)
        for idx in by_provider.values():
            vals = [float(columns[j][2] * catalog.instance_type(columns[j][1][0], columns[j][1][2]).gpus) for j in idx]
            h.addRow(-inf, provider_cap * total, len(idx), idx, vals)

    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    lp = h.getInfo().objective_function_value if status == "Optimal" else None
    solution: dict[tuple, dict[PoolKey, float]] = defaultdict(dict)
    if lp is not None:
        for j, v in enumerate(h.getSolution().col_value[:len(columns)]):
            if v > 1e-9:
                solution[columns[j][0]][columns[j][1]] = v
    milp_cost = milp_bound = None
    if solve_milp and lp is not None:
        ints = [j for j, c in enumerate(columns) if c[4]] + group_vars
        if ints:
            h.changeColsIntegrality(len(ints), ints, [highspy.HighsVarType.kInteger] * len(ints))
            h.clearSolver()     # the MIP from scratch: started from the LP's basis, HiGHS reported a wrong objective
            h.run()
            info = h.getInfo()
            if info.primal_solution_status == 2:      # feasible
                milp_cost = info.objective_function_value
            milp_bound = info.mip_dual_bound
        else:
            milp_cost = milp_bound = lp
    return LPResult(status, lp, milp_cost, milp_bound, len(classes), len(columns), time.perf_counter() - t0,
                    mismatches, notes, dict(solution))
