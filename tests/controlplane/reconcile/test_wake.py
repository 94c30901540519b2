"""Wake on submit (controlplane/reconcile/wake.py): a committed submit pokes the loop, which places it in a
woken pass long before its interval; pokes coalesce; a poke to no controller neither fails nor blocks; a
woken pass places on the capacity the last interval pass read, less what was placed on it since, without
asking the clouds again."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from controlplane.placement.snapshot import FleetSnapshot
from controlplane.policy.model import PolicySet
from controlplane.reconcile import placing, wake
from controlplane.reconcile.controller import Controller, LoopConfig
from controlplane.reconcile.leader import LeaderElector
from controlplane.reconcile.metrics import LoopMetrics
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from providers.catalog import default_catalog
from providers.catalog.model import CapacityType
from providers.model import CapacityPool, CapacityReport, HealthStatus, ProviderHealth
from tests.controlplane.reconcile.fakes import FakeCloud, FakeEngine, FakePlacer, FakeProvider, FakeResult
from tests.controlplane.reconcile.harness import states, submit

INTERVAL_S = 900.0         # far longer than any bound below: a placement before it is a woken pass's
BOUND_S = 300.0            # generous: a loaded machine may take long, never the interval


@pytest.fixture
def sock_path() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="awt-")     # short: a unix socket path has ~100 bytes
    yield str(Path(d) / "w.sock")
    shutil.rmtree(d, ignore_errors=True)


def _until(cond: Callable[[], bool], bound_s: float = BOUND_S) -> bool:
    end = time.monotonic() + bound_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


class CountingProvider(FakeProvider):
    """Counts the loop's health and capacity calls (a woken pass makes neither)."""

    def __init__(self, name: str, cloud: FakeCloud) -> None:
        super().__init__(name, cloud)
        self.health_calls = 0
        self.capacity_calls = 0

    def health(self) -> ProviderHealth:
        self.health_calls += 1
        return super().health()

    def capacity(self) -> CapacityReport:
        self.capacity_calls += 1
        return super().capacity()


def _controller(db: Database, path: str | None, *, placer: Any = None, interval_s: float = INTERVAL_S,
                snapshot: Callable[[], FleetSnapshot | None] | None = None,
                provider: FakeProvider | None = None) -> Controller:
    cloud = FakeCloud()
    elector = LeaderElector(db, "r1", ttl_s=15.0, renew_s=5.0)
    cfg = LoopConfig(interval_s=interval_s, resync_s=3600, retry_base_s=0.01, wake_socket=path)
    return Controller(db, {"aws": provider or FakeProvider("aws", cloud)}, FakeEngine(cloud), elector=elector,
                      policies=PolicySet.default, config=cfg, place=placer or FakePlacer(),
                      snapshot=snapshot or (lambda: None))


def _placed(db: Database, name: str) -> bool:
    return states(db).get(name) not in (None, "Pending")


def test_a_submit_wakes_the_loop_and_is_placed_before_the_interval(db, sock_path):
    """Fails before the wake (SQLite): nothing woke the loop, the workload waited for the 900 s interval."""
    submit(db, "first")
    c = _controller(db, sock_path)
    c.elector.step()         # leads from the first pass (else the first pass it leads is an interval away)
    c.start()
    assert _until(lambda: _placed(db, "first")), "the first interval pass did not place"
    ticks = c.metrics.ticks._value.get()
    submit(db, "second")
    wake.poke(sock_path)
    assert _until(lambda: _placed(db, "second")), f"not placed within {BOUND_S} s of its submit"
    assert c.metrics.ticks._value.get() == ticks, "placed by an interval pass, not a woken one"
    assert c.woken_passes >= 1


def test_leadership_gained_after_the_first_pass_wakes_the_loop(db, sock_path):
    """The first pass ran while another replica led; when the lease passes to this one, its first pass as
    leader runs then, not an interval (900 s) later. Fails before: the loop slept out the interval."""
    other = LeaderElector(db, "r0", ttl_s=1.5, renew_s=0.5)
    assert other.step() and other.is_leader           # holds the lease, never renews it: it expires in 1.5 s
    submit(db, "waiting")
    c = _controller(db, sock_path)
    c.elector.renew_s = 0.5                          # tries for the lease every 0.5 s
    c.start()
    try:
        assert _until(lambda: c.elector.is_leader), "the lease did not pass to r1"
        assert _until(lambda: _placed(db, "waiting")), f"no pass as leader within {BOUND_S} s of leading"
    finally:
        c.stop()


def test_pokes_coalesce_into_few_woken_passes(db, sock_path):
    c = _controller(db, sock_path)
    c.elector.step()
    c.start()
    assert _until(lambda: c.metrics.ticks._value.get() >= 1)
    for i in range(40):
        submit(db, f"w{i}")
    for _ in range(40):
        wake.poke(sock_path)
    assert _until(lambda: all(_placed(db, f"w{i}") for i in range(40)))
    # the ticks counter counts a pass when it starts: the first may still be running (and may have placed
    # all 40), so the pokes' pass can come after the last placement
    assert _until(lambda: c.woken_passes >= 1)
    assert c.woken_passes < 40


def test_the_listener_drains_a_burst_into_one_wake(sock_path):
    release, first = threading.Event(), threading.Event()
    calls = 0

    def woke() -> None:
        nonlocal calls
        calls += 1
        first.set()
        release.wait(BOUND_S)     # the loop busy in a pass: pokes queue meanwhile

    listener = wake.WakeListener(sock_path, woke)
    listener.start()
    try:
        wake.poke(sock_path)
        assert first.wait(BOUND_S)
        for _ in range(100):
            wake.poke(sock_path)
        release.set()
        # Those the socket queued (the kernel's queue may be short: a poke to a full one is dropped, and the
        # queued ones wake the loop all the same) are drained in one go: one wake for the burst.
        assert _until(lambda: listener.wakes == 2)
        time.sleep(0.3)
        assert listener.wakes == 2 and calls == 2 and 2 < listener.received <= 101
    finally:
        release.set()
        listener.stop()
    assert not Path(sock_path).exists()


def test_a_poke_to_no_controller_neither_fails_nor_blocks(sock_path):
    done = threading.Event()

    def pokes() -> None:
        wake.poke(sock_path)                    # nothing bound there
        wake.poke(str(Path(sock_path).parent / "gone" / "w.sock"))
        wake.poke(None)
        done.set()

    threading.Thread(target=pokes, daemon=True).start()
    assert done.wait(BOUND_S)


def test_a_poke_to_a_controller_that_reads_nothing_does_not_block(sock_path):
    """A controller stalled (its socket's buffer full): the sends fail at once and are dropped."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock_path)
    done = threading.Event()

    def pokes() -> None:
        for _ in range(20_000):    # far more than a datagram queue holds
            wake.poke(sock_path)
        done.set()

    try:
        threading.Thread(target=pokes, daemon=True).start()
        assert done.wait(BOUND_S), "a poke blocked on a full socket"
    finally:
        s.close()


def _snapshot(nodes: int, calls: list[int]) -> Callable[[], FleetSnapshot]:
    def snap() -> FleetSnapshot:
        calls.append(1)
        pool = CapacityPool("aws", "us-east-1", "us-east-1a", "p5.48xlarge", CapacityType.ON_DEMAND, nodes)
        report = CapacityReport("aws", (pool,), (), datetime.now(UTC))
        return FleetSnapshot.from_reports(default_catalog(), [report],
                                          {"aws": ProviderHealth("aws", "fake://aws", HealthStatus.OK, 1.0)})
    return snap


class BoundedPlacer(FakePlacer):
    """FakePlacer within the snapshot's free nodes of its one pool (subtracting what it places in a call)."""

    def __call__(self, workloads: Any, snapshot: Any, policies: Any) -> FakeResult:
        free = sum(p.available_nodes for p in snapshot.pools)
        out = super().__call__(workloads, snapshot, policies)
        for d in out.decisions:
            need = sum(a.nodes for a in d.assignments)
            if d.placed and need > free:
                d.placed, d.assignments, d.reasons = False, [], ["no capacity"]
            free -= need if d.placed else 0
        return out


def test_woken_passes_spend_the_kept_capacity_once_and_ask_no_cloud(db):
    calls: list[int] = []
    provider = CountingProvider("aws", FakeCloud())
    c = _controller(db, None, placer=BoundedPlacer(), snapshot=_snapshot(3, calls), provider=provider)
    c.elector.step()
    submit(db, "a", gpus=8)
    c.tick()                                   # the interval pass: reads capacity (3 nodes), places a
    assert _placed(db, "a") and len(calls) == 1
    health = provider.health_calls
    for name in ("b", "c", "d"):
        submit(db, name, gpus=8)
        c.woken_tick()
    assert [_placed(db, n) for n in "abcd"] == [True, True, True, False]   # d: the 3 nodes are spent
    assert len(calls) == 1 and provider.health_calls == health and c.woken_passes == 3


def test_a_woken_pass_reads_capacity_again_once_the_kept_one_is_older_than_the_interval(db):
    calls: list[int] = []
    c = _controller(db, None, placer=BoundedPlacer(), snapshot=_snapshot(1, calls), interval_s=0.01)
    c.elector.step()
    submit(db, "a", gpus=8)
    c.tick()
    assert len(calls) == 1
    time.sleep(0.05)
    submit(db, "b", gpus=8)
    c.woken_tick()
    assert len(calls) == 2 and _placed(db, "b")   # a fresh read: the 1 node free again in this fake


def test_a_woken_pass_places_nothing_before_an_interval_pass_of_this_term(db):
    c = _controller(db, None)
    c.elector.step()
    submit(db, "a")
    c.woken_tick()                             # no interval pass yet: stale locks not released, epoch unchecked
    assert not _placed(db, "a") and c.woken_passes == 0
    c.tick()
    assert _placed(db, "a")


def test_on_postgresql_a_stream_of_commits_runs_placing_passes_not_full_ones(db):
    """Every commit notifies (the loop's own placements too). Before, each notification ran a full pass, so
    a stream of submits kept full passes running back to back, every cloud probed and read each time: here the
    interval is 900 s, so any pass beyond the first would be one a notification ran."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite has no change notification (the submit's poke is tested above)")
    provider = CountingProvider("aws", FakeCloud())
    submit(db, "first")
    c = _controller(db, None, provider=provider)
    c.elector.step()
    c.start()
    assert _until(lambda: _placed(db, "first"))
    ticks, health = c.metrics.ticks._value.get(), provider.health_calls
    for i in range(10):
        submit(db, f"s{i}")
        time.sleep(0.1)
    assert _until(lambda: all(_placed(db, f"s{i}") for i in range(10)))
    assert c.metrics.ticks._value.get() == ticks and provider.health_calls == health
    assert c.woken_passes >= 1


def test_a_burst_larger_than_a_batch_is_placed_by_the_passes_that_follow_at_once(db, monkeypatch):
    """A pass claims at most a batch of Pending workloads; when it filled one and placed some, the rest are
    placed by woken passes at once, not one batch per interval pass. Fails before (the rest waited for the
    900 s interval)."""
    monkeypatch.setattr(placing, "PLACE_BATCH", 2)
    for i in range(5):
        submit(db, f"b{i}")
    c = _controller(db, None)
    c.elector.step()
    c.start()
    try:
        assert _until(lambda: all(_placed(db, f"b{i}") for i in range(5))), f"not all placed within {BOUND_S} s"
        assert c.metrics.ticks._value.get() == 1, "placed by interval passes, not by the passes that follow"
        assert c.woken_passes >= 2
    finally:
        c.stop()


def test_a_full_batch_none_of_which_fits_asks_for_no_further_pass(db):
    """Nothing placed: they wait for capacity (backing off); another pass at once would only spin. The same
    full batch placed asks for one."""
    def one_pass() -> list[int]:
        asked: list[int] = []
        placing.place_pending(db, snapshot=lambda: None, policies=lambda: None, place=FakePlacer(),
                              fenced=lambda: True, actor="controller:t", metrics=LoopMetrics(), ttl_s=60, batch=2,
                              more=lambda: asked.append(1))
        return asked

    submit(db, "nope0")
    submit(db, "nope1")                  # FakePlacer places none whose name starts with "nope"
    assert one_pass() == []
    with db.session() as s:
        for name in ("nope0", "nope1"):
            row = repo.get(s, name)
            assert row is not None
            repo.request_delete(s, row)  # out of the way: Pending no more
    submit(db, "ok0")
    submit(db, "ok1")
    assert one_pass() == [1]
