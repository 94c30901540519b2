"""What observation counts as a workload's running nodes (observing._running_for): only nodes in the pools it is
assigned, at most each pool's count. Nodes left in a pool it no longer holds (its previous placement's, until
their stack deletes them) are extra, to be removed, not its capacity: counted, a workload re-placed while its old
nodes still ran went Running with nothing in its own pools, and a pool over its count hid another one short."""

from __future__ import annotations

from sqlalchemy import select

from controlplane.reconcile import failover, observing
from controlplane.reconcile.fleet import Observation
from controlplane.reconcile.metrics import LoopMetrics
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.models import Assignment, AuditEvent, WorkloadState
from providers.catalog import CapacityType
from providers.model import Node, NodeState
from tests.controlplane.reconcile.harness import submit

PROVISIONING, RUNNING = WorkloadState.PROVISIONING.value, WorkloadState.RUNNING.value


def _workload(db: Database, name: str, state: str, pools: dict[str, int]) -> str:
    submit(db, name, gpus=8)
    with db.session() as s:
        row = repo.get(s, name)
        assert row is not None
        row.state = state
        for pool, nodes in pools.items():
            row.assignments.append(Assignment(
                pool=pool, provider="aws", region="us-east-1", zone="us-east-1b", instance_type="p5.48xlarge",
                nodes=nodes, gpus=8, gpu_model="H100", capacity_type=CapacityType.ON_DEMAND.value))
        return row.key


def _nodes(key: str, pool: str, count: int, zone: str = "us-east-1b") -> list[Node]:
    return [Node("aws", f"{pool}-{k}", f"{pool}-{k}", "us-east-1", zone, "p5.48xlarge", CapacityType.ON_DEMAND,
                 NodeState.RUNNING, pool=pool, workload=key, gpus=8) for k in range(count)]


def _apply(db: Database, nodes: list[Node]) -> set[str]:
    return observing.apply_observation(db, Observation(nodes=nodes, observed={"aws"}), actor="test",
                                       fenced=lambda: True, metrics=LoopMetrics(),
                                       short=failover.ShortWatch(bound_s=3600.0, clock=lambda: 0.0))


def _state(db: Database, name: str) -> tuple[str, str]:
    with db.session() as s:
        row = repo.get(s, name)
        assert row is not None
        return row.state, row.message or ""


def test_nodes_left_in_a_pool_it_no_longer_holds_do_not_make_it_running(db: Database) -> None:
    key = _workload(db, "moved", PROVISIONING, {"moved-new": 2})
    drifted = _apply(db, _nodes(key, "moved-old", 2, zone="us-east-1a"))
    assert _state(db, "moved") == (PROVISIONING, "")
    assert drifted == {"awan-aws-us-east-1"}          # its old pool's nodes are extra: their stack runs again
    _apply(db, _nodes(key, "moved-old", 2, zone="us-east-1a") + _nodes(key, "moved-new", 2))
    assert _state(db, "moved")[0] == RUNNING


def test_a_pool_over_its_count_does_not_hide_another_short(db: Database) -> None:
    key = _workload(db, "gang", PROVISIONING, {"gang-a": 2, "gang-b": 2})
    _apply(db, _nodes(key, "gang-a", 4))
    assert _state(db, "gang")[0] == PROVISIONING


def test_a_running_workload_whose_nodes_are_only_in_an_old_pool_has_lost_them(db: Database) -> None:
    key = _workload(db, "held", RUNNING, {"held-new": 1})
    _apply(db, _nodes(key, "held-old", 1, zone="us-east-1a"))
    state, message = _state(db, "held")
    assert (state, message) == (PROVISIONING, "drift: 0/1 nodes running")
    with db.session() as s:
        assert [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.subject == "held"))][-1] == "drift"


def test_nodes_without_a_pool_label_count_towards_the_whole_need(db: Database) -> None:
    key = _workload(db, "bare", PROVISIONING, {"bare-a": 2})
    _apply(db, [Node("aws", f"i-{k}", f"i-{k}", "us-east-1", "us-east-1b", "p5.48xlarge", CapacityType.ON_DEMAND,
                     NodeState.RUNNING, workload=key, gpus=8) for k in range(2)])
    assert _state(db, "bare") == (RUNNING, "2/2 nodes running")
