"""Hard constraints: each a small function of (workload class, pool view, policies) that returns why the
pool is ruled out, or None. Their order is the order explanations report ("the first rule")."""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase

from controlplane.model.workload import TopologyDomain
from controlplane.placement.views import PoolView, WorkloadClass
from controlplane.policy.model import AllowDeny, PolicySet
from providers.catalog.fabric import gang_fabric_refusal, is_nvlink_rack, pool_placement
from providers.model import HealthStatus


def region_matches(pattern: str, provider: str, region: str) -> bool:
    """``aws:us-east-*`` matches only AWS; an unprefixed glob matches any provider's region name."""
    if ":" in pattern:
        prov, _, pat = pattern.partition(":")
        return prov == provider and fnmatchcase(region, pat)
    return fnmatchcase(region, pattern)


def _allowed(ad: AllowDeny, value: str, match: Callable[[str], bool] | None = None) -> str | None:
    m = match or (lambda pat: fnmatchcase(value, pat))
    for pat in ad.deny:
        if m(pat):
            return f"denied by {pat!r}"
    if ad.allow is not None and not any(m(pat) for pat in ad.allow):
        return f"not in allowed [{', '.join(ad.allow)}]"
    return None


def gang_shape(wc: WorkloadClass, pv: PoolView) -> tuple[int, int] | str:
    """(nodes per unit, units per gang) for one replica on this instance type, or why it cannot fit.
    A unit is what must sit in one pool: an NVLink domain for nvlink, the whole gang for cluster, one node
    otherwise."""
    g = pv.it.gpus
    if wc.per_node is not None and wc.per_node != g:
        return f"shape: {pv.it.name} has {g} GPUs per node, workload asks perNode {wc.per_node}"
    if wc.count % g and wc.count > g:
        return f"shape: {wc.count} GPUs is not a whole number of {g}-GPU {pv.it.name} nodes"
    nodes = max(1, wc.count // g)
    if wc.domain == TopologyDomain.NVLINK:
        size = wc.domain_size or (pv.it.nvlink_domain_gpus if wc.count % pv.it.nvlink_domain_gpus == 0
                                  else wc.count)
        if size > pv.it.nvlink_domain_gpus:
            return (f"topology: NVLink domain of {size} GPUs does not fit {pv.it.name} "
                    f"(domain of {pv.it.nvlink_domain_gpus} GPUs)")
        if size % g or wc.count % size:
            return f"topology: domainSize {size} is not a whole number of {g}-GPU nodes"
        per_unit = size // g
        return per_unit, nodes // per_unit
    if wc.domain == TopologyDomain.CLUSTER:
        return nodes, 1
    return 1, nodes


def r_gpu(wc: WorkloadClass, pv: PoolView, ps: PolicySet) -> str | None:
    if pv.it.gpu_model not in wc.models:
        return f"gpu: {pv.it.name} has {pv.it.gpu_model}, workload wants {'/'.join(wc.models)}"
    if wc.memory is not None and pv.it.gpu_memory_gib < wc.memory - 1e-9:
        return (f"gpu: {pv.it.name} has {pv.it.gpu_memory_gib:g} GiB per {pv.it.gpu_model}, "
                f"workload wants at least {wc.memory:g} GiB")
    return None


def r_shape(wc: WorkloadClass, pv: PoolView, ps: PolicySet) -> str | None:
    s = gang_shape(wc, pv)
    return s if isinstance(s, str) else None


def r_surplus(wc: WorkloadClass, pv: PoolView, ps: PolicySet) -> str | None:
    if ps.surplus_gpus == "forbid" and wc.count < pv.it.gpus:
        return (f"surplus: {pv.it.name} has {pv.it.gpus} GPUs per node, workload asks {wc.count} "
                "(policy surplusGpus: forbid)")
    return None


def r_fabric(wc: WorkloadClass, pv: PoolView, ps: PolicySet) -> str | None:
    """A gang pool on an instance type its provider cannot gang (the catalog's fabric): the provisioning
    component would refuse it, so placement does not choose it (one rule, providers.catalog.fabric)."""
    nodes = max(1, wc.count // max(1, pv.it.gpus))
    if pool_placement(wc.kind, wc.domain, is_nvlink_rack(pv.it), nodes) == "none":
        return None
    why = gang_fabric_refusal(pv.it)
    return f"fabric: {why}" if why else None


def r_capacity_type(wc: WorkloadClass, pv: PoolView, ps: PolicySet) -> str | None:
    ct = pv.capacity_type
    if ct not in wc.capacity_types:
        return f"capacity type: {ct} not in workload's [{', '.join(wc.capacity_types)}]"
    why = _allowed(ps.capacity_types, ct)
    return f"policy capacityTypes: {ct} {why}" if why else None


def r_provider(wc: WorkloadClass, pv: PoolView, ps: PolicySet) -> str | None:
    why = _allowed(ps.providers, pv.pool.provider)
    return f"policy providers: {pv.pool.provider} {why}" if why else None


def r_region(wc: WorkloadClass, pv: PoolView, ps: PolicySet) -> str | None:
    p, r = pv.pool.provider, pv.pool.region
    why = _allowed(ps.regions, r, lambda pat: region_matches(pat, p, r))
    if why:
        return f"policy regions: {p}:{r} {why}"
    if wc.regions is not None and not any(region_matches(pat, p, r) for pat in wc.regions):
        return f"location: {p}:{r} not in workload's regions [{', '.join(wc.regions)}]"
    return None


def r_residency(wc: WorkloadClass, pv: PoolView, ps: PolicySet) -> str | None:
    if not wc.data_class:
        return None
    dc = ps.data_class(wc.data_class)
    if dc is None:
        # fail closed: a label no policy defines (a typo, a policy since removed) promises residency that
        # nothing here can keep, so no region qualifies (admission refuses it at submit; this is for
        # workloads stored before the policy changed)
        return f"residency: data-class {wc.data_class!r} is not defined by the policies in force"
    reg = pv.region
    if dc.geo is not None and reg.geo not in dc.geo:
        return (f"residency: data-class {dc.name} allows geo {', '.join(dc.geo)}, "
                f"region {reg.name} is {reg.geo}")
    if dc.countries is not None and reg.country not in dc.countries:
        return (f"residency: data-class {dc.name} allows countries {', '.join(dc.countries)}, "
                f"region {reg.name} is in {reg.country}")
    return None


def r_geo(wc: WorkloadClass, pv: PoolView, ps: PolicySet) -> str | None:
    if wc.geo is not None and pv.region.geo not in wc.geo:
        return f"location: region {pv.region.name} is {pv.region.geo}, workload allows geo {', '.join(wc.geo)}"
    return None


def r_gpu_policy(wc: WorkloadClass, pv: PoolView, ps: PolicySet) -> str | None:
    why = _allowed(ps.gpu_models, pv.it.gpu_model)
    return f"policy gpuModels: {pv.it.gpu_model} {why}" if why else None


def r_price(wc: WorkloadClass, pv: PoolView, ps: PolicySet) -> str | None:
    for limit, who in ((wc.max_price, "workload"), (ps.max_price_per_gpu_hour, "policy")):
        if limit is not None and pv.price_per_gpu_hour > limit + 1e-9:
            return f"price: {pv.pool.instance_type} ${pv.price_per_gpu_hour:.2f}/GPU-h > {who} max ${limit:.2f}"
    return None


def r_health(wc: WorkloadClass, pv: PoolView, ps: PolicySet) -> str | None:
    if pv.health == HealthStatus.DOWN:
        return f"health: {pv.pool.provider}/{pv.pool.region} is down"
    return None


def r_blocked(wc: WorkloadClass, pv: PoolView, ps: PolicySet) -> str | None:
    if pv.blocked:
        return f"failover: pool {pv.pool.zone}/{pv.pool.instance_type}/{pv.capacity_type} is blocked after a failure"
    return None


STATIC_RULES: tuple[Callable[[WorkloadClass, PoolView, PolicySet], str | None], ...] = (
    r_gpu, r_shape, r_surplus, r_fabric, r_capacity_type, r_provider, r_region, r_residency, r_geo, r_gpu_policy, r_price,
    r_health, r_blocked,
)
