"""CoreWeave committed-capacity contracts (issue 10; modelled, see providers/coreweave/contracts.py):
CoreWeaveProvider through the kubernetes client over HTTP against the fake CKS cluster, whose clock
(POST /_mock/clock) is moved to reach a contract's start and end."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from controlplane.model.workload import GPUWorkload
from controlplane.placement.engine import place_one
from controlplane.placement.snapshot import FleetSnapshot
from controlplane.policy.model import PolicySet
from providers.catalog import default_catalog
from providers.catalog.model import CapacityType
from providers.coreweave.adapter import CoreWeaveProvider
from providers.errors import CapacityError, InvalidRequestError
from providers.model import NodeRequest, NodeState

H100, ZONE, REGION = "gd-8xh100ib-i128", "US-EAST-04A", "US-EAST-04"


@pytest.fixture
def cw(mock_coreweave):
    cfg = mock_coreweave.config().providers["coreweave"].model_copy(update={"max_attempts": 3, "timeout_s": 5.0})
    p = CoreWeaveProvider(cfg)
    p.url = mock_coreweave.urls["coreweave"]
    yield p
    p.close()


def _now(cw) -> datetime:
    return datetime.fromisoformat(httpx.get(cw.url + "/_mock/clock", verify=False).json()["now"])


def _advance_to(cw, at: datetime) -> None:
    r = httpx.post(cw.url + "/_mock/clock", json={"now": at.isoformat()}, verify=False)
    assert r.status_code == 200, r.text


def _publish(cw, **contracts: dict) -> None:
    """What CoreWeave's side publishes (the modelled ConfigMap), written over the Kubernetes API."""
    from kubernetes import client
    core = client.CoreV1Api(cw._api)
    core.create_namespaced_config_map("kube-system", {"metadata": {"name": "coreweave-contracts"},
                                                      "data": {k: json.dumps(v) for k, v in contracts.items()}})


def _terms(start: datetime, end: datetime, nodes: int = 3, **kw) -> dict:
    return {"zone": ZONE, "instanceType": H100, "nodes": nodes, "start": start.isoformat().replace("+00:00", "Z"),
            "end": end.isoformat().replace("+00:00", "Z"), "pricePerNodeHour": 30.0, **kw}


def _req(pool: str, count: int, contract: str) -> NodeRequest:
    return NodeRequest(pool=pool, workload="llm-7", region=REGION, zone=ZONE, instance_type=H100,
                       capacity_type=CapacityType.RESERVED, count=count, idempotency_key=f"{pool}-{count}",
                       reservation_id=contract)


def _contract_pool(cw, cid: str):
    [pool] = [p for p in cw.capacity().pools if p.reservation_id == cid]
    return pool


def test_contract_is_reported_with_its_term_and_never_used_before_its_start(cw):
    start = _now(cw) + timedelta(days=2)
    end = start + timedelta(days=30)
    _publish(cw, **{"cw-h100-a": _terms(start, end)})
    pool = _contract_pool(cw, "cw-h100-a")
    assert (pool.starts_at, pool.ends_at, pool.available_nodes) == (start, end, 3)
    assert (pool.capacity_type, pool.zone, pool.region, pool.price_per_hour) == (
        CapacityType.RESERVED, ZONE, REGION, 30.0)
    # the cluster refuses to lend contract nodes before the start, and the refusal leaves nothing behind
    with pytest.raises(CapacityError, match="starts at"):
        cw.create_nodes(_req("early", 1, "cw-h100-a"))
    assert cw.get_node_pool("early") is None and cw.list_nodes() == []
    # placement through the capacity snapshot: not before the start, yes within the term, not after it
    w = GPUWorkload.model_validate({"metadata": {"name": "waits"}, "spec": {
        "gpus": {"model": "H100", "count": 16}, "capacityType": "reserved",
        "location": {"regions": [f"coreweave:{REGION}"]}}})
    snap = FleetSnapshot(default_catalog(), (pool,), taken_at=datetime.now(UTC))
    assert not place_one(w, snap, PolicySet.default()).placed
    inside = place_one(w, dataclasses.replace(snap, taken_at=start), PolicySet.default())
    assert inside.placed and {a.reservation for a in inside.assignments} == {"cw-h100-a"}
    assert not place_one(w, dataclasses.replace(snap, taken_at=end), PolicySet.default()).placed


def test_contract_nodes_come_at_the_start_up_to_the_commitment_and_go_at_the_end(cw, mock_coreweave):
    ledger = mock_coreweave.backend("coreweave").ledger
    free = ledger.free(ZONE, H100)
    start = _now(cw) + timedelta(hours=3)
    end = start + timedelta(days=7)
    _publish(cw, **{"cw-h100-b": _terms(start, end, nodes=3)})
    _advance_to(cw, start)
    nodes = cw.create_nodes(_req("train", 2, "cw-h100-b"))
    assert len(nodes) == 2 and {n.capacity_type for n in nodes} == {CapacityType.RESERVED}
    assert ledger.free(ZONE, H100) == free          # drawn from the contract, not the zone's on-demand stock
    assert _contract_pool(cw, "cw-h100-b").available_nodes == 1
    with pytest.raises(CapacityError):              # 2 + 2 > the 3 committed nodes
        cw.create_nodes(_req("more", 2, "cw-h100-b"))
    assert cw.get_node_pool("more") is None

    _advance_to(cw, end)
    assert [n for n in cw.list_nodes() if n.pool == "train"] == []      # reclaimed at the end of the term
    pool = cw.get_node_pool("train")
    assert pool["status"]["currentNodes"] == 0
    assert any(c.get("reason") == "ContractEnded" for c in pool["status"]["conditions"])
    assert ledger.free(ZONE, H100) == free


def test_a_pool_naming_an_unknown_or_mismatched_contract_is_refused_naming_the_field(cw):
    now = _now(cw)
    _publish(cw, **{"cw-gb": {**_terms(now, now + timedelta(days=1)), "instanceType": "gb200-4x",
                              "zone": "US-EAST-14A"},
                    "broken": json.dumps({"zone": ZONE})})
    with pytest.raises(InvalidRequestError, match="spec.reservation"):
        cw.create_nodes(_req("x", 1, "nope"))
    with pytest.raises(InvalidRequestError, match="the contract is for gb200-4x"):
        cw.create_nodes(_req("y", 1, "cw-gb"))
    assert set(cw.contracts()) == {"cw-gb"}         # the malformed entry is skipped, not fatal
    assert {n.state for n in cw.list_nodes()} <= {NodeState.RUNNING}


def test_a_node_pool_asked_for_early_fills_at_the_start_through_the_typed_capability(cw):
    """The provisioning engines' path (SupportsNodePools, spec.reservation as the Pulumi component writes it):
    a pool on a contract made before its start waits short and gets its nodes once the term begins."""
    from providers.capabilities import NodePoolRequest

    start = _now(cw) + timedelta(hours=2)
    _publish(cw, **{"cw-h100-c": _terms(start, start + timedelta(days=1), nodes=2)})
    got = cw.ensure_node_pool(NodePoolRequest("early-pool", H100, ZONE, 2, {"awan-owner": "awan"},
                                              CapacityType.RESERVED, reservation_id="cw-h100-c"))
    assert (got.target_nodes, got.current_nodes) == (2, 0)
    assert cw.get_node_pool("early-pool")["spec"]["reservation"] == "cw-h100-c"
    _advance_to(cw, start)
    state = cw.node_pool("early-pool")
    assert state is not None and state.current_nodes == 2
    assert {n.capacity_type for n in cw.list_nodes()} == {CapacityType.RESERVED}
