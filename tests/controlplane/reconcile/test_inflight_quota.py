"""A region's quota is shared by all its pools, and a live report counts only the nodes that exist: the
loop must count what it has placed but not yet asked of the cloud (workloads Placed, their stacks still to
run), or a fresh pass sees the quota free again and places past it (found by the rate benchmark at 1,000
workloads/s: QuotaErrors, whole stacks moved). GCP's mock over HTTP with regional H100 quotas of 8 GPUs a metric."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from controlplane.policy.model import PolicySet
from controlplane.reconcile.controller import Controller, LoopConfig
from controlplane.reconcile.leader import LeaderElector
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.models import WorkloadState
from providers.base import Provider
from tests.controlplane.reconcile.harness import submit
from tests.controlplane.reconcile.test_regional_observing import GCP
from tests.controlplane.reconcile.test_unobserved_failover import NoopEngine

REGION = GCP.healthy[0]


@pytest.fixture
def gcp(mock_gcp: object) -> Iterator[Provider]:
    base = mock_gcp.urls["gcp"]  # type: ignore[attr-defined]
    # GCP counts a3-megagpu's H100s apart from the other H100 types: 8 GPUs of each, one 8-GPU node each.
    for metric in ("NVIDIA_H100_GPUS", "NVIDIA_H100_MEGA_GPUS"):
        got = httpx.post(f"{base}/_mock/quotas", json={"region": REGION, "metric": metric, "limit": 8})
        assert got.status_code < 300, got.text
    p = GCP.make(mock_gcp, [REGION])
    try:
        yield p
    finally:
        p.close()


def _state(db: Database, name: str) -> tuple[str, str]:
    with db.session() as s:
        row = repo.get(s, name)
        assert row is not None
        return row.state, row.message


def test_a_fresh_pass_counts_placed_workloads_against_the_regional_quota(db: Database, gcp: Provider) -> None:
    c = Controller(db, {"gcp": gcp}, NoopEngine(), elector=LeaderElector(db, "r1", ttl_s=60.0, renew_s=5.0),  # type: ignore[arg-type]
                   policies=PolicySet.default,
                   # Every woken pass reads the cloud afresh (its kept capacity is older than the interval).
                   config=LoopConfig(interval_s=1e-9, resync_s=3600, retry_base_s=0.01))
    c.elector.step()
    c.tick()                        # the term's interval pass: woken passes may place from now on
    submit(db, "a", gpus=8)
    submit(db, "b", gpus=8)
    c.woken_tick()                  # places a and b (the 16 GPUs the quotas allow) and runs no stack: no node exists yet
    assert [_state(db, n)[0] for n in ("a", "b")] == [WorkloadState.PLACED.value] * 2
    assert gcp.capacity().quotas, "the mock reports the regional quota"
    assert all(q.used == 0 for q in gcp.capacity().quotas if q.region == REGION), "no node asked of the cloud yet"

    submit(db, "c", gpus=8)
    c.woken_tick()                  # a fresh read: the cloud still says none of it used
    state, message = _state(db, "c")
    assert state == WorkloadState.PENDING.value, f"c placed past the quota: {message}"
    assert "quota" in message, message
