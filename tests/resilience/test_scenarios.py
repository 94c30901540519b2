"""The resilience scenarios against the five mock clouds, the service in a subprocess with its default
loop settings. Outcomes only: every workload Running, none lost, no duplicate, no orphan."""

from __future__ import annotations

import pytest

from tests.resilience.scenarios import (
    PROVIDER_REGIONS,
    Env,
    controller_kills,
    gang_resubmit_cycles,
    outage_and_faults,
    revoke_and_stock_out_each,
)

# Real services and five mock clouds per scenario: a loaded machine takes minutes; bound them generously.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def test_outage_throttling_and_revocation_lose_nothing(tmp_path, mockclouds):
    fig = outage_and_faults(Env(mockclouds, tmp_path), workloads=10)
    assert [str(v) for v in fig.verdicts if not v.ok] == []
    assert fig.values["workloads moved by the outage"] >= 1
    assert fig.values["throttled calls"] > 0            # the faults were really hit
    assert fig.values["nodes revoked or preempted"] >= 1


def test_sigkilled_controller_converges_exactly_once(tmp_path, mockclouds):
    fig = controller_kills(Env(mockclouds, tmp_path), workloads=40, kills=6, seed=7)
    assert fig.values["controller kills survived"] == 6
    assert [str(v) for v in fig.verdicts if not v.ok] == []


def test_gangs_deleted_and_resubmitted_on_every_provider_come_back(tmp_path, mockclouds):
    """Issue 13, item 2 (and 3): delete and resubmit of gangs, their size changing, on every cloud."""
    fig = gang_resubmit_cycles(Env(mockclouds, tmp_path), cycles=2)
    assert [str(v) for v in fig.verdicts if not v.ok] == []
    assert fig.values["gang delete/resubmit cycles (every provider)"] == 2 * len(PROVIDER_REGIONS)


def test_revocation_plus_stock_out_fails_over_on_every_provider(tmp_path, mockclouds):
    """Issue 13, item 4: CoreWeave never failed over after a revocation with its zone emptied."""
    fig = revoke_and_stock_out_each(Env(mockclouds, tmp_path, {"AWAN_POOL_SHORT_BOUND_S": "20"}))
    assert [str(v) for v in fig.verdicts if not v.ok] == []
    assert {k for k in fig.values if k.startswith("failover after")} == {
        f"failover after revocation + stock-out, {p} (s)" for p in PROVIDER_REGIONS}
