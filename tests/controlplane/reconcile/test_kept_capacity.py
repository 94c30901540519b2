"""Interval passes keep the clouds' capacity read for ``capacity_keep_s`` (controller._kept_snapshot), less
what was placed on it since: the read is most of a placing pass's CPU under a stream of submits. What must
hold: nothing is placed on capacity already given (the kept read less what was placed since is what a fresh
read less what is Placed would say), and a stock-out, a failover, a health change, a failed read or a new
term seen since is not placed on from the kept read (the clouds are read again)."""

from __future__ import annotations

from datetime import UTC, datetime

from controlplane.policy.model import PolicySet
from controlplane.reconcile import capacity_estimates
from controlplane.reconcile.controller import Controller, LoopConfig
from controlplane.reconcile.leader import LeaderElector
from controlplane.reconcile.sharing import pool_key_text
from controlplane.store import work_leases
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from providers.catalog.model import CapacityType
from providers.model import CapacityPool, CapacityReport, HealthStatus, ProviderHealth
from tests.controlplane.reconcile.fakes import FakeCloud, FakeEngine, FakeProvider
from tests.controlplane.reconcile.harness import states, submit

POOL = ("aws", "us-east-1a", "p5.48xlarge", CapacityType.ON_DEMAND.value, "")


class Cloud(FakeProvider):
    """One pool of ``total`` p5.48xlarge nodes (8 GPUs each), less the nodes the engine created: a cloud's
    live free capacity. Counts its capacity reads."""

    def __init__(self, cloud: FakeCloud, total: int) -> None:
        super().__init__("aws", cloud)
        self.total, self.reads, self.fail = total, 0, False
        self.status = HealthStatus.OK

    def capacity(self) -> CapacityReport:
        self.reads += 1
        if self.fail:
            raise ConnectionError("capacity read failed")
        with self.cloud.lock:
            used = sum(1 for n in self.cloud.nodes.values() if n.provider == "aws")
        pool = CapacityPool("aws", "us-east-1", "us-east-1a", "p5.48xlarge", CapacityType.ON_DEMAND,
                            self.total - used, capacity_known=True)
        return CapacityReport("aws", (pool,), (), datetime.now(UTC))

    def health(self) -> ProviderHealth:
        return ProviderHealth("aws", self.endpoint, self.status, 1.0)


def _loop(db: Database, total: int, keep_s: float = 600.0) -> tuple[Controller, Cloud, FakeCloud]:
    fake = FakeCloud()
    cloud = Cloud(fake, total)
    cfg = LoopConfig(interval_s=900.0, resync_s=3600, retry_base_s=0.01, capacity_keep_s=keep_s)
    c = Controller(db, {"aws": cloud}, FakeEngine(fake), elector=LeaderElector(db, "r1", ttl_s=60.0, renew_s=5.0),
                   policies=PolicySet.default, config=cfg)   # the real placer, the clouds' own capacity
    c.elector.step()
    submit(db, "first", gpus=8)
    _pass(c)                  # the term's first pass: the clouds read, "first" placed (one node)
    assert cloud.reads == 1 and states(db)["first"] != "Pending"
    return c, cloud, fake


def _pass(c: Controller) -> None:
    c.tick()
    c.wait_idle()


def _placed_nodes(db: Database) -> dict[str, int]:
    with db.session() as s:
        return {w.name: sum(a.nodes for a in w.assignments) for w in repo.list_(s) if w.assignments}


def test_interval_passes_place_on_the_kept_read_less_what_was_placed_since_and_never_past_it(db: Database) -> None:
    c, cloud, fake = _loop(db, total=4)
    submit(db, "a", gpus=8)
    _pass(c)                                  # a placed, its stack run: the cloud has one node fewer now
    assert states(db)["a"] != "Pending" and len(fake.nodes) == 2
    for name in ("b", "c", "d", "e"):
        submit(db, name, gpus=8)
    _pass(c)
    _pass(c)
    assert cloud.reads == 1, "kept: the clouds were not read again"
    got = states(db)
    assert sorted(n for n in "abcde" if got[n] != "Pending") == ["a", "b", "c"], got   # four nodes, four workloads
    assert sum(_placed_nodes(db).values()) == 4 and len(fake.nodes) == 4 and len(fake.creates) == 4


def test_the_control_without_keeping_reads_the_clouds_every_interval_pass(db: Database) -> None:
    c, cloud, _ = _loop(db, total=3, keep_s=0.0)
    for name in ("a", "b"):
        submit(db, name, gpus=8)
        _pass(c)
    assert cloud.reads == 3


def test_a_stock_out_stored_since_the_read_is_not_placed_on_from_it(db: Database) -> None:
    c, cloud, _ = _loop(db, total=4)
    submit(db, "a", gpus=8)
    _pass(c)
    with db.session() as s:   # the pool ran out holding a's node: capped at 1, none free (the kept read says 3)
        capacity_estimates.record_stock_out(s, {POOL: 1})
    submit(db, "b", gpus=8)
    _pass(c)
    assert states(db)["b"] == "Pending"


def test_a_block_stored_since_the_read_is_not_placed_on_from_it(db: Database) -> None:
    c, _, _ = _loop(db, total=4)
    work_leases.block(db, [pool_key_text(POOL)], ttl_s=600)   # in the store only, as another replica's
    submit(db, "b", gpus=8)
    _pass(c)
    assert states(db)["b"] == "Pending"


def test_failover_moving_workloads_reads_the_clouds_again(db: Database) -> None:
    c, cloud, _ = _loop(db, total=4)
    c._moved(["research/x"], "capacity")      # a stock-out or a refusal sent workloads back to Pending
    submit(db, "a", gpus=8)
    _pass(c)
    assert cloud.reads == 2


def test_a_health_change_reads_the_clouds_again(db: Database) -> None:
    c, cloud, _ = _loop(db, total=4)
    submit(db, "a", gpus=8)
    _pass(c)
    assert cloud.reads == 1
    cloud.status = HealthStatus.DEGRADED
    submit(db, "b", gpus=8)
    _pass(c)
    assert cloud.reads == 2
    submit(db, "c", gpus=8)
    _pass(c)
    assert cloud.reads == 2, "the same health again: kept"


def test_a_failed_read_is_not_kept(db: Database) -> None:
    c, cloud, _ = _loop(db, total=4)
    cloud.fail = True
    c._taken = None
    submit(db, "a", gpus=8)
    _pass(c)
    assert states(db)["a"] == "Pending"
    cloud.fail = False
    c.queue.forget("place:research/a")
    _pass(c)
    assert cloud.reads == 3, "the read that left the provider out was read again the next pass"
    assert states(db)["a"] != "Pending"
    submit(db, "b", gpus=8)
    _pass(c)
    assert states(db)["b"] != "Pending" and cloud.reads == 3


def test_a_new_term_reads_the_clouds_again(db: Database) -> None:
    c, cloud, _ = _loop(db, total=4)
    c._led_epoch = None                       # as after losing and winning the lease back
    submit(db, "a", gpus=8)
    _pass(c)
    assert cloud.reads == 2


def test_placed_workloads_count_when_the_clouds_are_read_again(db: Database) -> None:
    """A read after a keep ends counts what is Placed and not yet asked of the cloud (not_yet_asked) for
    quotas, and the stacks that ran since in the cloud's own answer: still never past the pool."""
    c, cloud, fake = _loop(db, total=3)
    for name in ("a", "b", "c"):
        submit(db, name, gpus=8)
    _pass(c)
    c._taken = None
    for q in ("a", "b", "c"):
        c.queue.forget(f"place:research/{q}")
    _pass(c)
    got = states(db)
    assert cloud.reads == 2
    assert sum(1 for n in "abc" if got[n] != "Pending") == 2 and len(fake.creates) == 3, got
