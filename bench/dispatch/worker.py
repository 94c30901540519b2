"""One measurement of the dispatch suite, run as its own process (``python bench/dispatch/worker.py N``)
so that the peer (the code before the mock's work queues) runs the same script against its own
``mockclouds`` and ``controlplane``, found first on PYTHONPATH. Imports nothing from ``bench``.

It starts the CoreWeave mock (a fake CKS cluster over HTTP), gives it N one-node NodePools (one per
workload, as Awan provisions), then dispatches N training workloads the way the reconcile loop does:
``controlplane.dispatch.render`` makes each workload's objects (a headless Service and an Indexed Job)
and ``KubeCluster`` creates them through the official ``kubernetes`` client. A watch on the pods (same
client) stamps when each workload's pods are all Running. Prints one JSON object on stdout.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

NS = "default"
INSTANCE_TYPE = "gd-8xh100ib-i128"      # 8 x H100 per node
ZONE = "US-EAST-04A"


def _manifest(i: int, nodes: int) -> dict[str, Any]:
    return {"apiVersion": "awan.dev/v1alpha1", "kind": "GPUWorkload",
            "metadata": {"name": f"bench-{i}", "team": "bench"},
            "spec": {"kind": "training", "gpus": {"model": ["H100"], "count": 8 * nodes, "perNode": 8},
                     "template": {"image": "ghcr.io/example/train:1.0",
                                  "command": ["sh", "-c", "echo rank=$RANK; sleep infinity"]}}}


def _pools(backend: Any, n: int, nodes: int) -> None:
    """One NodePool per workload, its nodes labelled with the workload's Awan pool (set up in-process:
    not measured)."""
    from mockclouds.kubernetes.resources import NODEPOOLS
    from providers.nodelabels import POOL

    for i in range(n):
        backend.create(NODEPOOLS, "", {
            "apiVersion": "compute.coreweave.com/v1alpha1", "kind": "NodePool",
            "metadata": {"name": f"bench-{i}", "labels": {"compute.coreweave.com/zone": ZONE}},
            "spec": {"instanceType": INSTANCE_TYPE, "targetNodes": nodes, "nodeLabels": {POOL: f"bench-{i}"}}})


def measure(n: int, nodes: int) -> dict[str, Any]:
    import httpx
    from kubernetes import client, watch
    from pydantic import SecretStr

    from controlplane.dispatch.kube import KubeCluster
    try:
        from controlplane.dispatch import gang
    except ImportError:   # the peer predates the all-or-nothing start: its Jobs are not created suspended
        gang = None  # type: ignore[assignment]
    from controlplane.dispatch.render import L_WORKLOAD, Slot, render
    from controlplane.model.workload import GPUWorkload
    from mockclouds.launcher import MOCK_SECRETS, MockClouds
    from providers.config import ClusterConfig

    mc = MockClouds(clouds=("coreweave",)).start()
    try:
        url = mc.urls["coreweave"]
        httpx.post(f"{url}/_mock/capacity", json={"free": n * nodes + 8}, timeout=60).raise_for_status()
        backend = mc.backend("coreweave")
        region = backend.ledger.zones.get(ZONE, "")
        t_setup = time.monotonic()
        _pools(backend, n, nodes)
        setup_s = time.monotonic() - t_setup
        token = MOCK_SECRETS["coreweave"]["token"]
        cluster = KubeCluster(ClusterConfig(name="bench", provider="coreweave", endpoint=url,
                                            credentials={"token": SecretStr(token)}, timeout_s=120.0))
        plans = []
        for i in range(n):
            wl = GPUWorkload.model_validate(_manifest(i, nodes))
            plan = render(wl, f"bench-{i}", 0, [Slot("coreweave", region, f"bench-{i}", nodes, 8)],
                          {("coreweave", region): NS})
            assert not plan.error, plan.error
            plans.append((f"bench-{i}", [o for u in plan.units for o in u.objects]))

        # The watch: the official client's, on the pods Awan owns.
        cfg = client.Configuration()
        cfg.host = url
        cfg.api_key, cfg.api_key_prefix = {"authorization": token}, {"authorization": "Bearer"}
        api = client.ApiClient(cfg)
        core = client.CoreV1Api(api)
        running: dict[str, set[str]] = {}
        done_at: dict[str, float] = {}
        all_done = threading.Event()
        w = watch.Watch()  # type: ignore[no-untyped-call]

        def follow() -> None:
            for ev in w.stream(core.list_namespaced_pod, NS,  # type: ignore[no-untyped-call]
                               label_selector="app.kubernetes.io/managed-by=awan", timeout_seconds=3600):
                pod = ev["object"]
                key = (pod.metadata.labels or {}).get(L_WORKLOAD, "")
                if pod.status and pod.status.phase == "Running" and key not in done_at:
                    running.setdefault(key, set()).add(pod.metadata.name)
                    if len(running[key]) >= nodes:
                        done_at[key] = time.monotonic()
                        if len(done_at) >= n:
                            all_done.set()
                            return

        t = threading.Thread(target=follow, daemon=True)
        t.start()
        time.sleep(0.5)            # the watch is open before the first object goes in
        submitted: dict[str, float] = {}
        objects = 0
        t0 = time.monotonic()
        for i, (key, objs) in enumerate(plans):
            submitted[key] = time.monotonic()
            for o in objs:
                cluster.create(o)
                objects += 1
            # A training Job is created suspended (all-or-nothing start); the loop resumes it once every
            # node of its pool is Ready with a rank's GPUs free: the same check and call, per workload.
            if gang is None:
                continue
            want = {f"bench-{i}": nodes}
            views = gang.node_views(cluster.nodes(gang.node_selector(want)), [], key, 0)
            hold = gang.admit(want, 8, views, nvlink=False, domain_gpus=None)
            assert hold.ready, hold.why
            for o in objs:
                if o.get("kind") == "Job" and (o.get("spec") or {}).get("suspend"):
                    cluster.resume(o["metadata"]["name"])
        dispatch_s = time.monotonic() - t0
        ok = all_done.wait(timeout=3600)
        w.stop()  # type: ignore[no-untyped-call]
        makespan = (max(done_at.values()) - t0) if done_at else float("nan")
        lat = sorted(done_at[k] - submitted[k] for k in done_at)
        cluster.close()
        api.close()  # type: ignore[no-untyped-call]
        return {"n": n, "nodes_per_workload": nodes, "ok": ok, "running": len(done_at), "objects": objects,
                "setup_s": round(setup_s, 3), "dispatch_s": round(dispatch_s, 4),
                "objects_per_s": round(objects / dispatch_s, 1) if dispatch_s > 0 else None,
                "all_running_s": round(makespan, 4), "latencies_s": [round(x, 5) for x in lat]}
    finally:
        mc.stop()


if __name__ == "__main__":
    size = int(sys.argv[1])
    per = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    print(json.dumps(measure(size, per)))
