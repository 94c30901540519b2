"""Three `awan serve` replicas on one PostgreSQL share the stack runs against all five mock clouds (creates
slowed to a second or more, so runs are in the air when the kill comes). One replica is SIGKILLed while it
holds stack leases: the others take its stacks over after the lease expiry, every workload runs with
exactly its nodes (nothing lost, nothing created twice), and every mock's request log shows that no two
replicas ever changed one stack (one provider's region) at the same time."""

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
from mockclouds.launcher import CLOUDS, MockClouds
from tests.controlplane.store.dbfixture import PgSchema
from tests.resilience import harness as h
from tests.resilience.replicas import Kills, ServiceGroup, check_logs, writes

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(2400)]
WORKLOADS = 36
# The calls that create a stack's machines or pools, slowed so that a stack run lasts long enough for an
# overlap to show: a replica killed mid-call leaves its call in the air, as a real cloud would.
SLOW_CREATES = {"aws": ("RunInstances",), "gcp": ("instances.insert", "nodes.create", "queuedResources.create"),
                "azure": ("VirtualMachines_CreateOrUpdate", "VirtualMachineScaleSets_CreateOrUpdate"),
                "oci": ("LaunchInstance", "CreateClusterNetwork"), "coreweave": ("create nodepools",)}


def manifest(i: int) -> str:
    return (f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: k-{i:03d}, team: research}}\n"
            f"spec: {{kind: inference, gpus: {{model: H100, count: 8, perNode: 8}}, "
            f"location: {{regions: ['{CLOUDS[i % len(CLOUDS)]}:*']}}}}\n")


@pytest.fixture
def clouds() -> Iterator[MockClouds]:
    from mockclouds.aws.models import QUOTA_NAMES

    with MockClouds() as mc:
        st = mc.backend("aws").state
        with st.lock:   # the default quotas allow a few p5 a region; the test is about replicas, not quotas
            st.quota_limits.update({(r, q): 1e6 for (p, r) in st.catalog.regions if p == "aws" for q in QUOTA_NAMES})
        for cloud, ops in SLOW_CREATES.items():
            url = mc.urls[cloud]
            httpx.post(f"{url}/_mock/capacity", json={"free": 1000}, timeout=30).raise_for_status()
            for op in ops:
                httpx.post(f"{url}/_mock/faults", json={"kind": "latency", "operation": op, "latency_ms": 1200},
                           timeout=10).raise_for_status()
        httpx.post(f"{mc.urls['aws']}/_mock/faults", json={"kind": "latency", "operation": "DescribeInstances",
                                                           "latency_ms": 100}, timeout=10).raise_for_status()
        yield mc


def test_sigkilled_replica_hands_its_stacks_over_nothing_twice_nothing_lost(clouds: MockClouds, tmp_path: Path) -> None:
    schema = PgSchema().create()
    group: ServiceGroup | None = None
    try:
        member, _admin = h.prepare_db(schema.url)
        group = ServiceGroup(clouds, schema.url, tmp_path, Kills(1), replicas=3).start()
        names = [f"k-{i:03d}" for i in range(WORKLOADS)]
        h.submit_all(group.url, member, [manifest(i) for i in range(WORKLOADS)])

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
            killed_at = time.monotonic()
            group.procs[victim].kill()      # and not restarted: the others must take its stacks over

            h.wait_all(schema.url, "Running", names, timeout_s=900)
            verdict = h.check(schema.url, clouds, names)
            assert verdict.ok, str(verdict)
            assigned, live = h.nodes_assigned_and_live(schema.url, clouds)
            assert assigned == live == WORKLOADS
            with db.session() as s:
                provisioning = [e.subject for e in s.query(AuditEvent).filter(AuditEvent.action == "provisioning")]
                runners = {e.actor for e in s.query(AuditEvent).filter(AuditEvent.action == "stack-applied")}
        finally:
            db.dispose()
        assert sorted(provisioning) == names                 # each workload moved to Provisioning once
        assert len(runners) >= 2                              # the stacks were run by more than one replica

        logs = check_logs(clouds)
        # Every cloud's log knows who changed it (else it proves nothing), and no two replicas overlapped.
        assert all(logs.writes[c] > 0 for c in CLOUDS), logs.writes
        assert not any(logs.unnamed.values()), logs.unnamed
        assert {c: p for c, p in logs.overlaps.items() if p} == {}
        callers = {c.caller for cloud in CLOUDS for c in writes(clouds, cloud)}
        assert len({c.split("-")[0] for c in callers}) >= 2, callers
        # The victim's stacks were finished by the others after the kill.
        victim_caller = f"{victim}-i1"
        after = {f"awan-{cloud}-{c.region}".lower() for cloud in CLOUDS for c in writes(clouds, cloud)
                 if c.start > killed_at and c.caller != victim_caller}
        assert {s.lower() for s in victim_stacks} & after, \
            f"the victim's stacks {victim_stacks} were not taken over: {sorted(after)}"
        assert not [c for cloud in CLOUDS for c in writes(clouds, cloud)
                    if c.caller == victim_caller and c.start > killed_at]
    finally:
        if group is not None:
            group.stop()
        schema.drop()
