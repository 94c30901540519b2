"""Human-readable explanations: why a workload went where it went, or why it could not go anywhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from controlplane.model.workload import TopologyDomain

if TYPE_CHECKING:
    from controlplane.placement.candidates import WorkloadClass
    from controlplane.placement.gangs import Failure, Option

_KIND_TEXT = {
    "nothing-matches": "nothing matches: no offering passes the hard constraints",
    "no-capacity": "no capacity: every matching pool is short of free nodes",
    "no-quota": "no quota: capacity exists but quota headroom is too small",
    "cap": "cap: every option would break the provider share cap",
    "budget": "budget: the team's GPU budget would be exceeded",
}


def _terms(o: Option) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in o.terms.items())


def describe_option(o: Option, wc: WorkloadClass, replica: int | None) -> str:
    g = o.group
    zones = sorted({t.pv.pool.zone for t in o.takes})
    cts = sorted({t.pv.capacity_type for t in o.takes})
    nodes = sum(t.nodes for t in o.takes)
    head = f"replica {replica}: " if replica is not None else ""
    text = (f"{head}{g.provider}/{g.region} ({', '.join(zones)}) {nodes} x {g.it.name} {'/'.join(cts)}, "
            f"${o.marginal:,.2f}/h marginal (${o.listed:,.2f}/h list), score {o.score:.3f} [{_terms(o)}]")
    if wc.domain == TopologyDomain.NVLINK:
        text += f"; nvlink: {g.units} domain(s) of {g.nodes_per_unit} nodes, each in one pool"
    elif wc.domain == TopologyDomain.CLUSTER:
        text += "; cluster: one pool (one placement group)"
    elif wc.domain == TopologyDomain.ZONE:
        text += "; zone: one zone"
    burns = sorted({t.commitment for t in o.takes if t.commitment and t.covered})
    if burns:
        text += f"; burns down {', '.join(burns)}"
    return text


def runner_up(o: Option) -> dict[str, Any]:
    g = o.group
    return {"provider": g.provider, "region": g.region, "instanceType": g.it.name,
            "zones": sorted({t.pv.pool.zone for t in o.takes}),
            "capacityType": "/".join(sorted({t.pv.capacity_type for t in o.takes})),
            "pricePerHour": round(o.marginal, 4), "score": round(o.score, 4), "terms": {
                k: round(v, 4) for k, v in o.terms.items()}}


def unplaced_reasons(kind: str, fails: Mapping[str, Failure], rejections: Mapping[str, str],
                     replica: int | None = None, examples: int = 3) -> list[str]:
    head = _KIND_TEXT.get(kind, kind)
    if replica is not None:
        head += f" (for replica {replica}; a workload is placed whole or not at all)"
    out = [head]
    if fails:
        same = [f"{k}: {f.message}" for k, f in sorted(fails.items()) if f.kind == kind]
        out.extend(same[:examples])
    else:
        out.extend(f"{k}: {why}" for k, why in sorted(rejections.items())[:examples])
    return out
