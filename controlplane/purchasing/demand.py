"""Demand that waits: Pending workloads the last placement pass left without capacity (``no-capacity``) or
decided should wait for capacity that starts later (``waiting``, spec.schedule), and workloads that only
reserved capacity may serve while none exists (``nothing-matches`` where a region's only objection is the
capacity type: a block bought there is what they wait for). Any other ``nothing-matches`` (a GPU model or a
residency rule) is a policy matter that no purchase cures."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import load_only

from controlplane.model.workload import GPUWorkload
from controlplane.store.db import Database
from controlplane.store.models import Workload, WorkloadState
from providers.catalog import CapacityType

WAITS = ("no-capacity", "waiting")
NO_RESERVED = "capacity type:"   # the engine's rejection of a region for want of reserved capacity


@dataclass(frozen=True, slots=True)
class Demand:
    key: str
    name: str
    team: str
    why: str                  # no-capacity | waiting | nothing-matches
    workload: GPUWorkload
    rejections: dict[str, str]   # "provider/region" -> the rule that rejected it (nothing-matches)

    def region_wants_block(self, provider: str, region: str) -> bool:
        """Whether a block in this region would serve the workload as far as the last pass can tell."""
        return self.why != "nothing-matches" or self.rejections.get(f"{provider}/{region}", "").startswith(NO_RESERVED)


def waiting(db: Database, limit: int = 200) -> list[Demand]:
    """Highest priority first (the order placement serves them in)."""
    with db.session() as s:
        rows = s.scalars(select(Workload).options(load_only(Workload.name, Workload.team, Workload.spec,
                                                            Workload.explanation, Workload.priority))
                         .where(Workload.state == WorkloadState.PENDING.value)
                         .order_by(Workload.priority.desc(), Workload.id).limit(limit)).all()
        out = []
        for r in rows:
            exp = r.explanation or {}
            why = str(exp.get("unplacedReason") or "")
            rejections = {str(k): str(v) for k, v in (exp.get("rejections") or {}).items()}
            if why in WAITS or (why == "nothing-matches" and any(v.startswith(NO_RESERVED) for v in rejections.values())):
                w = GPUWorkload.model_validate(r.spec)
                if why == "nothing-matches" and CapacityType.RESERVED not in w.spec.capacity_type:
                    continue
                out.append(Demand(r.key, r.name, r.team, why, w, rejections))
        return out
