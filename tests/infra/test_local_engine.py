"""The local engine's logic against an in-memory provider: diff by URN and inputs, idempotence,
deletes, crash safety (pending records), drift and repair, extras the adapter lacks."""

from __future__ import annotations

import pytest

from infra.engines.local import LocalEngine
from infra.engines.state import FileStateStore
from infra.spec import StackSpec
from providers.catalog.model import CapacityType
from providers.errors import CapacityError
from providers.model import NodeRequest
from tests.infra.fakes import FakeProvider, pool


def aws_stack(*pools) -> StackSpec:
    return StackSpec("aws", "us-east-1", tuple(pools))


def test_up_creates_exactly_the_pool_and_second_up_changes_nothing(fake_engine):
    eng, fp = fake_engine()
    r = eng.up(aws_stack(pool("train-a", nodes=3), pool("infer-b", nodes=1, placement="none")))
    assert len(fp.live("train-a")) == 3 and len(fp.live("infer-b")) == 1
    assert fp.placement_groups == {"awan-train-a": "cluster"}          # only the training pool gets one
    assert r.counts["create"] == len(r.changes.creates) and r.counts["create"] >= 4
    assert sorted(r.outputs["pools"]["train-a"]) == sorted(n.id for n in fp.live("train-a"))
    assert any("virtual" in m for m in r.messages) and "Pulumi CLI not found" in r.messages[0]
    again = eng.up(aws_stack(pool("train-a", nodes=3), pool("infer-b", nodes=1, placement="none")))
    assert again.counts == {"create": 0, "update": 0, "delete": 0, "same": r.counts["create"]}
    assert len(fp.live()) == 4


def test_removing_a_pool_deletes_exactly_its_resources(fake_engine):
    eng, fp = fake_engine()
    eng.up(aws_stack(pool("train-a", nodes=2), pool("infer-b", nodes=1, placement="none")))
    keep = {n.id for n in fp.live("infer-b")}
    r = eng.up(aws_stack(pool("infer-b", nodes=1, placement="none")))
    assert fp.live("train-a") == [] and {n.id for n in fp.live()} == keep
    assert fp.placement_groups == {}
    deleted = {c.name for c in r.changes.deletes}
    assert {"train-a-0", "train-a-1", "train-a-pg", "train-a-lt", "train-a"} <= deleted
    assert not any(n.startswith("infer-b") for n in deleted) and r.counts["create"] == 0


def test_scaling_a_pool_adds_only_the_new_node(fake_engine):
    eng, fp = fake_engine()
    eng.up(aws_stack(pool("train-a", nodes=2)))
    before = {n.id for n in fp.live()}
    r = eng.up(aws_stack(pool("train-a", nodes=3)))
    after = {n.id for n in fp.live()}
    assert before < after and len(after) == 3
    assert [c.name for c in r.changes.creates] == ["train-a-2"]


def test_reserved_pool_draws_on_the_reservation_it_created(fake_engine):
    eng, fp = fake_engine()
    eng.up(aws_stack(pool("train-a", nodes=2, capacity_type=CapacityType.RESERVED)))
    (rid, r), = fp.reservations.items()
    assert r["count"] == 2 and r["zone"] == "us-east-1a"
    assert all(n.capacity_type is CapacityType.RESERVED for n in fp.live())
    eng.destroy("awan-aws-us-east-1")
    assert fp.reservations == {} and fp.live() == []


class CrashAfterPending(FileStateStore):
    """Dies (like a killed process) right after the n-th pending-create record is on disk."""

    def __init__(self, directory, after: int) -> None:
        super().__init__(directory)
        self.after = after

    def put(self, stack, state):
        super().put(stack, state)
        if any(r.get("status") == "pending-create" for r in state["resources"].values()):
            self.after -= 1
            if self.after == 0:
                raise KeyboardInterrupt("killed")


class CrashAfterCreate(FakeProvider):
    """The cloud creates the node, then the worker dies before it can record the id."""

    def __init__(self) -> None:
        super().__init__("aws")
        self.armed = True

    def create_nodes(self, request):
        nodes = super().create_nodes(request)
        with self._create:                # the engine makes a stack's calls on several threads
            armed, self.armed = self.armed, False
        if armed:
            raise KeyboardInterrupt("killed after the cloud call")
        return nodes


# The run writes pending records twice: the placement group, then its three instances together (they are
# applied side by side once the group exists).
@pytest.mark.parametrize("after", [1, 2])
def test_crash_after_pending_record_then_rerun_no_duplicate(tmp_path, after):
    fp = FakeProvider("aws")
    stack = aws_stack(pool("train-a", nodes=3))
    with pytest.raises(KeyboardInterrupt):
        LocalEngine(lambda _: fp, store=CrashAfterPending(tmp_path, after)).up(stack)
    eng = LocalEngine(lambda _: fp, store=FileStateStore(tmp_path))
    eng.up(stack)
    assert len(fp.live()) == 3
    state = eng.store.get(stack.name)
    ids = [i for r in state["resources"].values() for i in r["ids"] if i.startswith("i-")]
    assert sorted(ids) == sorted(n.id for n in fp.live())                 # no orphan
    assert eng.up(stack).changes.changed is False


def test_crash_after_cloud_call_adopts_instead_of_creating_again(tmp_path):
    fp = CrashAfterCreate()
    stack = aws_stack(pool("train-a", nodes=2))
    eng = LocalEngine(lambda _: fp, store=FileStateStore(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        eng.up(stack)
    # created in the cloud, unknown to the state (the other node's create, under way beside it, finished and is recorded)
    assert 1 <= len(fp.live()) <= 2
    fp.by_key.clear()                     # even if the cloud forgot the token, the tag is enough
    r = eng.up(stack)
    assert len(fp.live()) == 2
    assert any("adopted train-a-0" in m for m in r.messages)
    assert eng.refresh(stack).drifted is False


def test_deleted_behind_our_back_shows_as_drift_and_up_repairs(fake_engine):
    eng, fp = fake_engine()
    stack = aws_stack(pool("train-a", nodes=2))
    eng.up(stack)
    victim = fp.live()[0]
    fp.delete_nodes([victim])
    stray = fp.create_nodes(NodeRequest(
        pool="train-a", workload="x", region="us-east-1", zone="us-east-1a", instance_type="p5.48xlarge",
        capacity_type=CapacityType.ON_DEMAND, count=1, idempotency_key="by-hand",
        tags={"awan:stack": stack.name}))[0]
    drift = eng.refresh(stack)
    assert [d.cloud_id for d in drift.missing] == [victim.id]
    assert [d.cloud_id for d in drift.unmanaged] == [stray.id]
    r = eng.up(stack)
    assert r.counts["create"] == 1 and len(fp.live("train-a")) == 3     # 2 ours + the stray one
    assert not eng.refresh(stack).missing


def test_capacity_error_is_raised_and_recorded_then_retried(fake_engine):
    eng, fp = fake_engine()
    fp.free = 1
    stack = aws_stack(pool("train-a", nodes=2))
    with pytest.raises(CapacityError):
        eng.up(stack)
    fp.free = 5
    eng.up(stack)
    assert len(fp.live()) == 2


def test_missing_extra_is_recorded_as_not_applied_with_the_reason(fake_engine):
    eng, fp = fake_engine(extras=False)
    r = eng.up(aws_stack(pool("train-a", nodes=1)))
    assert [c.name for c in r.not_applied] == ["train-a-pg"]
    assert "does not implement SupportsPlacementGroups" in r.not_applied[0].detail
    assert len(fp.live()) == 1


def test_preview_does_not_touch_the_cloud(fake_engine):
    eng, fp = fake_engine()
    cs = eng.preview(aws_stack(pool("train-a", nodes=2)))
    assert cs.counts["create"] > 0 and fp.calls == [] and eng.list_stacks() == []
    assert "to create" in cs.summary()


def test_azure_scale_set_is_updated_in_place(fake_engine):
    eng, fp = fake_engine("azure")
    p = dict(provider="azure", region="eastus", zone="eastus-1", instance_type="Standard_ND96isr_H100_v5")
    eng.up(StackSpec("azure", "eastus", (pool("train-a", nodes=2, **p),)))
    r = eng.up(StackSpec("azure", "eastus", (pool("train-a", nodes=4, **p),)))
    assert fp.scale_sets["awan-train-a"]["capacity"] == 4
    assert r.counts["update"] == 1 and r.counts["delete"] == 0
    assert [c for c in fp.calls if c.startswith("delete")] == []


def test_coreweave_node_pool_lifecycle(fake_engine):
    eng, fp = fake_engine("coreweave")
    p = dict(provider="coreweave", region="US-EAST-04", zone="US-EAST-04A", instance_type="gd-8xh100ib-i128")
    stack = StackSpec("coreweave", "US-EAST-04", (pool("train-a", nodes=3, **p),))
    eng.up(stack)
    assert fp.node_pools["train-a"]["target_nodes"] == 3
    assert fp.node_pools["train-a"]["labels"]["awan-pool"] == "train-a"
    fp.node_pools.clear()
    assert len(eng.refresh(stack).missing) == 1
    eng.up(stack)
    assert "train-a" in fp.node_pools
    eng.up(StackSpec("coreweave", "US-EAST-04"))
    assert fp.node_pools == {}


def test_one_worker_per_stack(tmp_path):
    from infra.engines.base import StackBusy

    store = FileStateStore(tmp_path)
    with store.lock("awan-aws-us-east-1"), pytest.raises(StackBusy):
        LocalEngine(lambda _: FakeProvider(), store=store, lock_timeout_s=0.1).up(aws_stack())


def test_a_destroyed_stack_is_forgotten_by_the_render_worker(fake_engine):
    """Its last render is kept for the next run (rendercache); once the stack is gone it would only hold memory."""
    from infra.engines import mockruntime_worker

    eng, fp = fake_engine()
    eng.up(aws_stack(pool("infer-b", nodes=1, placement="none")))
    assert "awan-aws-us-east-1" in mockruntime_worker.held()
    eng.destroy("awan-aws-us-east-1")
    assert fp.live() == []
    assert "awan-aws-us-east-1" not in mockruntime_worker.held()
