"""A woken pass keeps the last finished snapshot (blocks, learned caps and unobservable places applied) while
those inputs are unchanged (controller._finish): a block, a stock-out or a place gone unobservable between two
woken passes must still count in the next one. Each test places ``a`` in the one pool in a woken pass, changes
one input, and checks that ``b`` is not placed there in the next woken pass (with a stale finished snapshot
it would be: the pool has room for both)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from controlplane.placement.snapshot import FleetSnapshot
from controlplane.policy.model import PolicySet
from controlplane.reconcile import capacity_estimates
from controlplane.reconcile.controller import Controller, LoopConfig
from controlplane.reconcile.leader import LeaderElector
from controlplane.reconcile.sharing import pool_key_text
from controlplane.store import work_leases
from controlplane.store.db import Database
from providers.catalog import default_catalog
from providers.catalog.model import CapacityType
from providers.model import CapacityPool, CapacityReport, HealthStatus, ProviderHealth
from tests.controlplane.reconcile.fakes import FakeCloud, FakeEngine, FakeProvider
from tests.controlplane.reconcile.harness import states, submit

POOL = ("aws", "us-east-1a", "p5.48xlarge", CapacityType.ON_DEMAND.value, "")


def _snapshot() -> Callable[[], FleetSnapshot]:
    pool = CapacityPool("aws", "us-east-1", "us-east-1a", "p5.48xlarge", CapacityType.ON_DEMAND, 8,
                        capacity_known=True)
    report = CapacityReport("aws", (pool,), (), datetime.now(UTC))
    snap = FleetSnapshot.from_reports(default_catalog(), [report],
                                      {"aws": ProviderHealth("aws", "fake://aws", HealthStatus.OK, 1.0)})
    return lambda: snap   # the same raw snapshot every read, as a cloud whose capacity did not move


def _controller(db: Database) -> Controller:
    cloud = FakeCloud()
    elector = LeaderElector(db, "r1", ttl_s=15.0, renew_s=5.0)
    cfg = LoopConfig(interval_s=900.0, resync_s=3600, retry_base_s=0.01)   # every pass below is woken
    c = Controller(db, {"aws": FakeProvider("aws", cloud)}, FakeEngine(cloud), elector=elector,
                   policies=PolicySet.default, config=cfg, snapshot=_snapshot())   # the real placer
    c.elector.step()
    c.tick()
    submit(db, "a", gpus=8)
    c.woken_tick()
    assert states(db)["a"] == "Placed"
    return c


def _b_after(db: Database, c: Controller) -> str:
    submit(db, "b", gpus=8)
    c.woken_tick()
    return states(db)["b"]


def test_the_pool_has_room_for_both_when_nothing_changes(db):
    """The control: without a change, the kept snapshot places b beside a (so the tests below test the change)."""
    c = _controller(db)
    assert _b_after(db, c) == "Placed"


def test_a_block_another_replica_stored_between_woken_passes_counts_in_the_next(db):
    c = _controller(db)
    work_leases.block(db, [pool_key_text(POOL)], ttl_s=600)   # in the store only, as another replica's
    assert _b_after(db, c) == "Pending"


def test_a_stock_out_learned_between_woken_passes_caps_the_next(db):
    c = _controller(db)
    with db.session() as s:   # the pool ran out holding a's node: capped at 1, none free
        capacity_estimates.record_stock_out(s, {POOL: 1})
    assert _b_after(db, c) == "Pending"


def test_a_place_unobservable_past_the_bound_between_woken_passes_is_left_out_of_the_next(db):
    c = _controller(db)
    since = c.unseen._note(("aws", "us-east-1"))
    c.unseen._since[("aws", "us-east-1")] = type(since)(since.at - c.cfg.short_bound_s - 1, since.wall)
    assert _b_after(db, c) == "Pending"
