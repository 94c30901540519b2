"""Three `awan serve` replicas on one PostgreSQL share the stack runs against the AWS mock (1.5 s a create,
so runs are in the air when the kill comes). One replica is SIGKILLed while it holds stack leases: the
others take its stacks over after the lease expiry, every workload runs with exactly its nodes (nothing
lost, nothing created twice), and the mock's request log shows that no two replicas ever changed one stack
(one region: one stack) at the same time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from controlplane.store import lease
from controlplane.store import work_leases as wl
from controlplane.store.db import Database
from controlplane.store.models import AuditEvent
from mockclouds.launcher import MockClouds
from mockclouds.requestlog import Call
from tests.controlplane.store.dbfixture import PgSchema
from tests.resilience import harness as h

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-2", "ca-central-1", "ap-northeast-1")
WRITES = ("Run", "Create", "Terminate", "Delete", "Modify", "Allocate", "Associate", "Purchase")


def manifest(i: int) -> str:
    return (f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: k-{i:03d}, team: research}}\n"
            f"spec: {{kind: inference, gpus: {{model: H100, count: 8, perNode: 8}}, "
            f"location: {{regions: ['aws:{REGIONS[i % len(REGIONS)]}']}}}}\n")


@pytest.fixture
def clouds() -> Iterator[MockClouds]:
    from mockclouds.aws.models import QUOTA_NAMES

    with MockClouds(clouds=("aws",)) as mc:
        httpx.post(f"{mc.urls['aws']}/_mock/capacity", json={"free": 1000}, timeout=30).raise_for_status()
        st = mc.backend("aws").state
        with st.lock:   # the default quotas allow a few p5 a region; the test is about replicas, not quotas
            st.quota_limits.update({(r, q): 1e6 for (p, r) in st.catalog.regions if p == "aws" for q in QUOTA_NAMES})
        for op, ms in (("RunInstances", 1500), ("DescribeInstances", 100)):
            httpx.post(f"{mc.urls['aws']}/_mock/faults", json={"kind": "latency", "operation": op, "latency_ms": ms},
                       timeout=10).raise_for_status()
        yield mc


def overlapping_writes(calls: list[Call]) -> list[tuple[Call, Call]]:
    """Changing calls in one region (one stack) by two different replicas whose times intersect."""
    writes = sorted((c for c in calls if c.caller and c.operation.startswith(WRITES)), key=lambda c: c.start)
    out = []
    for i, a in enumerate(writes):
        for b in writes[i + 1:]:
            if b.start >= a.end:
                break
            if b.region == a.region and b.caller != a.caller:
                out.append((a, b))
    return out


def test_sigkilled_replica_hands_its_stacks_over_nothing_twice_nothing_lost(clouds: MockClouds, tmp_path: Path) -> None:
    schema = PgSchema().create()
    procs: list[h.ServiceProc] = []
    try:
        member, _admin = h.prepare_db(schema.url)
        config = clouds.write_config(tmp_path / "awan.yaml")
        env = {"AWAN_STACK_WORKERS": "2", "AWAN_PROVIDER_CONCURRENCY": "2", "AWAN_WORK_LEASE_TTL_S": "4",
               "AWAN_LEASE_TTL_S": "4", "AWAN_LEASE_RENEW_S": "1", "AWAN_RECONCILE_INTERVAL_S": "0.5",
               "AWAN_LOG_LEVEL": "WARNING"}
        procs = [h.ServiceProc(schema.url, config, tmp_path / f"r{i}.log", replica=f"r{i}",
                               env={**env, "AWS_SDK_UA_APP_ID": f"r{i}"}) for i in range(3)]
        for p in procs:
            p.start(wait=False)
        for p in procs:
            p.wait_ready()
        names = [f"k-{i:03d}" for i in range(36)]
        h.submit_all(procs[0].url, member, [manifest(i) for i in range(36)])

        db = Database.from_url(schema.url)
        try:
            deadline = time.monotonic() + 600
            victim = None
            while victim is None:   # a replica holding stack leases; not the leader when another holds some
                assert time.monotonic() < deadline, "no replica ever held a stack lease"
                held = wl.held(db, wl.STACK)
                leader = (lease.holder(db, "reconciler") or ("", 0))[0]
                holders = sorted({hd for hd, _e in held.values()}, key=lambda r: (r == leader, r))
                victim = holders[0] if holders else None
                time.sleep(0.05)
            victim_stacks = sorted(k for k, (hd, _e) in held.items() if hd == victim)
            proc = next(p for p in procs if p.replica == victim)
            killed_at = time.monotonic()
            proc.kill()

            h.wait_all(schema.url, "Running", names, timeout_s=900)
            verdict = h.check(schema.url, clouds, names)
            assert verdict.ok, str(verdict)
            assigned, live = h.nodes_assigned_and_live(schema.url, clouds)
            assert assigned == live == 36
            with db.session() as s:
                provisioning = [e.subject for e in s.query(AuditEvent).filter(AuditEvent.action == "provisioning")]
                runners = {e.actor for e in s.query(AuditEvent).filter(AuditEvent.action == "stack-applied")}
        finally:
            db.dispose()
        assert sorted(provisioning) == names                 # each workload moved to Provisioning once
        assert len(runners) >= 2                              # the stacks were run by more than one replica

        calls = clouds.backend("aws").requests.entries()
        creators = {c.caller for c in calls if c.operation == "RunInstances"}
        assert "" not in creators and len(creators) >= 2, creators   # the log knows who called (else no proof)
        assert overlapping_writes(calls) == []
        # The victim's stacks were finished by the others after the kill.
        regions = {s.removeprefix("awan-aws-") for s in victim_stacks}
        after = {c.region for c in calls if c.start > killed_at and c.caller not in ("", victim)
                 and c.operation.startswith(WRITES)}
        assert regions & after, f"the victim's stacks {victim_stacks} were not taken over: {sorted(after)}"
        assert not [c for c in calls if c.caller == victim and c.start > killed_at]
    finally:
        for p in procs:
            p.stop()
        schema.drop()
