"""The local engine against the OCI mock through the real adapter and SDK: a gang as a cluster network
(created, resized in place, deleted), instances adopted after a lost record, a reserved pool drawing on the
reservation the stack made, and a stock-out surfacing as the typed CapacityError."""

from __future__ import annotations

import pytest

from infra.engines.local import LocalEngine
from infra.engines.select import provider_factory
from infra.engines.state import FileStateStore
from infra.spec import StackSpec
from providers.catalog.model import CapacityType
from providers.errors import CapacityError
from tests.infra.fakes import pool

C = dict(provider="oci", region="us-ashburn-1", zone="US-ASHBURN-AD-1", instance_type="BM.GPU.H100.8")


@pytest.fixture
def engine(mock_oci, tmp_path):
    eng = LocalEngine(provider_factory(mock_oci.config()), store=FileStateStore(tmp_path))
    yield eng


def _live(backend, kind: str) -> list[dict]:
    return [r for r in backend.inventory() if r["kind"] == kind and r["state"] not in ("terminated", "deleted")]


def test_gang_is_a_cluster_network_resized_in_place_and_deleted(engine, mock_oci):
    backend = mock_oci.backend("oci")
    s = StackSpec("oci", "us-ashburn-1", (pool("train-a", nodes=2, **C),))
    r = engine.up(s)
    assert r.not_applied == []
    (cn,) = _live(backend, "clusterNetwork")
    assert cn["size"] == 2 and cn["tags"]["awan-pool"] == "train-a"
    members = _live(backend, "instance")
    assert len(members) == 2 and {m["clusterNetwork"] for m in members} == {cn["id"]}
    assert engine.up(s).changes.changed is False
    r = engine.up(StackSpec("oci", "us-ashburn-1", (pool("train-a", nodes=3, **C),)))
    assert r.counts["update"] == 1 and r.counts["delete"] == 0
    assert [c["id"] for c in _live(backend, "clusterNetwork")] == [cn["id"]] and len(_live(backend, "instance")) == 3
    engine.up(StackSpec("oci", "us-ashburn-1"))
    assert _live(backend, "clusterNetwork") == [] and _live(backend, "instance") == []
    assert engine.refresh(StackSpec("oci", "us-ashburn-1")).missing == []


def test_reserved_pool_reserves_and_launches_into_the_reservation(engine, mock_oci):
    backend = mock_oci.backend("oci")
    p = pool("serve-r", nodes=2, placement="none", capacity_type=CapacityType.RESERVED, **C)
    r = engine.up(StackSpec("oci", "us-ashburn-1", (p,)))
    assert r.not_applied == []
    (cr,) = _live(backend, "capacityReservation")
    assert (cr["reserved"], cr["used"]) == (2, 2)
    assert {i["capacityReservation"] for i in _live(backend, "instance")} == {cr["id"]}
    engine.destroy("awan-oci-us-ashburn-1")
    assert _live(backend, "instance") == [] and _live(backend, "capacityReservation") == []


def test_instances_deleted_behind_our_back_are_drift_and_come_back(engine, mock_oci):
    s = StackSpec("oci", "us-ashburn-1", (pool("serve-b", nodes=2, placement="none", **C),))
    engine.up(s)
    prov = engine._providers("oci")
    victim = prov.list_nodes()[0]
    prov.delete_nodes([victim])
    assert [d.cloud_id for d in engine.refresh(s).missing] == [victim.id]
    engine.up(s)
    assert len([n for n in prov.list_nodes() if n.pool == "serve-b"]) == 2


def test_a_stock_out_is_the_typed_capacity_error(engine, mock_oci):
    mock_oci.backend("oci").ledger.set_free(0, zone="US-ASHBURN-AD-1")
    with pytest.raises(CapacityError):
        engine.up(StackSpec("oci", "us-ashburn-1", (pool("train-a", nodes=2, **C),)))
