"""The local engine on stacks of many resources: state is written in batches, yet every cloud call that
could create (or delete) something still finds its pending record already on disk; nodes are listed
once per run and deleted together; a worker killed or refused part way through a batch converges on
the next run with no duplicate and no orphan."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from infra.engines.local import LocalEngine
from infra.engines.state import FileStateStore
from infra.spec import StackSpec
from providers.errors import CapacityError
from providers.model import Node, NodeRequest
from tests.infra.fakes import FakeProvider, pool

STACK = "awan-aws-us-east-1"


def many(n: int, placement: str = "none") -> StackSpec:
    return StackSpec("aws", "us-east-1", tuple(pool(f"p{i:03d}", nodes=1, placement=placement) for i in range(n)))


class CountingStore(FileStateStore):
    def __init__(self, directory) -> None:
        super().__init__(directory)
        self.puts = 0

    def put(self, stack, state):
        self.puts += 1
        super().put(stack, state)


class Auditor(FakeProvider):
    """Checks, at every side effect, that the stack state *on disk* already says what is about to happen."""

    def __init__(self, store: FileStateStore) -> None:
        super().__init__("aws")
        self.store = store
        self.audited = 0

    def _on_disk(self) -> dict:
        return (self.store.get(STACK) or {"resources": {}})["resources"]

    def create_nodes(self, request: NodeRequest) -> list[Node]:
        pending = {r["key"] for r in self._on_disk().values() if r["status"] == "pending-create"}
        assert request.idempotency_key in pending, "create call before its pending record was durable"
        self.audited += 1
        return super().create_nodes(request)

    def delete_nodes(self, nodes: Sequence[Node]) -> None:
        marked = {i for r in self._on_disk().values() if r["status"] == "pending-delete" for i in r["ids"]}
        assert {n.id for n in nodes} <= marked, "delete call before its pending-delete mark was durable"
        self.audited += len(nodes)
        super().delete_nodes(nodes)

    def ensure_placement_group(self, name: str, region: str, strategy: str = "cluster") -> str:
        pending = {r["inputs"].get("name") for r in self._on_disk().values() if r["status"] == "pending-create"}
        assert name in pending
        return super().ensure_placement_group(name, region, strategy)

    def delete_placement_group(self, name: str, region: str) -> None:
        pool_name = name.removeprefix("awan-")
        assert not self.live(pool_name), "a placement group was deleted before the nodes in it"
        super().delete_placement_group(name, region)


def test_batched_writes_keep_every_pending_record_ahead_of_its_call(tmp_path):
    store = CountingStore(tmp_path)
    fp = Auditor(store)
    eng = LocalEngine(lambda _: fp, store=store)
    stack = many(60)
    eng.up(stack)
    assert len(fp.live()) == 60 and fp.audited == 60
    # Two writes per created resource before batching (120 or more here); a few dozen now.
    assert store.puts < 30, store.puts
    fp.calls.clear()
    r = eng.destroy(stack.name)
    assert fp.live() == [] and fp.audited == 120 and r.counts["delete"] > 60
    assert fp.calls.count("list_nodes") == 1                     # one listing for the whole run
    assert fp.calls.count("delete_nodes") < 10                   # nodes deleted together, not one by one
    assert store.get(stack.name) is None


def test_nodes_go_before_the_placement_group_they_sit_in(tmp_path):
    store = FileStateStore(tmp_path)
    fp = Auditor(store)
    eng = LocalEngine(lambda _: fp, store=store)
    stack = StackSpec("aws", "us-east-1", tuple(pool(f"t{i}", nodes=3) for i in range(4)))
    eng.up(stack)
    assert len(fp.placement_groups) == 4 and len(fp.live()) == 12
    eng.up(StackSpec("aws", "us-east-1", stack.pools[:1]))       # removes three pools and their groups
    assert sorted(fp.placement_groups) == ["awan-t0"] and len(fp.live()) == 3
    eng.destroy(stack.name)
    assert fp.placement_groups == {} and fp.live() == []


class KilledAt(FakeProvider):
    """The cloud creates the k-th node, then the worker dies before it hears back."""

    def __init__(self, k: int) -> None:
        super().__init__("aws")
        self.k = k
        self.killed_in = ""
        self._count = threading.Lock()

    def create_nodes(self, request: NodeRequest) -> list[Node]:
        nodes = super().create_nodes(request)
        with self._count:                 # the engine makes a stack's calls on several threads
            self.k -= 1
            last = self.k == 0
        if last:
            self.killed_in = request.pool
            raise KeyboardInterrupt("killed after the cloud call")
        return nodes


@pytest.mark.parametrize("k", [1, 6, 19])
def test_killed_inside_a_batch_converges_without_duplicates(tmp_path, k):
    fp = KilledAt(k)
    stack = many(24)
    with pytest.raises(KeyboardInterrupt):
        LocalEngine(lambda _: fp, store=FileStateStore(tmp_path)).up(stack)
    # The calls under way beside the k-th finish (they are recorded); none is started after it.
    assert k <= len(fp.live()) < k + 8
    eng = LocalEngine(lambda _: fp, store=FileStateStore(tmp_path))
    r = eng.up(stack)
    assert len(fp.live()) == 24
    assert any(m.startswith(f"  adopted {fp.killed_in}-0 ") for m in r.messages)
    ids = [i for s in eng.store.get(stack.name)["resources"].values() for i in s["ids"] if i.startswith("i-")]
    assert sorted(ids) == sorted(n.id for n in fp.live())            # every node known, none twice
    assert eng.up(stack).changes.changed is False
    assert not eng.refresh(stack).drifted


def test_refused_inside_a_batch_leaves_no_pending_record_for_calls_not_made(tmp_path):
    fp = FakeProvider("aws")
    fp.free = 5
    eng = LocalEngine(lambda _: fp, store=FileStateStore(tmp_path))
    stack = many(12)
    with pytest.raises(CapacityError):
        eng.up(stack)
    stored = eng.store.get(stack.name)["resources"]
    statuses = [s["status"] for s in stored.values() if s["type"] == "aws:ec2/instance:Instance"]
    # Creates run several at once: every one the cloud refused is failed (at least one), those never
    # tried are not in state at all, and nothing is left pending.
    failed = statuses.count("failed")
    assert statuses.count("created") == 5 and failed >= 1 and len(statuses) <= 12
    assert "pending-create" not in statuses
    assert len(eng.refresh(stack).missing) == failed                  # only the ones refused
    fp.free = 100
    eng.up(stack)
    assert len(fp.live()) == 12 and eng.up(stack).changes.changed is False


@pytest.mark.slow  # hundreds of real adapter calls: ~90 s on a loaded 2-core machine
def test_a_stack_of_hundreds_of_pools_converges_and_destroys(tmp_path):
    fp = FakeProvider("aws")
    eng = LocalEngine(lambda _: fp, store=FileStateStore(tmp_path))
    stack = many(300)
    r = eng.up(stack)
    assert len(fp.live()) == 300 and r.counts["create"] >= 600
    assert eng.up(stack).counts["same"] == r.counts["create"]
    eng.destroy(stack.name)
    assert fp.live() == [] and eng.list_stacks() == []
