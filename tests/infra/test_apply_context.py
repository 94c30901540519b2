"""The run's view of the cloud's nodes (ApplyContext): a pool's nodes are looked up by pool (what a GKE
node pool's create asks), and follow what the run creates and deletes, as the full listing does."""

from __future__ import annotations

from infra.engines.appliers.base import ApplyContext
from providers.catalog.model import CapacityType
from providers.model import NodeRequest
from tests.infra.fakes import BareFakeProvider


def _req(pool: str, key: str, count: int = 1) -> NodeRequest:
    return NodeRequest(pool=pool, workload=f"wl-{pool}", region="us-east-1", zone="us-east-1a",
                       instance_type="p5.48xlarge", capacity_type=CapacityType.ON_DEMAND, count=count,
                       idempotency_key=key, tags={"awan:stack": "aws-us-east-1"})


def test_pool_nodes_follow_the_listing_creates_and_deletes() -> None:
    cloud = BareFakeProvider()
    listed = cloud.create_nodes(_req("a", "k1", 2)) + cloud.create_nodes(_req("b", "k2"))
    ctx = ApplyContext(provider=cloud, stack="aws-us-east-1", region="us-east-1", pools={})
    assert [n.id for n in ctx.in_pool("a")] == [n.id for n in listed[:2]]
    assert [n.id for n in ctx.in_pool("b")] == [listed[2].id] and ctx.in_pool("c") == []
    made = cloud.create_nodes(_req("c", "k3"))
    ctx.note_created(made, "k3")
    ctx.note_deleted([listed[0].id])
    assert [n.id for n in ctx.in_pool("a")] == [listed[1].id]
    assert [n.id for n in ctx.in_pool("c")] == [made[0].id]
    for pool in ("a", "b", "c"):            # the same as a scan of the whole view
        assert ctx.in_pool(pool) == [n for n in ctx.nodes() if n.pool == pool]
    assert cloud.calls.count("list_nodes") == 1
    ctx.forget_nodes()
    assert [n.id for n in ctx.in_pool("a")] == [listed[0].id, listed[1].id]   # listed again: the fake keeps it
