"""The local engine against the mock clouds, through the real adapters and SDKs over HTTP, for every
provider: the engine asks for one node at a time, so a pool of two is two create requests of one pool."""

from __future__ import annotations

import pytest

from infra.engines.local import LocalEngine
from infra.engines.select import provider_factory
from infra.engines.state import FileStateStore
from infra.spec import StackSpec
from tests.infra.fakes import pool

CASES = {
    "gcp": dict(provider="gcp", region="us-central1", zone="us-central1-a", instance_type="a3-highgpu-8g"),
    "aws": dict(provider="aws", region="us-east-1", zone="us-east-1a", instance_type="p5.48xlarge"),
    "azure": dict(provider="azure", region="eastus", zone="eastus-1", instance_type="Standard_ND96isr_H100_v5"),
    "coreweave": dict(provider="coreweave", region="US-EAST-04", zone="US-EAST-04A",
                      instance_type="gd-8xh100ib-i128"),
    "oci": dict(provider="oci", region="us-ashburn-1", zone="US-ASHBURN-AD-1", instance_type="BM.GPU.H100.8"),
}
# Where a pool's nodes are cloud resources Awan makes (EC2 instances; GKE node pools, whose VMs the engine
# makes in the mock cloud), a node deleted behind Awan's back is drift that refresh reports (the instance,
# or the node pool that lost it), and the next up makes the pool whole again. Azure (a VM scale set) and CoreWeave (a NodePool object) hold a pool as one resource
# whose own controller owns the nodes, so the per-node drift step does not apply to them; nor to OCI, whose
# training pool is a cluster network (an instance pool).
PER_NODE = {"aws", "gcp"}


def _ours(engine: LocalEngine, provider: str, stack: str) -> list:
    prov = engine._providers(provider)
    return [n for n in prov.list_nodes() if n.state.value not in ("terminated", "preempted")
            and (n.labels.get("awan:stack") or n.labels.get("awan-stack") or "").lower() == stack.lower()]


@pytest.mark.parametrize("provider", sorted(CASES))
def test_up_second_up_remove_and_drift_through_adapters(provider, mock_config, tmp_path):
    cfg = mock_config
    eng = LocalEngine(provider_factory(cfg), store=FileStateStore(tmp_path))
    extra = {"project": cfg.providers["gcp"].project or ""} if provider == "gcp" else {}
    c = CASES[provider]
    s = StackSpec(c["provider"], c["region"], (pool("train-a", nodes=2, **c), pool("serve-b", nodes=1,
                                                                                   placement="none", **c)),
                  config=extra)
    eng.up(s)
    nodes = _ours(eng, provider, s.name)
    assert sorted(n.pool for n in nodes) == ["serve-b", "train-a", "train-a"]
    assert len({n.id for n in nodes}) == 3          # three distinct cloud nodes, not one twice
    assert eng.up(s).changes.changed is False
    if provider in PER_NODE:       # behind Awan's back
        victim = next(n for n in nodes if n.pool == "train-a")
        eng._providers(provider).delete_nodes([victim])
        (missing,) = eng.refresh(s).missing
        assert victim.id in missing.cloud_id.split(",")
        eng.up(s)
        assert len([n for n in _ours(eng, provider, s.name) if n.pool == "train-a"]) == 2
    # remove a pool
    s2 = StackSpec(s.provider, s.region, (s.pools[0],), config=extra)   # serve-b only (sorted)
    eng.up(s2)
    assert sorted(n.pool for n in _ours(eng, provider, s.name)) == ["serve-b"]
    eng.destroy(s.name)
    assert _ours(eng, provider, s.name) == []


def test_azure_scale_set_up_resize_and_delete(mock_config, tmp_path):
    eng = LocalEngine(provider_factory(mock_config), store=FileStateStore(tmp_path))
    c = dict(provider="azure", region="eastus", zone="eastus-1", instance_type="Standard_ND96isr_H100_v5")
    s = StackSpec("azure", "eastus", (pool("train-a", nodes=2, **c),))
    r = eng.up(s)
    assert r.not_applied == []
    prov = eng._providers("azure")
    assert prov.get_scale_set("awan-train-a") is not None
    assert eng.up(s).changes.changed is False
    r = eng.up(StackSpec("azure", "eastus", (pool("train-a", nodes=3, **c),)))
    assert r.counts["update"] == 1 and r.counts["delete"] == 0
    eng.up(StackSpec("azure", "eastus"))
    assert eng.refresh(StackSpec("azure", "eastus")).missing == []


def _gcp(mock_config, tmp_path):  # type: ignore[no-untyped-def]
    eng = LocalEngine(provider_factory(mock_config), store=FileStateStore(tmp_path))
    return eng, {"project": mock_config.providers["gcp"].project or ""}


def test_gcp_gang_deleted_and_declared_again_is_created_again(mock_config, tmp_path):
    """Issue 13, item 2: delete then resubmit of a GCP gang made it unplaceable for ever: the same keys
    (URN and generation) gave the same requestIds, GCE answered with the old, finished operations, nothing
    was created and the following get said notFound."""
    eng, cfg = _gcp(mock_config, tmp_path)
    c = CASES["gcp"]
    gang = StackSpec("gcp", c["region"], (pool("gang-a", nodes=2, **c),), config=cfg)
    for _ in range(3):   # up, empty, up again: the same URNs each time
        eng.up(gang)
        assert sorted(n.pool for n in _ours(eng, "gcp", gang.name)) == ["gang-a", "gang-a"]
        eng.up(StackSpec("gcp", c["region"], (), config=cfg))
        assert _ours(eng, "gcp", gang.name) == []


def test_gcp_gang_that_changes_size_moves_to_a_new_policy_before_the_old_one_goes(mock_config, tmp_path):
    """Issue 13, item 2: a gang whose node count changed had its compact policy deleted while the old
    instances still used it (GCE: resourceInUseByAnotherResource; the mock refuses it the same way), which
    failed every pool of the region."""
    eng, cfg = _gcp(mock_config, tmp_path)
    c = CASES["gcp"]
    other = pool("other-b", nodes=2, **c)
    for size in (2, 3, 1, 2):
        r = eng.up(StackSpec("gcp", c["region"], (pool("gang-a", nodes=size, **c), other), config=cfg))
        nodes = _ours(eng, "gcp", r.stack)
        assert sorted(n.pool for n in nodes) == ["gang-a"] * size + ["other-b"] * 2
    from google.api_core.exceptions import NotFound

    policies = eng._providers("gcp").vms.api.compute("ResourcePoliciesClient")

    def exists(name: str) -> bool:
        try:
            return bool(policies.get(project=cfg["project"], region=c["region"], resource_policy=name))
        except NotFound:
            return False

    assert exists("awan-gang-a-n2") and exists("awan-other-b-n2")
    assert not exists("awan-gang-a-n3") and not exists("awan-gang-a-n1")


def test_gcp_policy_can_be_made_again_after_it_was_deleted(mock_config):
    """Issue 13, item 2, in the adapter: the policy insert used a fixed requestId per (region, name)."""
    from providers.registry import build_providers

    gcp = build_providers(mock_config, ["gcp"])["gcp"]
    try:
        region = CASES["gcp"]["region"]
        for _ in range(2):
            assert gcp.ensure_compact_placement_policy(region, "again-a", vm_count=2).endswith("/again-a")
            gcp.delete_placement_policy(region, "again-a")
    finally:
        gcp.close()
