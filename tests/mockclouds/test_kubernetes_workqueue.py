"""The fake cluster's controllers work per object: a write sets off reconciles of the objects it touched
(and their owners), not of the whole cluster. Counted, never timed: ``Cluster.stats`` counts reconciles
per controller and ``Kubelet.visits`` the pods looked at.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from mockclouds.kubernetes.cluster import Cluster
from mockclouds.kubernetes.resources import DEPLOYMENTS, JOBS, NODES, PODS

NS = "default"


def _node(name: str, gpus: int = 8, labels: dict[str, str] | None = None) -> dict[str, Any]:
    res = {"cpu": "96", "memory": "1024Gi", "nvidia.com/gpu": str(gpus), "pods": "110"}
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "status": {"capacity": res, "allocatable": dict(res),
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def _job(name: str, pool: str, duration: str = "inf") -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"template": {
                "metadata": {"annotations": {"mock.awan.dev/duration-seconds": duration}},
                "spec": {"restartPolicy": "Never", "nodeSelector": {"pool": pool},
                         "containers": [{"name": "main", "image": "busybox",
                                         "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}}}


def _deployment(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "srv", "image": "nginx"}]}}}}


def _phase(c: Cluster, name: str) -> list[str]:
    pods, _ = c.list(PODS, NS, lambda o: (o["metadata"].get("labels") or {}).get("job-name") == name)
    return [str((p.get("status") or {}).get("phase")) for p in pods]


def _work(c: Cluster) -> Counter[str]:
    return c.stats + c.kubelet.visits


def _cluster_with(n: int) -> Cluster:
    """``n`` running one-pod Jobs, each on its own node of its own pool."""
    c = Cluster()
    c.RESYNC_S = 3600.0          # no resync inside the measurement
    for i in range(n + 1):
        c.create(NODES, "", _node(f"node-{i}", labels={"pool": f"p{i}"}))
    for i in range(n):
        c.create(JOBS, NS, _job(f"job-{i}", f"p{i}"))
    assert all(_phase(c, f"job-{i}") == ["Running"] for i in range(n))
    return c


def _one_more_job(c: Cluster, n: int) -> Counter[str]:
    before = _work(c)
    c.create(JOBS, NS, _job(f"job-{n}", f"p{n}"))
    assert _phase(c, f"job-{n}") == ["Running"]
    return _work(c) - before


def test_the_work_of_one_write_does_not_grow_with_the_cluster() -> None:
    small, large = _cluster_with(4), _cluster_with(60)
    try:
        w_small, w_large = _one_more_job(small, 4), _one_more_job(large, 60)
        # The same write costs the same reconciles whether 4 or 60 other Jobs run beside it (a timer firing
        # in between may add a visit or two, never one per Job).
        assert sum(w_large.values()) <= sum(w_small.values()) + 2, (w_small, w_large)
        assert w_large["job"] <= 6 and w_large["kubelet"] <= 12 and w_large["schedule"] <= 3, w_large
        # ... and a write to one Job's pod wakes that Job, not the others.
        before = _work(large)
        pod = large.list(PODS, NS, lambda o: (o["metadata"].get("labels") or {}).get("job-name") == "job-7")[0][0]
        large.finish_pods(NS, lambda o: o["metadata"]["name"] == pod["metadata"]["name"], 0)
        spent = _work(large) - before
        assert large.get(JOBS, NS, "job-7")["status"]["succeeded"] == 1
        assert spent["job"] <= 4 and spent["kubelet"] <= 6, spent
    finally:
        small.close()
        large.close()


def test_a_deployment_converges_through_the_queues_and_a_resync_repairs_a_lost_trigger() -> None:
    c = Cluster()
    try:
        c.create(NODES, "", _node("n0"))
        c.create(DEPLOYMENTS, NS, _deployment("web"))
        d = c.get(DEPLOYMENTS, NS, "web")
        assert d["status"]["readyReplicas"] == 2 and d["status"]["replicas"] == 2
        # Lose the triggers of a pod deletion (as a missed watch event would): only the resync sees it.
        with c.store.lock:
            pods, _ = c.list(PODS, NS, lambda o: True)
            c.store.delete(PODS, NS, pods[0]["metadata"]["name"])
            for q in c.informer.queues.all():
                q.clear()
            c.reconcile()
            assert len(c.list(PODS, NS, lambda o: True)[0]) == 1        # nothing was triggered
            c.resync()
            c.reconcile()
        assert len(c.list(PODS, NS, lambda o: True)[0]) == 2
    finally:
        c.close()


def test_pods_finish_on_the_timer_without_a_write() -> None:
    n = 3
    c = Cluster()
    try:
        c.create(NODES, "", _node("n0", gpus=8 * n))
        for i in range(n):
            body = _job(f"short-{i}", "any", duration="0.2")
            del body["spec"]["template"]["spec"]["nodeSelector"]
            c.create(JOBS, NS, body)
        assert c.wait_for(lambda: all(_phase(c, f"short-{i}") == ["Succeeded"] for i in range(n)), 60)
        assert c.wait_for(lambda: all(any(x.get("type") == "Complete" for x in
                                          (c.get(JOBS, NS, f"short-{i}").get("status") or {}).get("conditions", []))
                                      for i in range(n)), 60)
    finally:
        c.close()
