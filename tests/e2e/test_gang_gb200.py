"""A 144-GPU GB200 gang end to end through the service's HTTP API against the mock clouds: placed on two
NVL72 domains (18 nodes x 4 GPUs each), provisioned, dispatched as 36 pods; every block of 18 consecutive
ranks on one rack (the ``awan.dev/nvlink-domain`` its nodes carry), and the gang starts all or nothing.
Sampled through the kubernetes client while it starts: no pod exists while a node of the gang is not
Ready, no rank is bound before all 36 exist, and no pod is ever Unschedulable. (Ranks are ungated by one
patch each, as Kueue's topology ungater does, so they bind over that pass; all of them fit when the first
binds, which is what all-or-nothing promises.)"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from controlplane.dispatch.gang import GATE
from controlplane.dispatch.render import INDEX_ANNOTATION, L_WORKLOAD
from controlplane.model.identity import workload_key
from providers import nodelabels as L
from tests.e2e.test_run_e2e import finish, kube, service, wait_for

__all__ = ["service"]           # the fixture, shared with the other run tests
pytestmark = pytest.mark.slow
RANKS, PER_RACK = 36, 18
# CoreWeave: on-demand GB200 racks in its CKS cluster. AWS: two UltraServer Capacity Blocks
# (u-p6e-gb200x72) bought first, the gang placed into them; its nodes carry the UltraServer id too.
WHERE = {"coreweave": ("US-EAST-04", "on-demand"), "aws": ("us-east-1", "reserved")}


def buy_ultraservers(mc: Any, region: str, n: int) -> None:
    from providers.aws.adapter import AWSProvider

    p = AWSProvider(mc.config().providers["aws"])
    try:
        for _ in range(n):
            [offer, *_] = p.describe_capacity_block_offerings(region, "p6e-gb200.36xlarge", count=PER_RACK)
            assert offer.ultraserver_type == "u-p6e-gb200x72"
            p.purchase_capacity_block(offer, {"awan:owner": "awan"})
    finally:
        p.close()


def manifest(name: str, provider: str) -> str:
    region, capacity = WHERE[provider]
    return f"""apiVersion: awan.dev/v1alpha1
kind: GPUWorkload
metadata: {{name: {name}, team: research}}
spec:
  kind: training
  gpus: {{model: [GB200], count: 144, perNode: 4}}
  topology: {{domain: nvlink, domainSize: 72}}
  capacityType: [{capacity}]
  location: {{regions: ['{provider}:{region}']}}
  template:
    image: ghcr.io/example/trainer:1
    command: [sh, -c, 'echo rank=$RANK world=$WORLD_SIZE master=$MASTER_ADDR; sleep infinity']
"""


def _ready(n: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])


def _unschedulable(p: Any) -> bool:
    return any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in p.status.conditions or [])


def _gated(p: Any) -> bool:
    return any(g.name == GATE for g in p.spec.scheduling_gates or [])


@pytest.mark.parametrize("provider", sorted(WHERE))
def test_a_144_gpu_gb200_gang_lands_on_two_nvl72_racks_and_starts_all_or_nothing(service, provider):
    svc, token, mc = service
    region = WHERE[provider][0]
    if provider == "aws":
        buy_ultraservers(mc, region, 2)
    name = "gb200-gang"
    key = workload_key("research", name)
    v1 = kube(mc, provider, region)
    selector = f"{L_WORKLOAD}={key}"
    samples: list[dict[str, int]] = []            # what the cluster showed, every 0.1 s while it starts
    with httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        r = c.post("/v1/workloads", content=manifest(name, provider), headers={"Content-Type": "application/yaml"})
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + 600
        w: dict[str, Any] = {}
        while time.monotonic() < deadline:
            nodes_now = v1.list_node(label_selector=f"{L.GPU_PRODUCT}=GB200").items
            pods = v1.list_namespaced_pod("default", label_selector=selector).items
            samples.append({"ready": sum(1 for n in nodes_now if _ready(n)), "pods": len(pods),
                            "gated": sum(1 for p in pods if _gated(p)),
                            "bound": sum(1 for p in pods if p.spec.node_name),
                            "unschedulable": sum(1 for p in pods if _unschedulable(p))})
            w = c.get(f"/v1/workloads/{name}").json()
            if w["state"] == "Running":
                break
            assert w["state"] not in ("Failed", "Unplaceable"), w
            time.sleep(0.1)
        assert w.get("state") == "Running", f"not Running: {w.get('state')}: {w.get('message')}"

        assert not [s for s in samples if s["ready"] < RANKS and s["pods"]], "a pod existed before its nodes"
        assert not [s for s in samples if s["bound"] and s["pods"] < RANKS], "a rank bound before all existed"
        assert not [s for s in samples if s["unschedulable"]], "a rank could not be scheduled"
        assert any(s["gated"] == RANKS for s in samples) or samples[0]["bound"] == 0

        assert sum(a["nodes"] for a in w["assignments"]) == RANKS
        # Placement keeps each NVLink domain whole inside one pool (the pools hold whole racks).
        assert all(a["nodes"] % PER_RACK == 0 for a in w["assignments"]), w["assignments"]
        assert sum(a["gpus"] for a in w["assignments"]) == 144
        pools = {a["pool"] for a in w["assignments"]}
        pods = v1.list_namespaced_pod("default", label_selector=selector).items
        assert len(pods) == RANKS and all(p.status.phase == "Running" for p in pods)
        nodes = {n.metadata.name: n.metadata.labels for n in v1.list_node().items}
        assert len({p.spec.node_name for p in pods}) == RANKS                  # one pod per node
        by_block: dict[int, set[str]] = {}
        for p in pods:
            labels = nodes[p.spec.node_name]
            assert labels[L.POOL] in pools and labels[L.GPU_PRODUCT] == "GB200"
            rank = int(p.metadata.annotations[INDEX_ANNOTATION])
            by_block.setdefault(rank // PER_RACK, set()).add(labels[L.NVLINK_DOMAIN])
            if provider == "aws":          # an NVL72 domain on AWS is one UltraServer
                assert labels[L.ULTRASERVER] == labels[L.NVLINK_DOMAIN]
            assert p.spec.node_selector[L.NVLINK_DOMAIN] == labels[L.NVLINK_DOMAIN]
            assert not p.spec.scheduling_gates
        # ranks 0-17 on one rack, 18-35 on another, each rack whole (18 nodes of the domain)
        assert sorted(by_block) == [0, 1] and all(len(d) == 1 for d in by_block.values())
        racks = [next(iter(d)) for d in by_block.values()]
        assert racks[0] != racks[1]
        for rack in racks:
            assert sum(1 for lab in nodes.values() if lab.get(L.NVLINK_DOMAIN) == rack) == PER_RACK

        rank0 = next(p for p in pods if p.metadata.annotations[INDEX_ANNOTATION] == "0")
        text = v1.read_namespaced_pod_log(rank0.metadata.name, "default")
        assert f"world={RANKS}" in text and "rank=0" in text, text

        finish(mc, provider, region, name, 0)
        w = wait_for(c, name, lambda w: w["state"] == "Succeeded", "Succeeded")
        events = [e["action"] for e in c.get(f"/v1/workloads/{name}/events").json()["items"]]
        assert "dispatched" in events and "succeeded" in events, events
