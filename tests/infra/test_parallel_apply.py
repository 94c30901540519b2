"""A stack's independent resources are applied at once (as Pulumi's ``--parallel`` does), never more of
one provider's calls at once than its bound; a refusal part way leaves exactly the refused resources
``failed``; deletes still go dependents first.

No timing assertions: overlap is read from the start and end of each request the mock cloud logged,
or forced with barriers that only open when calls really run side by side (and break if they do not)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import httpx
import pytest

from controlplane.reconcile.failover import pools_failed_in_run
from infra.engines.base import EngineError
from infra.engines.calls import CallBounds, parse_bounds
from infra.engines.local import LocalEngine
from infra.engines.select import provider_factory
from infra.engines.state import FileStateStore
from infra.spec import StackSpec
from mockclouds.requestlog import Call
from providers.errors import CapacityError
from providers.model import Node, NodeRequest
from tests.infra.fakes import FakeProvider, pool

INSTANCE = "aws:ec2/instance:Instance"
WAIT_S = 60.0      # generous: the machine is shared; a barrier that times out fails the test


def peak_overlap(calls: Iterable[Call]) -> int:
    """Most calls in flight at one moment (an end at the same instant as a start does not overlap)."""
    events = sorted([(c.start, 1) for c in calls] + [(c.end, -1) for c in calls], key=lambda e: (e[0], e[1]))
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def aws_stack(region: str, n: int, prefix: str = "p") -> StackSpec:
    return StackSpec("aws", region, tuple(pool(f"{prefix}{i}", nodes=1, placement="none", region=region,
                                               zone=f"{region}a", instance_type="p5.48xlarge") for i in range(n)))


def test_creates_overlap_in_the_mock_cloud_and_never_exceed_the_providers_bound(mock_aws, tmp_path):
    url = mock_aws.urls["aws"]
    httpx.post(f"{url}/_mock/capacity", json={"free": 100}, timeout=10).raise_for_status()
    # A slow create, so calls made side by side are seen side by side in the log.
    httpx.post(f"{url}/_mock/faults", json={"kind": "latency", "operation": "RunInstances", "latency_ms": 1000},
               timeout=10).raise_for_status()
    eng = LocalEngine(provider_factory(mock_aws.config()), store=FileStateStore(tmp_path),
                      call_bounds=CallBounds(default=3))
    stacks = [aws_stack("us-east-1", 5), aws_stack("us-east-2", 5)]
    log = mock_aws.backend("aws").requests
    log.clear()
    errors: list[BaseException] = []

    def up(s: StackSpec) -> None:
        try:
            eng.up(s)
        except BaseException as e:  # noqa: BLE001 - reported by the test thread
            errors.append(e)

    # Two stacks of one provider at once in one engine: the bound is the provider's, not each stack's.
    threads = [threading.Thread(target=up, args=(s,)) for s in stacks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    runs = [c for c in log.entries() if c.operation == "RunInstances"]
    assert len(runs) == 10
    assert 2 <= peak_overlap(runs) <= 3
    # Each run listed its own region only (SupportsRegionalListing), not every region the adapter serves.
    assert {c.region for c in log.entries() if c.operation == "DescribeInstances"} == {"us-east-1", "us-east-2"}
    for s in stacks:        # each stack on its own overlapped too, and everything was recorded created
        assert peak_overlap(c for c in runs if c.region == s.region) >= 2
        res = eng.recorded_state(s.name)["resources"]
        assert sorted(r["status"] for r in res.values() if r["type"] == INSTANCE) == ["created"] * 5


class RefusesOne(FakeProvider):
    """Refuses pool ``a-bad`` once four creates are in the cloud at the same time (a barrier: they can
    only be if creates run side by side); the other three finish after the refusal."""

    def __init__(self) -> None:
        super().__init__("aws")
        self.refused = threading.Event()
        self.meet = threading.Barrier(4, timeout=WAIT_S)
        self.refuse = True

    def create_nodes(self, request: NodeRequest) -> list[Node]:
        if not self.refuse:
            return super().create_nodes(request)
        self.meet.wait()
        if request.pool == "a-bad":
            self.refused.set()
            raise CapacityError(f"no {request.instance_type} left in {request.zone}")
        assert self.refused.wait(WAIT_S)
        return super().create_nodes(request)


def test_a_refusal_part_way_fails_exactly_the_refused_and_records_the_calls_under_way(tmp_path):
    fp = RefusesOne()
    eng = LocalEngine(lambda _: fp, store=FileStateStore(tmp_path), call_bounds=CallBounds(default=4))
    pools = (pool("a-bad", nodes=1, placement="none"),
             *(pool(f"b{i}", nodes=1, placement="none") for i in range(7)))
    stack = StackSpec("aws", "us-east-1", pools)
    with pytest.raises(CapacityError):
        eng.up(stack)
    state = eng.recorded_state(stack.name)
    inst = {r["name"]: r["status"] for r in state["resources"].values() if r["type"] == INSTANCE}
    # The first group (the bound: 4) was under way: the refused one failed, the three beside it finished
    # and are recorded; the four never started are not in the state; nothing is left pending.
    assert [n for n, st in inst.items() if st == "failed"] == ["a-bad-0"]
    created = [r for r in state["resources"].values() if r["type"] == INSTANCE and r["status"] == "created"]
    assert sorted(i for r in created for i in r["ids"]) == sorted(n.id for n in fp.live()) and len(created) == 3
    assert len(inst) == 4
    assert pools_failed_in_run(stack.pools, state) == {"a-bad"}
    # Once the cloud has room, the next run creates the refused one and the four never tried.
    fp.refuse = False
    eng.up(stack)
    assert len(fp.live()) == 8 and eng.up(stack).changes.changed is False


class GroupsMeet(FakeProvider):
    """Placement group deletes wait for each other (a barrier of two: they must run side by side);
    each records whether its pool's nodes were already gone when it started."""

    def __init__(self) -> None:
        super().__init__("aws")
        self.meet = threading.Barrier(2, timeout=WAIT_S)
        self.order: list[tuple[str, bool]] = []
        self.nodes_deleted_with: list[int] = []

    def delete_nodes(self, nodes: Sequence[Node]) -> None:
        self.nodes_deleted_with.append(len(nodes))
        super().delete_nodes(nodes)

    def delete_placement(self, region: str, name: str) -> None:
        self.order.append((name, not self.live(name.removeprefix("awan-"))))
        self.meet.wait()
        super().delete_placement(region, name)


def test_destroy_deletes_nodes_first_then_independent_groups_side_by_side(tmp_path):
    fp = GroupsMeet()
    eng = LocalEngine(lambda _: fp, store=FileStateStore(tmp_path), call_bounds=CallBounds(default=4))
    stack = StackSpec("aws", "us-east-1", tuple(pool(f"t{i}", nodes=2) for i in range(2)))
    eng.up(stack)
    assert sorted(fp.placement_groups) == ["awan-t0", "awan-t1"] and len(fp.live()) == 4
    eng.destroy(stack.name)
    assert fp.placement_groups == {} and fp.live() == []
    assert sorted(fp.order) == [("awan-t0", True), ("awan-t1", True)]    # nodes gone before their group
    assert fp.nodes_deleted_with == [4]                                  # every node in one call
    assert eng.list_stacks() == []


def test_call_bounds_parse_and_name_the_setting():
    b = parse_bounds("6,aws=16, oci=2")
    assert (b.of("aws"), b.of("oci"), b.of("gcp")) == (16, 2, 6)
    assert parse_bounds(None).of("aws") == 8 and parse_bounds("").of("aws") == 8
    for bad in ("0", "x", "aws=0", "=3", "aws=1=2", "-1"):
        with pytest.raises(EngineError, match="AWAN_PROVIDER_CALL_CONCURRENCY"):
            parse_bounds(bad)
