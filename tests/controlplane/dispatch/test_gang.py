"""The gang admission rules (pure): every node of each pool Ready with a rank's GPUs free, taken GPUs and
untolerated taints hold the gang; over NVLink domains each block of ranks gets a whole domain, and blocks
pinned by an earlier (interrupted) pass keep their domain."""

from __future__ import annotations

from controlplane.dispatch import gang
from controlplane.dispatch.render import INDEX_ANNOTATION, owner_labels
from providers import nodelabels as L


def node(name: str, pool: str, domain: str = "", gpus: int = 4, ready: bool = True, taint: str = "") -> dict:
    labels = {L.POOL: pool, **({L.NVLINK_DOMAIN: domain} if domain else {})}
    spec = {"taints": [{"key": taint, "effect": "NoSchedule"}]} if taint else {}
    return {"metadata": {"name": name, "labels": labels}, "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "allocatable": {"nvidia.com/gpu": str(gpus)}}}


def pod(key: str, incarnation: int, node_name: str, gpus: int = 4, phase: str = "Running") -> dict:
    return {"metadata": {"name": f"p-{node_name}", "labels": owner_labels(key, "t", incarnation)},
            "spec": {"nodeName": node_name, "containers": [{"resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]},
            "status": {"phase": phase}}


def test_every_node_of_every_pool_must_be_ready_and_free():
    nodes = [node("a0", "a"), node("a1", "a", ready=False), node("b0", "b"), node("b1", "b", taint="maintenance")]
    h = gang.admit({"a": 2, "b": 2}, 4, gang.node_views(nodes, [], "t_w", 0), nvlink=False, domain_gpus=None)
    assert not h.ready and h.why.endswith("a 1/2, b 1/2")
    # the GPU taint is tolerated by gang pods
    nodes = [node("a0", "a"), node("a1", "a", taint="nvidia.com/gpu")]
    assert gang.admit({"a": 2}, 4, gang.node_views(nodes, [], "t_w", 0), nvlink=False, domain_gpus=None).ready


def test_gpus_held_by_another_run_hold_the_gang_but_its_own_pods_do_not():
    nodes = [node("a0", "a"), node("a1", "a")]
    other = [pod("t_w", 3, "a0")]                        # an earlier incarnation still on a0
    assert not gang.admit({"a": 2}, 4, gang.node_views(nodes, other, "t_w", 4), nvlink=False, domain_gpus=None).ready
    done = [pod("t_w", 3, "a0", phase="Failed")]
    assert gang.admit({"a": 2}, 4, gang.node_views(nodes, done, "t_w", 4), nvlink=False, domain_gpus=None).ready
    mine = [pod("t_w", 4, "a0")]
    assert gang.admit({"a": 2}, 4, gang.node_views(nodes, mine, "t_w", 4), nvlink=False, domain_gpus=None).ready


def test_blocks_of_ranks_get_whole_nvlink_domains():
    nodes = [node(f"r1-{i}", "p", "rack1") for i in range(18)] + [node(f"r0-{i}", "p", "rack0") for i in range(18)]
    h = gang.admit({"p": 36}, 4, gang.node_views(nodes, [], "t_w", 0), nvlink=True, domain_gpus=72)
    assert h.ready and h.block == 18 and h.domains == ("rack0", "rack1")
    # no size given: the largest domain's node count
    h = gang.admit({"p": 36}, 4, gang.node_views(nodes, [], "t_w", 0), nvlink=True, domain_gpus=None)
    assert h.block == 18 and h.domains == ("rack0", "rack1")
    # a rack short of one free node: no block fits it, the gang waits
    nodes[0] = node("r1-0", "p", "rack1", ready=False)
    nodes.append(node("r2-0", "p", "rack2"))
    h = gang.admit({"p": 36}, 4, gang.node_views(nodes, [], "t_w", 0), nvlink=True, domain_gpus=72)
    assert not h.ready and "block of 18 ranks" in h.why


def test_blocks_already_pinned_keep_their_domain():
    views = gang.node_views([node(f"{d}-{i}", "p", d) for d in ("ra", "rb") for i in range(2)], [], "t_w", 0)
    assert gang.assign_domains(4, 2, views, 4) == ("ra", "rb")
    assert gang.assign_domains(4, 2, views, 4, fixed={0: "rb"}) == ("rb", "ra")
    pods = [{"metadata": {"annotations": {INDEX_ANNOTATION: "1"}}, "spec": {"nodeSelector": {L.NVLINK_DOMAIN: "rb"}}},
            {"metadata": {"annotations": {INDEX_ANNOTATION: "2"}},
             "spec": {"schedulingGates": [{"name": gang.GATE}], "nodeSelector": {}}}]
    assert gang.pinned(pods, 2) == {0: "rb"}
    assert gang.node_selector(["b", "a"]) == f"{L.POOL} in (a,b)" and gang.node_selector(["a"]) == f"{L.POOL}=a"
