"""Observation region by region (controlplane/reconcile/observing: scopes) against the mock clouds over HTTP:
a fault in one region of a cloud leaves that region "unknown" (its workloads held, not marked lost) while
the cloud's other region is observed and its workloads transition; on PostgreSQL the replicas split a
cloud's regions (each region listed by one replica a round)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from controlplane.reconcile import observing
from controlplane.reconcile.fleet import Observation
from controlplane.reconcile.metrics import LoopMetrics
from controlplane.reconcile.sharing import WorkShare
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from controlplane.store.models import Assignment, Observed, Stack, WorkloadState
from infra.spec import stack_name
from providers.aws.adapter import AWSProvider
from providers.base import Provider
from providers.catalog import CapacityType
from providers.gcp.adapter import GCPProvider
from providers.model import Node
from tests.controlplane.reconcile.fakes import FakeCloud, FakeProvider
from tests.controlplane.reconcile.harness import submit
from tests.controlplane.store.dbfixture import PgSchema

PROVISIONING, RUNNING = WorkloadState.PROVISIONING.value, WorkloadState.RUNNING.value


@dataclass(frozen=True)
class Cloud:
    name: str
    fixture: str
    healthy: tuple[str, str]          # (region, zone)
    faulted: tuple[str, str]
    instance_type: str
    make: Callable[[Any, list[str]], Provider]


def _gcp(mc: Any, regions: list[str]) -> Provider:
    return GCPProvider(mc.config().providers["gcp"].model_copy(update={"regions": regions, "max_attempts": 1}))


def _aws(mc: Any, regions: list[str]) -> Provider:
    cfg = mc.config().providers["aws"].model_copy(update={"regions": regions, "max_attempts": 1})
    return AWSProvider(cfg, sleep=lambda _s: None, backoff_base=0.01)


GCP = Cloud("gcp", "mock_gcp", ("us-central1", "us-central1-a"), ("europe-west4", "europe-west4-b"),
            "a3-highgpu-8g", _gcp)
AWS = Cloud("aws", "mock_aws", ("us-east-1", "us-east-1a"), ("us-west-2", "us-west-2a"), "p5.48xlarge", _aws)


def _workload(db: Database, cloud: Cloud, name: str, where: tuple[str, str], state: str) -> str:
    submit(db, name, gpus=8)
    with db.session() as s:
        row = repo.get(s, name)
        assert row is not None
        row.state = state
        row.assignments.append(Assignment(pool=f"{name}-p", provider=cloud.name, region=where[0], zone=where[1],
                                          instance_type=cloud.instance_type, nodes=1, gpus=8, gpu_model="H100",
                                          capacity_type=CapacityType.ON_DEMAND.value))
        return row.key


def _node_for(p: Provider, cloud: Cloud, key: str, name: str, where: tuple[str, str]) -> None:
    from providers.model import NodeRequest
    p.create_nodes(NodeRequest(pool=f"{name}-p", workload=key, region=where[0], zone=where[1],
                               instance_type=cloud.instance_type, capacity_type=CapacityType.ON_DEMAND, count=1,
                               idempotency_key=f"{name}-k"))


def _states(db: Database) -> dict[str, str]:
    with db.session() as s:
        return {w.name: w.state for w in repo.list_(s)}


def _apply(db: Database, obs: Observation) -> None:
    observing.apply_observation(db, obs, actor="test", fenced=lambda: True, metrics=LoopMetrics())


def _fleet(db: Database, cloud: Cloud, p: Provider) -> None:
    """Three workloads, each with its one node up: one waiting in the healthy region, one waiting and one
    running in the region about to fail."""
    for name, where, state in (("us-wait", cloud.healthy, PROVISIONING), ("eu-wait", cloud.faulted, PROVISIONING),
                               ("eu-run", cloud.faulted, RUNNING)):
        _node_for(p, cloud, _workload(db, cloud, name, where, state), name, where)


def _region_down(mc: Any, cloud: Cloud) -> int:
    got = httpx.post(mc.urls[cloud.name] + "/_mock/faults", json={"kind": "outage", "region": cloud.faulted[0],
                                                                  "retry_after": 0.01})
    return int(got.json()["id"])


@pytest.mark.parametrize("cloud", [GCP, AWS], ids=lambda c: c.name)
def test_a_failed_region_is_unknown_while_the_clouds_other_region_transitions(
        db: Database, cloud: Cloud, request: pytest.FixtureRequest) -> None:
    mc = request.getfixturevalue(cloud.fixture)
    p = cloud.make(mc, [cloud.healthy[0], cloud.faulted[0]])
    try:
        _fleet(db, cloud, p)
        _region_down(mc, cloud)
        obs = observing.observe({cloud.name: p}, LoopMetrics())
        _apply(db, obs)
        # The healthy region's workload runs; the failed region's are held as they were: the one whose node
        # is up but unseen is not moved on, the running one is not marked as having lost its node.
        assert _states(db) == {"us-wait": RUNNING, "eu-wait": PROVISIONING, "eu-run": RUNNING}
        assert obs.observed == {f"{cloud.name}/{cloud.healthy[0]}"}
        assert set(obs.failed) == {f"{cloud.name}/{cloud.faulted[0]}"}
        mc.backend(cloud.name).faults.clear()
        _apply(db, observing.observe({cloud.name: p}, LoopMetrics()))
        assert _states(db) == {"us-wait": RUNNING, "eu-wait": RUNNING, "eu-run": RUNNING}
    finally:
        p.close()


def test_a_stacks_region_outside_the_configuration_is_still_observed(db: Database, mock_gcp: Any) -> None:
    # Nodes in a region the provider is no longer configured for, held by a stack there: observed (the
    # desired state's regions), not read as lost.
    p = GCP.make(mock_gcp, [GCP.healthy[0], GCP.faulted[0]])
    narrowed = GCP.make(mock_gcp, [GCP.healthy[0]])
    try:
        _fleet(db, GCP, p)
        with db.session() as s:
            s.add(Stack(name=stack_name("gcp", GCP.faulted[0])))
        regions = observing.stack_regions(db, ["gcp"])
        assert regions == {"gcp": {GCP.faulted[0]}}
        obs = observing.observe({"gcp": narrowed}, LoopMetrics(), regions)
        assert obs.observed == {"gcp/us-central1", "gcp/europe-west4"}
        _apply(db, obs)
        assert _states(db) == {"us-wait": RUNNING, "eu-wait": RUNNING, "eu-run": RUNNING}
    finally:
        p.close()
        narrowed.close()


# -- two replicas on PostgreSQL ------------------------------------------------------------------------------
@pytest.fixture
def pg_db() -> Iterator[Database]:
    schema = PgSchema().create()
    d = Database.from_url(schema.url)
    upgrade(d.engine)
    try:
        yield d
    finally:
        d.dispose()
        schema.drop()


@pytest.mark.postgres
def test_two_replicas_split_the_regions_and_a_failed_one_is_held(pg_db: Database, mock_gcp: Any) -> None:
    regions = [GCP.healthy[0], GCP.faulted[0]]
    lead = GCP.make(mock_gcp, regions)
    _fleet(pg_db, GCP, lead)
    _region_down(mock_gcp, GCP)
    backend = mock_gcp.backend("gcp")
    backend.requests.clear()
    reps: list[tuple[WorkShare, observing.SharedObserver, Provider]] = []
    for i in range(2):
        share = WorkShare(pg_db, f"r{i}", ttl_s=30.0)
        p = GCP.make(mock_gcp, regions)
        reps.append((share, observing.SharedObserver(pg_db, {"gcp": p}, share, LoopMetrics(), every_s=60.0,
                                                     max_age_s=60.0), p))
    try:
        for share, _, _ in reps:
            share.members()
        assert [share.members(fresh=True) for share, _, _ in reps] == [2, 2]
        start = threading.Barrier(2)
        published: dict[str, set[str]] = {}

        def rounds(share: WorkShare, obs: observing.SharedObserver) -> None:
            got: set[str] = set()
            # Round k of both replicas starts together: a replica slowed by a loaded machine would otherwise
            # find the other already on its second round, taking what is still free (the fair share is per
            # round). A round's backoff is 60 s: the later rounds find nothing free.
            for _ in range(3):
                start.wait(timeout=120)
                got |= obs.round()
            published[share.holder] = got

        threads = [threading.Thread(target=rounds, args=(share, obs)) for share, obs, _ in reps]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        # Each replica took one region (a fair share of two), and each region was listed by one of them:
        # its zones once each (instances.list a zone), as the mock's request log shows.
        assert sorted(len(v) for v in published.values()) == [1, 1], published
        assert set().union(*published.values()) == {"gcp/us-central1", "gcp/europe-west4"}
        with pg_db.session() as s:
            holders = {row.provider: row.holder for row in s.query(Observed)}
        assert sorted(holders.values()) == ["r0", "r1"]
        lists = [c.region for c in backend.requests.entries() if c.operation == "instances.list"]
        zones = {r: sum(1 for z, zr in lead.catalog.zones("gcp").items() if zr == r)  # type: ignore[attr-defined]
                 for r in regions}
        assert lists.count(GCP.healthy[0]) == zones[GCP.healthy[0]]
        assert 1 <= lists.count(GCP.faulted[0]) <= zones[GCP.faulted[0]]   # it stops at the first failing zone
        # The leader applies every replica's answer: the failed region's workloads are held.
        seen = reps[0][1].latest()
        assert seen.observed == {"gcp/us-central1"} and set(seen.failed) == {"gcp/europe-west4"}
        _apply(pg_db, seen)
        assert _states(pg_db) == {"us-wait": RUNNING, "eu-wait": PROVISIONING, "eu-run": RUNNING}
    finally:
        for share, _, p in reps:
            share.stop()
            p.close()
        lead.close()


# -- scopes and what the leader reads ------------------------------------------------------------------------
class RegionalFake(FakeProvider):
    """The fake provider, listing region by region (its nodes' region), configured for ``configured``."""

    def __init__(self, name: str, cloud: FakeCloud, configured: list[str]) -> None:
        super().__init__(name, cloud)
        self.configured = configured

    def configured_regions(self) -> list[str]:
        return list(self.configured)

    def list_nodes_in(self, region: str) -> list[Node]:
        return [n for n in self.list_nodes() if n.region == region]


def test_scopes_are_regions_where_the_provider_lists_by_region_else_the_provider() -> None:
    cloud = FakeCloud()
    providers: dict[str, Provider] = {"lambda": FakeProvider("lambda", cloud),
                                      "gcp": RegionalFake("gcp", cloud, ["a"])}
    got = observing.scopes(providers, {"gcp": {"b"}, "lambda": {"x"}})
    assert [(u.key, u.provider, u.region) for u in got] == [
        ("gcp/a", "gcp", "a"), ("gcp/b", "gcp", "b"), ("lambda", "lambda", None)]


def test_the_leader_reads_each_providers_rows_of_its_own_kind_only(db: Database) -> None:
    # A row of the other kind (a whole-provider answer for a provider now listed by region, written by a
    # replica still on the old code) would count that provider's nodes twice: it is ignored.
    from controlplane.store import work_leases as wl
    from controlplane.store.coltypes import utcnow

    cloud = FakeCloud()
    providers: dict[str, Provider] = {"lambda": FakeProvider("lambda", cloud),
                                      "gcp": RegionalFake("gcp", cloud, ["a"])}
    share = WorkShare(db, "r0")
    try:
        obs = observing.SharedObserver(db, providers, share, LoopMetrics(), every_s=0.0, max_age_s=60.0)
        n = {"provider": "gcp", "id": "n1", "name": "n1", "region": "a", "zone": "a1", "instance_type": "t",
             "capacity_type": "spot", "state": "running", "pool": "p", "workload": "w", "gpus": 8, "labels": {}}
        with db.session() as s:
            assert wl.publish(s, "gcp", [n], None, utcnow(), "old", 1)
            assert wl.publish(s, "gcp/a", [n], None, utcnow(), "r1", 1)
            assert wl.publish(s, "gcp/b", None, "UnavailableError", utcnow(), "r1", 1)
            assert wl.publish(s, "lambda", [], None, utcnow(), "r1", 1)
            assert wl.publish(s, "lambda/x", [n], None, utcnow(), "old", 1)
        seen = obs.latest()
        assert seen.observed == {"gcp/a", "lambda"} and seen.failed == {"gcp/b": "UnavailableError"}
        assert [x.id for x in seen.nodes] == ["n1"]
        assert seen.covers("gcp", "a") and not seen.covers("gcp", "b") and seen.covers("lambda", "anywhere")
    finally:
        share.stop()
