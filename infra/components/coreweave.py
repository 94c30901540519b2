"""CoreWeave: a VPC and a CKS cluster (pulumi_coreweave), and GPU node pools as the
``compute.coreweave.com/v1alpha1`` NodePool custom resource (pulumi_coreweave has no NodePool)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_coreweave as coreweave
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apiextensions import CustomResource

from infra.components.kube import gpu_taints, node_labels
from infra.components.tags import labels
from infra.spec import NodePoolSpec

NODEPOOL_API_VERSION = "compute.coreweave.com/v1alpha1"


@dataclass
class CksClusterArgs:
    zone: str
    stack: str
    cluster_name: str
    version: str = "v1.32"
    pod_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/16"
    internal_lb_cidr: str = "10.32.4.0/22"


class CksCluster(pulumi.ComponentResource):
    """A private CKS cluster in its own VPC."""

    def __init__(self, name: str, args: CksClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awan:coreweave:CksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Named prefixes: CKS takes its pod, service and internal load-balancer ranges from the VPC by name.
        self.vpc = coreweave.NetworkingVpc(
            f"{name}-vpc", name=f"{args.cluster_name}-vpc", zone=args.zone,
            vpc_prefixes=[{"name": "pod-cidr", "value": args.pod_cidr},
                          {"name": "service-cidr", "value": args.service_cidr},
                          {"name": "internal-lb-cidr", "value": args.internal_lb_cidr}], opts=child)
        self.cluster = coreweave.CksCluster(
            f"{name}-cks", name=args.cluster_name, zone=args.zone, vpc_id=self.vpc.id, version=args.version,
            public=False, pod_cidr_name="pod-cidr", service_cidr_name="service-cidr",
            internal_lb_cidr_names=["internal-lb-cidr"], opts=child)
        # A kubernetes provider for this cluster's API: CKS authenticates with the CoreWeave API token
        # (the coreweave provider's own ``coreweave:token`` config), so the NodePools land in the cluster
        # this stack made. Under the mock runtime the endpoint is not known yet; the kubeconfig says so.
        token = pulumi.Config("coreweave").get_secret("token") or ""
        rendered: pulumi.Output[str] = pulumi.Output.all(self.cluster.api_server_endpoint, token).apply(
            lambda a: cks_kubeconfig(args.cluster_name, a[0] or "", a[1] or ""))
        self.kubeconfig: pulumi.Output[str] = pulumi.Output.secret(rendered)
        self.endpoint: pulumi.Output[str] = self.cluster.api_server_endpoint.apply(lambda e: e or "")
        self.k8s = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig, opts=child)
        self.register_outputs({"vpc_id": self.vpc.id, "cluster_id": self.cluster.id,
                               "api_server_endpoint": self.cluster.api_server_endpoint})


def cks_kubeconfig(cluster: str, endpoint: str, token: str) -> str:
    """A kubeconfig (JSON is YAML) for one CKS cluster, authenticating with a bearer token."""
    server = endpoint if endpoint.startswith("https://") else f"https://{endpoint or 'pending.invalid'}"
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": cluster,
        "clusters": [{"name": cluster, "cluster": {"server": server}}],
        "users": [{"name": cluster, "user": {"token": token}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}]})


@dataclass
class CoreWeaveNodePoolArgs:
    pool: NodePoolSpec
    stack: str
    provider: pulumi.ProviderResource | None = None   # a kubernetes Provider for the CKS cluster


class CoreWeaveNodePool(pulumi.ComponentResource):
    """``targetNodes`` nodes of one instance type; the awan labels land on every node so the adapter
    (and the scheduler) can find them."""

    def __init__(self, name: str, args: CoreWeaveNodePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awan:coreweave:NodePool", name, None, opts)
        p = args.pool
        lbls = labels(args.stack, p)
        # Plus the labels every stack's nodes carry (infra.components.kube, providers.nodelabels): dispatch pins
        # pods by them. CKS sets the topology and instance-type labels itself.
        common = node_labels(p, well_known=False)
        spec: dict[str, Any] = {"instanceType": p.instance_type, "targetNodes": p.nodes, "autoscaling": False,
                                "nodeLabels": {**lbls, "awan-capacity-type": p.capacity_type.value, **common},
                                "nodeTaints": [{"key": t.key, "value": t.value, "effect": t.effect}
                                               for t in gpu_taints(p)]}
        if p.spot:
            spec["computeClass"] = "spot"
        if p.reserved and p.reservation_id:
            spec["reservation"] = p.reservation_id
        self.node_pool = CustomResource(
            f"{name}-nodepool", api_version=NODEPOOL_API_VERSION, kind="NodePool",
            metadata={"name": p.pool, "labels": lbls}, spec=spec,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider))
        self.register_outputs({"node_pool": p.pool})
