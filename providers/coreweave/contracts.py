"""CoreWeave committed-capacity contracts as dated capacity pools (modelled).

CoreWeave sells reserved capacity per contract (a number of nodes, often whole racks, of one instance type
in one zone, for a term at a contracted price). The terms are in CoreWeave's Console and order forms, not
in the CKS Kubernetes API, so, as with the org quota (capacity.py), Awan reads a stand-in the cluster
publishes: the ConfigMap ``kube-system/coreweave-contracts``, one key per contract id, each value a JSON
document (``ContractTerms``). A NodePool draws on a contract through ``spec.reservation`` (the field the
Pulumi component writes for reserved pools; also modelled), and its nodes carry the label
``compute.coreweave.com/contract``. The mock cluster
(mockclouds/kubernetes/contracts.py) enforces the term: no nodes before the start, nodes removed at the end.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from providers.catalog.model import CapacityType, Offering
from providers.model import CapacityPool

log = structlog.get_logger(__name__)
CONTRACTS_NAMESPACE, CONTRACTS_CONFIGMAP = "kube-system", "coreweave-contracts"
CONTRACT_LABEL = "compute.coreweave.com/contract"


class ContractTerms(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    zone: str = Field(min_length=1)
    instance_type: str = Field(alias="instanceType", min_length=1)
    nodes: int = Field(ge=0)                      # committed nodes
    start: AwareDatetime
    end: AwareDatetime
    price_per_node_hour: float | None = Field(default=None, alias="pricePerNodeHour", ge=0)

    @model_validator(mode="after")
    def _term(self) -> ContractTerms:
        if self.end <= self.start:
            raise ValueError("end: must be after start")
        return self


def parse_contracts(data: dict[str, str] | None) -> dict[str, ContractTerms]:
    """The contracts of the ConfigMap's data; a malformed entry is logged (naming the field) and skipped,
    so one bad entry does not hide the others."""
    out: dict[str, ContractTerms] = {}
    for cid, raw in sorted((data or {}).items()):
        try:
            out[cid] = ContractTerms.model_validate_json(raw)
        except ValidationError as e:
            fields = ", ".join(".".join(str(p) for p in err["loc"]) or "value" for err in e.errors())
            log.warning("coreweave.contract.invalid", contract=cid, fields=fields)
    return out


def contract_pools(contracts: dict[str, ContractTerms], offerings: list[Offering], nodes: list[dict[str, Any]],
                   now: datetime) -> list[CapacityPool]:
    """One reserved pool per contract not yet ended, in a zone Awan may use: free = committed - nodes on it,
    dated by the term (placement never uses it outside). ``nodes`` are Node objects as dicts."""
    used: dict[str, int] = {}
    for n in nodes:
        cid = ((n.get("metadata") or {}).get("labels") or {}).get(CONTRACT_LABEL)
        if cid:
            used[cid] = used.get(cid, 0) + 1
    region_of = {o.zone: o.region for o in offerings}
    return [CapacityPool("coreweave", region_of[c.zone], c.zone, c.instance_type, CapacityType.RESERVED,
                         max(0, c.nodes - used.get(cid, 0)), reservation_id=cid,
                         price_per_hour=c.price_per_node_hour, starts_at=c.start, ends_at=c.end)
            for cid, c in contracts.items() if c.zone in region_of and now < c.end]
