"""CoreWeave committed-capacity contracts in the fake CKS cluster (modelled; see below).

CoreWeave sells reserved capacity on contracts: so many nodes of one instance type in one zone (often whole
racks) for a term. The contract terms live in CoreWeave's Console and order forms, not in the CKS API, so
this fake publishes them the way it publishes the org quota: a ConfigMap ``kube-system/coreweave-contracts``
with one key per contract id and a JSON value

    {"zone": "US-EAST-04A", "instanceType": "gd-8xh100ib-i128", "nodes": 4,
     "start": "2026-12-01T00:00:00Z", "end": "2027-12-01T00:00:00Z", "pricePerNodeHour": 40.0}

A NodePool draws on a contract when its ``spec.reservation`` names it (the field Awan's Pulumi component,
infra/components/coreweave.py, writes for reserved pools; modelled too), and its nodes carry the label
``compute.coreweave.com/contract: <id>``. They come out of the contract, never the zone's on-demand capacity,
and only within the term: before the start the pool stays short (``InsufficientCapacity``, naming the
start), at the end its nodes are removed (``ContractEnded``). The ConfigMap, the spec field and the node
label are Awan's stand-ins, not documented CoreWeave API surface.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

CONTRACTS_NAMESPACE, CONTRACTS_CONFIGMAP = "kube-system", "coreweave-contracts"
CONTRACT_LABEL = "compute.coreweave.com/contract"


@dataclass(frozen=True, slots=True)
class Contract:
    id: str
    zone: str
    instance_type: str
    nodes: int
    start: datetime
    end: datetime

    def in_term(self, at: datetime) -> bool:
        return self.start <= at < self.end


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def parse_contracts(data: dict[str, str] | None) -> dict[str, Contract]:
    """The well-formed contracts of the ConfigMap's data; a malformed entry counts as no contract."""
    out: dict[str, Contract] = {}
    for cid, raw in (data or {}).items():
        try:
            doc = json.loads(raw)
            start, end = _when(doc.get("start")), _when(doc.get("end"))
            nodes = int(doc.get("nodes"))
        except (ValueError, TypeError, AttributeError):
            continue
        if start is None or end is None or end <= start or nodes < 0:
            continue
        out[cid] = Contract(cid, str(doc.get("zone") or ""), str(doc.get("instanceType") or ""), nodes, start, end)
    return out
