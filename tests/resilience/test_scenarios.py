"""The resilience scenarios against the four mock clouds, the service in a subprocess with its default
loop settings. Outcomes only: every workload Running, none lost, no duplicate, no orphan."""

from __future__ import annotations

import pytest

from tests.resilience.scenarios import Env, controller_kills, outage_and_faults

pytestmark = pytest.mark.slow


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
