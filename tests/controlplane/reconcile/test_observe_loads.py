"""Observation loads whole only the rows a comparison could change (observing._worth_loading: not a Placed row
no node of which is seen, unless its message is the held note). Over random fleets (states, messages, pools in
regions that answered or not, nodes matching, missing, extra, outside their pools, preempted) the store after
``apply_observation`` (states, messages, audit, short clocks) and what it returns are those of the same
comparison loading every watched row, for a whole comparison and for the edge pass's subset."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from controlplane.reconcile import failover, observing
from controlplane.reconcile.fleet import Observation
from controlplane.reconcile.metrics import LoopMetrics
from controlplane.reconcile.unobserved import Unobserved
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from controlplane.store.models import Assignment, AuditEvent, WorkloadState
from providers.catalog import CapacityType
from providers.model import Node, NodeState
from tests.controlplane.reconcile.harness import submit

WATCHED = [WorkloadState.PLACED.value] * 3 + [WorkloadState.PROVISIONING.value, WorkloadState.STARTING.value,
                                              WorkloadState.RUNNING.value, WorkloadState.PENDING.value]
REGIONS = ("us-east-1", "us-west-2")
HELD = "not observed: aws/us-west-2 since then"


def _fleet(db: Database, seed: int, n: int = 40) -> tuple[Observation, list[int]]:
    """``n`` workloads and an observation of them, the same for the same seed; and every id."""
    rng = random.Random(seed)
    nodes: list[Node] = []
    ids: list[int] = []
    for i in range(n):
        name = f"w{i}"
        submit(db, name, gpus=8)
        with db.session() as s:
            row = repo.get(s, name)
            assert row is not None
            row.state = rng.choice(WATCHED)
            row.message = rng.choice(["", "", HELD, "1/2 nodes running"])
            for j in range(rng.choice([0, 1, 1, 2])):
                region = rng.choice(REGIONS)
                row.assignments.append(Assignment(
                    pool=f"{name}-p{j}", provider="aws", region=region, zone=f"{region}a", instance_type="p5.48xlarge",
                    nodes=rng.choice([1, 2]), gpus=8, gpu_model="H100",
                    capacity_type=rng.choice([CapacityType.ON_DEMAND.value, CapacityType.SPOT.value])))
            s.flush()
            key, ids_ = row.key, row.id
            pools = [(a.pool, a.region, a.nodes) for a in row.assignments]
        ids.append(ids_)
        seen = rng.choice(["none", "none", "all", "short", "extra", "stray", "preempted"])
        if seen == "none":
            continue
        for pool, region, count in pools or [("", rng.choice(REGIONS), 1)]:
            count = {"short": count - 1, "extra": count + 1}.get(seen, count)
            for k in range(count):
                state = NodeState.PREEMPTED if seen == "preempted" and k == 0 else NodeState.RUNNING
                nodes.append(Node("aws", f"{name}-{pool}-{k}", f"{name}-{k}", region, f"{region}a", "p5.48xlarge",
                                  CapacityType.ON_DEMAND, state, pool="elsewhere" if seen == "stray" else pool,
                                  workload=key, gpus=8))
    observed = rng.choice([{"aws"}, {"aws/us-east-1"}, {"aws/us-east-1", "aws/us-west-2"}])
    return Observation(nodes=nodes, observed=observed), ids


def _apply(db: Database, obs: Observation, only: set[int] | None) -> tuple[Any, ...]:
    short = failover.ShortWatch(bound_s=0.0, clock=lambda: 1_000.0)   # every short workload is overdue
    unsettled: set[str] = set()
    # One clock for both comparisons: the held note names the second its region stopped answering, and two
    # real clocks read across a second's boundary differ (the test failed so, now and then).
    unseen = Unobserved(clock=lambda: 1_000.0)
    drifted = observing.apply_observation(db, obs, actor="test", fenced=lambda: True, metrics=LoopMetrics(),
                                          short=short, only=only, unsettled=unsettled, unseen=unseen)
    with db.session() as s:
        rows = [(w.name, w.state, w.message, w.generation, sorted((a.pool, a.region) for a in w.assignments))
                for w in repo.list_(s, include_deleted=True)]
        events = sorted((e.action, e.subject) for e in s.scalars(select(AuditEvent)))
    return drifted, unsettled, rows, events, short.stored()


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    dbs = [Database.from_url(f"sqlite:///{tmp_path}/{n}.db") for n in ("lean", "whole")]
    for d in dbs:
        upgrade(d.engine)
    yield dbs[0], dbs[1]
    for d in dbs:
        d.dispose()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("subset", [False, True], ids=["all", "edge"])
def test_loading_only_the_rows_that_can_change_changes_nothing(two: tuple[Database, Database], seed: int,
                                                               subset: bool,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    lean, whole = two
    obs, ids = _fleet(lean, seed)
    assert _fleet(whole, seed)[1] == ids
    only = set(random.Random(seed).sample(ids, len(ids) // 2)) if subset else None
    got = _apply(lean, obs, only)
    everything = observing._worth_loading

    def all_watched(s: Any, o: Observation, only: Any) -> list[int]:
        return [i for i, *_ in repo.heads(s, observing._WATCHED, None if only is None else list(only))]

    monkeypatch.setattr(observing, "_worth_loading", all_watched)
    want = _apply(whole, obs, only)
    assert got == want
    # and the comparison had something to skip and something to do
    monkeypatch.setattr(observing, "_worth_loading", everything)
    with lean.session() as s:
        left = everything(s, obs, only)
        assert 0 < len(left) < len(all_watched(s, obs, only))
