"""Pod scheduling readiness in the fake cluster, through the official kubernetes client: a pod with
``schedulingGates`` stays Pending (PodScheduled=False, SchedulingGated) on a node it fits, and is bound
once its gates are removed, with a nodeSelector narrowed while it was gated (what Kueue's topology-aware
scheduling does)."""

from __future__ import annotations

from tests.mockclouds.test_kubernetes_workloads import NS, job, kube, wait

__all__ = ["kube"]          # the fixture, shared


def test_a_gated_pod_waits_and_is_bound_once_ungated_with_its_narrowed_selector(kube):
    kube.pool("gated", 2)
    body = job("gated", pool="gated", completions=1, parallelism=1, gpus=8, command="sleep 60")
    body["spec"]["template"]["spec"]["schedulingGates"] = [{"name": "awan.dev/topology"}]
    kube.batch.create_namespaced_job(NS, body)
    (pod,) = wait(lambda: kube.pods("job-name=gated"), "the pod")
    name = pod.metadata.name

    def scheduled() -> object:
        p = kube.core.read_namespaced_pod(name, NS)
        return next((c for c in p.status.conditions or [] if c.type == "PodScheduled"), None)

    cond = wait(scheduled, "PodScheduled condition")
    assert (cond.status, cond.reason) == ("False", "SchedulingGated")
    assert kube.core.read_namespaced_pod(name, NS).spec.node_name is None
    kube.core.patch_namespaced_pod(name, NS, [
        {"op": "add", "path": "/spec/nodeSelector/kubernetes.io~1hostname", "value": "gated-1"},
        {"op": "remove", "path": "/spec/schedulingGates"}])
    p = wait(lambda: (p := kube.core.read_namespaced_pod(name, NS)).spec.node_name and p, "the pod bound")
    assert p.spec.node_name == "gated-1" and not p.spec.scheduling_gates
