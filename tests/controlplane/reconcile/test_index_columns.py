"""The loop's index (informer.WorkloadIndex) read from columns (repo.columns_of / columns_in), not ORM rows:
after a random sequence of writes (placements with reservations and spread pools, state changes, deletions,
resets to Pending, templates), the index the change feed kept up to date (EdgeLoop.sync, ``refresh``) equals a
fresh re-list, and both equal the index built from the ORM rows as it was before (``repo.list_``): rows, pools,
states, keys, runs, GPU usage and every stack's spec and hash."""

from __future__ import annotations

import random
from typing import Any

from controlplane.reconcile.edge import EdgeLoop
from controlplane.reconcile.informer import KEPT, WorkloadIndex
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.models import Assignment, WorkloadState
from providers.catalog import CapacityType
from tests.controlplane.reconcile.harness import submit

W = WorkloadState
PLACES = [("aws", "us-east-1", "p5.48xlarge"), ("aws", "us-west-2", "p5.48xlarge"), ("gcp", "us-east4", "a3-highgpu-8g")]
MOVES = [W.PROVISIONING, W.STARTING, W.RUNNING, W.DELETING, W.FAILED, W.SUCCEEDED, W.PLACED]


def view(ix: WorkloadIndex) -> tuple[Any, ...]:
    stacks = sorted(n for n, ids in ix.by_stack.items() if ids)
    return (ix.rows, {n: ix.by_stack[n] for n in stacks}, {k: v for k, v in ix._states.items() if v}, ix._runs,
            ix._keys, ix.usage(), {n: ix.hash(n) for n in stacks}, {n: ix.spec(n) for n in stacks})


def orm_index(db: Database) -> WorkloadIndex:
    """The index as a re-list built it before it read columns: from the ORM rows."""
    ix = WorkloadIndex()
    with db.session() as s:
        for row in repo.list_(s, states=KEPT, limit=10_000_000):
            ix._put(row)
    return ix


def fresh(db: Database) -> WorkloadIndex:
    ix = WorkloadIndex()
    with db.session() as s:
        ix.relist(s)
    return ix


def _place(rng: random.Random, row: Any) -> None:
    row.state = W.PLACED.value
    row.assignments.clear()
    listed = []
    for j in range(rng.choice([1, 1, 2, 3])):
        provider, region, itype = rng.choice(PLACES)
        reserved = rng.random() < 0.3
        row.assignments.append(Assignment(
            pool=f"{row.name}-{rng.randrange(1000)}-{j}", provider=provider, region=region, zone=f"{region}a",
            instance_type=itype, nodes=rng.choice([1, 2, 4]), gpus=8 * rng.choice([1, 2]), gpu_model="H100",
            capacity_type=(CapacityType.RESERVED if reserved else rng.choice([CapacityType.ON_DEMAND,
                                                                               CapacityType.SPOT])).value,
            reservation=f"cr-{rng.randrange(100)}" if reserved else "", price_per_hour=rng.choice([0.0, 12.5, 98.3])))
        listed.append({"listPricePerHour": rng.choice([None, 31.0, 101.25]),
                       "reservation": f"cr-{rng.randrange(100)}" if reserved else "",
                       "reservationKind": rng.choice(["", "capacity-block", "reservation"])})
    row.placement = {"assignments": listed} if rng.random() < 0.8 else None


def _write(db: Database, rng: random.Random, names: list[str]) -> None:
    op = rng.random()
    if op < 0.2 or not names:
        name = f"w{len(names)}"
        submit(db, name, gpus=8)
        names.append(name)
        return
    with db.session() as s:
        row = repo.get(s, rng.choice(names))
        assert row is not None
        if op < 0.55:
            _place(rng, row)
        elif op < 0.8:
            row.state = rng.choice(MOVES).value
        elif op < 0.88:
            row.state, row.message = W.PENDING.value, "back to Pending"
            row.assignments.clear()
        elif op < 0.94:
            row.deleted_at = repo.utcnow()
        else:
            inner = dict(row.spec.get("spec") or {})
            inner["template"] = None if inner.get("template") else {"image": "trainer:1"}
            row.spec = {**row.spec, "spec": inner}


def test_the_index_the_feed_keeps_equals_a_fresh_relist_and_the_orm_rows(db: Database) -> None:
    rng = random.Random(7)
    edge = EdgeLoop(db, resync_s=1e9, observe_s=0.0)
    edge.begin()
    names: list[str] = []
    checked = 0
    for step in range(160):
        _write(db, rng, names)
        if rng.random() < 0.3:
            edge.sync()
            if step % 4 == 0:
                assert view(edge.index) == view(fresh(db)), step
                checked += 1
    edge.sync()
    want = view(orm_index(db))
    assert view(edge.index) == want
    assert view(fresh(db)) == want
    assert checked >= 5
    # The writes made what the comparison must cover: several stacks, reserved and spread pools, runs, usage.
    ix = edge.index
    assert len([n for n, ids in ix.by_stack.items() if ids]) >= 3 and ix._runs and ix.usage()
    assert any(len(h.stacks) > 1 for h in ix.rows.values())
    assert any(p.reservation_id for h in ix.rows.values() for p in h.pools)
