"""Failover's pieces on a real store, without clouds: the block list, the debounced region watch, and
the re-placement of workloads after a stock-out or an outage (state, audit reason, blocked pools)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from controlplane.model.identity import workload_key
from controlplane.reconcile import failover
from controlplane.store import audit
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from controlplane.store.models import Assignment, Workload, WorkloadState
from providers.errors import CapacityError, ThrottledError
from providers.model import HealthStatus


@pytest.fixture
def db(tmp_path):
    d = Database.from_url(f"sqlite:///{tmp_path / 'a.db'}")
    upgrade(d.engine)
    yield d
    d.dispose()


def _add(db: Database, name: str, state: str, zone: str = "us-east-1a", region: str = "us-east-1") -> None:
    with db.session() as s:
        w = Workload(name=name, team="t", spec={}, gpus=8, state=state)
        w.assignments = [Assignment(pool=f"{name}-0", provider="aws", region=region, zone=zone,
                                    instance_type="p5.48xlarge", nodes=1, gpus=8, gpu_model="H100",
                                    capacity_type="on-demand")]
        s.add(w)


def _row(db: Database, name: str) -> tuple[str, int, str]:
    with db.session() as s:
        w = s.query(Workload).filter_by(name=name).one()
        return w.state, len(w.assignments), w.message


def test_block_list_expires():
    now = [0.0]
    b = failover.BlockList(ttl_s=180, clock=lambda: now[0])
    k = ("aws", "us-east-1a", "p5.48xlarge", "on-demand", "")
    b.block([k])
    now[0] = 179.0
    assert b.active() == {k}
    now[0] = 180.5
    assert b.active() == frozenset()


def test_region_watch_needs_two_down_probes_and_reports_recovery():
    w = failover.RegionWatch(confirm=2)
    down = SimpleNamespace(status=HealthStatus.DEGRADED, regions={"us-east-1": HealthStatus.DOWN,
                                                                   "us-west-2": HealthStatus.OK})
    up = SimpleNamespace(status=HealthStatus.OK, regions={"us-east-1": HealthStatus.OK, "us-west-2": HealthStatus.OK})
    assert w.update({"aws": down})[0] == set()                  # one probe is noise
    assert w.update({"aws": down})[0] == {("aws", "us-east-1")}
    regions, providers, back = w.update({"aws": up})
    assert (regions, providers, back) == (set(), set(), {("aws", "us-east-1")})
    assert w.update({"aws": up})[2] == set()                    # reported once
    err = ThrottledError("x")
    assert w.update({"aws": err})[1] == set()
    assert w.update({"aws": err})[1] == {"aws"}


def test_stock_out_moves_waiting_workloads_of_the_failed_pool_only(db):
    _add(db, "a", WorkloadState.PLACED.value)
    _add(db, "b", WorkloadState.PLACED.value)                      # same pool key as a: moved too
    _add(db, "c", WorkloadState.PLACED.value, zone="us-east-1b")   # another zone: stays
    _add(db, "d", WorkloadState.PROVISIONING.value)                # already applied: keeps its nodes
    pools = [SimpleNamespace(pool=f"{n}-0", workload=workload_key("t", n)) for n in "abcd"]
    state = {"resources": {"urn:x::a-0": {"status": "failed", "name": "a-0-node", "parent": "a-0"}}}
    blocks = failover.BlockList()
    moved = failover.on_stack_failure(db, pools, CapacityError("no room", provider="aws"), state=state,
                                      blocks=blocks, actor="t", fenced=lambda: True)
    assert sorted(moved) == [workload_key("t", "a"), workload_key("t", "b")]
    assert _row(db, "a")[:2] == (WorkloadState.PENDING.value, 0)
    assert "no room" in _row(db, "a")[2]
    assert _row(db, "c")[0] == WorkloadState.PLACED.value
    assert _row(db, "d")[0] == WorkloadState.PROVISIONING.value
    assert blocks.active() == {("aws", "us-east-1a", "p5.48xlarge", "on-demand", "")}
    with db.session() as s:
        ev = [e for e in audit.events(s, subject="a") if e.action == "failover"]
        assert ev and ev[0].details["trigger"] == "provisioning" and ev[0].details["blocked"]


def test_outage_evacuates_only_the_dead_region_and_only_when_fenced(db):
    _add(db, "east", WorkloadState.RUNNING.value)
    _add(db, "west", WorkloadState.RUNNING.value, zone="us-west-2a", region="us-west-2")
    assert failover.evacuate(db, {("aws", "us-east-1")}, set(), actor="t", fenced=lambda: False) == []
    assert _row(db, "east")[0] == WorkloadState.RUNNING.value
    assert failover.evacuate(db, {("aws", "us-east-1")}, set(), actor="t", fenced=lambda: True) == [workload_key("t", "east")]
    assert _row(db, "east")[0] == WorkloadState.PENDING.value
    assert "aws/us-east-1 DOWN" in _row(db, "east")[2]
    assert _row(db, "west")[0] == WorkloadState.RUNNING.value
