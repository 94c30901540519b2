"""Which stacks a pass runs: a stack that may still hold cloud resources is run with an empty spec once
its workloads have gone, whatever state its last run left it in."""

from __future__ import annotations

from controlplane.reconcile import provisioning
from controlplane.store.models import Stack


def _stack(db, name: str, **kw) -> None:
    with db.session() as s:
        s.add(Stack(name=name, spec_hash=kw.pop("spec_hash", ""), message="", attempts=kw.pop("attempts", 0), **kw))


def test_a_stack_whose_first_run_failed_part_way_is_emptied_after_its_workloads_moved(db):
    # Its first up created a node, then hit a stock-out: no applied spec, but the engine's state holds it.
    _stack(db, "awan-gcp-us-central1", status="failed", attempts=1,
           state={"resources": {"urn:vm": {"status": "created", "ids": ["123"]}}})
    [p] = provisioning.plan(db, resync_s=60)
    assert (p.spec.name, p.spec.pools, p.reason) == ("awan-gcp-us-central1", (), "changed")


def test_a_failed_stack_without_state_is_still_run_empty(db):
    # The Pulumi engine keeps its state outside the store: a failed stack may hold resources all the same.
    _stack(db, "awan-aws-us-east-1", status="failed", attempts=2)
    assert [p.spec.name for p in provisioning.plan(db, resync_s=60)] == ["awan-aws-us-east-1"]


def test_an_emptied_stack_is_left_alone(db):
    _stack(db, "awan-azure-eastus", status="ok", spec={"provider": "azure", "region": "eastus", "pools": []},
           state={"resources": {}})
    st = provisioning.plan(db, resync_s=60)
    assert st == []
