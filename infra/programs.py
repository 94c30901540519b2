"""One Pulumi program per stack: the network/cluster of the (provider, region) and its node pools.

``program_for(stack)`` returns an inline program (a function of no arguments) that the Automation API
and the local engine run alike. Stack outputs: ``pools`` maps pool -> the ids of what it holds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from typing import Any

import pulumi

from infra.spec import NodePoolSpec, StackSpec

Program = Callable[[], None]


def cluster_name(stack: StackSpec) -> str:
    """The stack's Kubernetes cluster: ``cluster`` of the stack's config (one of the configuration's
    ``clusters:`` entries, several per provider kind), else one per (provider, region)."""
    return stack.config.get("cluster") or f"awan-{stack.provider}-{stack.region}".lower()


def _export_cluster(name: str, endpoint: pulumi.Input[str], kubeconfig: pulumi.Input[str]) -> None:
    pulumi.export("cluster", {"name": name, "endpoint": endpoint})
    pulumi.export("kubeconfig", pulumi.Output.secret(kubeconfig))


def _aws(stack: StackSpec, pools: tuple[NodePoolSpec, ...]) -> dict[str, pulumi.Output[Any]]:
    from infra.components.aws import (
        AwsGpuNodePool,
        AwsGpuNodePoolArgs,
        AwsNetwork,
        AwsNetworkArgs,
        EksCluster,
        EksClusterArgs,
    )

    zones = sorted({p.zone for p in stack.pools}) or [f"{stack.region}a"]
    net = AwsNetwork(stack.name, AwsNetworkArgs(region=stack.region, zones=zones, stack=stack.name,
                                                 cidr=stack.config.get("cidr", "10.0.0.0/16")))
    name = cluster_name(stack)
    eks = EksCluster(stack.name, EksClusterArgs(
        region=stack.region, stack=stack.name, cluster_name=name, subnet_ids=[s.id for s in net.subnets.values()],
        security_group_id=net.efa_sg.id, version=stack.config.get("kubernetes_version") or EksClusterArgs.version))
    _export_cluster(name, eks.join.endpoint, eks.kubeconfig)
    out = {}
    for p in pools:
        pool = AwsGpuNodePool(p.pool, AwsGpuNodePoolArgs(
            pool=p, stack=stack.name, subnet_id=net.subnets[p.zone].id, security_group_id=net.efa_sg.id,
            ami=stack.config.get("ami", ""), cluster=eks.join,
            # The tag the Kubernetes cloud provider and load-balancer controller find a cluster's nodes by.
            extra_tags={f"kubernetes.io/cluster/{name}": "owned"}))
        out[p.pool] = pulumi.Output.all(*[i.id for i in pool.instances])
    return out


def _is_tpu(p: NodePoolSpec) -> bool:
    return p.instance_type.startswith("tpu-")


def _gcp(stack: StackSpec, pools: tuple[NodePoolSpec, ...]) -> dict[str, pulumi.Output[Any]]:
    from infra.components.gcp import (
        GcpGpuNodePool,
        GcpGpuNodePoolArgs,
        GcpNetwork,
        GcpNetworkArgs,
        GcpTpuSlice,
        GcpTpuSliceArgs,
        GkeCluster,
        GkeClusterArgs,
    )
    from providers.catalog.fabric import gpudirect

    project = stack.config.get("project", "awan")
    # The GPUDirect VPCs the training pools need (one per extra NIC, shared by the stack's pools).
    fabrics = [(f, p.zone) for p in stack.pools if p.training and (f := gpudirect(p.instance_type)) is not None]
    nics = max((f.nics for f, _ in fabrics), default=0)
    rdma_zone = next((z for f, z in fabrics if f.kind == "rdma"), "")
    net = GcpNetwork(stack.name, GcpNetworkArgs(project=project, region=stack.region, stack=stack.name,
                                                gpu_nics=nics, rdma_zone=rdma_zone))
    name = cluster_name(stack)
    gke = GkeCluster(stack.name, GkeClusterArgs(project=project, region=stack.region, stack=stack.name,
                                                cluster_name=name, network=net.network.id,
                                                subnetwork=net.subnetwork.id))
    _export_cluster(name, gke.endpoint, gke.kubeconfig)
    gpu_nets: list[tuple[pulumi.Input[str], pulumi.Input[str]]] = [(n.name, s.name) for n, s in net.gpu_networks]
    out = {}
    for p in pools:
        if _is_tpu(p):
            tpu = GcpTpuSlice(p.pool, GcpTpuSliceArgs(pool=p, stack=stack.name, project=project,
                                                       subnetwork=net.subnetwork.id))
            out[p.pool] = pulumi.Output.all(*[s.id for s in tpu.slices])
        else:
            pool = GcpGpuNodePool(p.pool, GcpGpuNodePoolArgs(pool=p, stack=stack.name, project=project,
                                                             cluster=gke.cluster.id, gpu_networks=gpu_nets))
            out[p.pool] = pulumi.Output.all(pool.node_pool.id)
    return out


def _azure(stack: StackSpec, pools: tuple[NodePoolSpec, ...]) -> dict[str, pulumi.Output[Any]]:
    from infra.components.azure import (
        AksCluster,
        AksClusterArgs,
        AksGpuAgentPool,
        AksGpuAgentPoolArgs,
        AzureNetwork,
        AzureNetworkArgs,
    )

    net = AzureNetwork(stack.name, AzureNetworkArgs(
        location=stack.region, stack=stack.name,
        resource_group=stack.config.get("resource_group") or f"awan-{stack.region}"))
    name = cluster_name(stack)
    aks = AksCluster(stack.name, AksClusterArgs(
        location=stack.region, stack=stack.name, cluster_name=name, resource_group=net.resource_group.name,
        subnet_id=net.subnet.id, ssh_public_key=stack.config.get("ssh_public_key", ""),
        kubernetes_version=stack.config.get("kubernetes_version", "")))
    _export_cluster(name, aks.endpoint, aks.kubeconfig)
    # The cluster's ARM name, carried through its id so the pools wait for the cluster.
    aks_name: pulumi.Output[str] = pulumi.Output.all(aks.cluster.id, name).apply(lambda a: str(a[1]))
    out = {}
    for p in pools:
        ap = AksGpuAgentPool(p.pool, AksGpuAgentPoolArgs(pool=p, stack=stack.name,
                                                         resource_group=net.resource_group.name,
                                                         cluster_name=aks_name, subnet_id=net.subnet.id))
        out[p.pool] = pulumi.Output.all(ap.agent_pool.id)
    return out


def _coreweave(stack: StackSpec, pools: tuple[NodePoolSpec, ...]) -> dict[str, pulumi.Output[Any]]:
    from infra.components.coreweave import (
        CksCluster,
        CksClusterArgs,
        CoreWeaveNodePool,
        CoreWeaveNodePoolArgs,
    )

    zone = stack.config.get("zone") or (stack.pools[0].zone if stack.pools else stack.region)
    name = stack.config.get("cluster") or f"awan-{stack.region.lower()}"
    cks = CksCluster(stack.name, CksClusterArgs(zone=zone, stack=stack.name, cluster_name=name))
    _export_cluster(name, cks.endpoint, cks.kubeconfig)
    out = {}
    for p in pools:
        # Bound to the new cluster's API, not to whatever kubeconfig the Pulumi process happens to have.
        np = CoreWeaveNodePool(p.pool, CoreWeaveNodePoolArgs(pool=p, stack=stack.name, provider=cks.k8s))
        out[p.pool] = pulumi.Output.all(np.node_pool.id)
    return out


def _oci(stack: StackSpec, pools: tuple[NodePoolSpec, ...]) -> dict[str, pulumi.Output[Any]]:
    from infra.components.oci import (
        OciGpuNodePool,
        OciGpuNodePoolArgs,
        OciNetwork,
        OciNetworkArgs,
        OkeCluster,
        OkeClusterArgs,
    )

    compartment = stack.config.get("compartment", "")
    net = OciNetwork(stack.name, OciNetworkArgs(region=stack.region, stack=stack.name, compartment_id=compartment))
    name = cluster_name(stack)
    oke = OkeCluster(stack.name, OkeClusterArgs(region=stack.region, stack=stack.name, cluster_name=name,
                                                compartment_id=compartment, vcn_id=net.vcn.id, subnet_id=net.subnet.id,
                                                tenancy_id=stack.config.get("tenancy", "")))
    _export_cluster(name, oke.endpoint, oke.kubeconfig)
    out: dict[str, pulumi.Output[Any]] = {}
    for p in pools:
        pool = OciGpuNodePool(p.pool, OciGpuNodePoolArgs(pool=p, stack=stack.name, compartment_id=compartment,
                                                         subnet_id=net.subnet.id, cluster=oke.join,
                                                         image_id=stack.config.get("image", "")))
        out[p.pool] = pulumi.Output.all(*pool.ids)
    return out


_BUILDERS: dict[str, Callable[[StackSpec, tuple[NodePoolSpec, ...]], dict[str, pulumi.Output[Any]]]] = {
    "aws": _aws, "gcp": _gcp, "azure": _azure, "coreweave": _coreweave, "oci": _oci}


def _azure_refusal(p: NodePoolSpec) -> str | None:
    from infra.components.azure import pool_refusal

    return pool_refusal(p)


# What a provider's components would refuse to build, asked before building: a refused pool is left out
# of the program and reported (output ``refused``), so one bad pool fails alone and the rest of the stack
# is applied.
_REFUSALS: dict[str, Callable[[NodePoolSpec], str | None]] = {"azure": _azure_refusal}


def refusals(stack: StackSpec) -> dict[str, str]:
    """pool -> why its provider's component cannot build it."""
    check = _REFUSALS.get(stack.provider)
    if check is None:
        return {}
    return {p.pool: why for p in stack.pools if (why := check(p)) is not None}


def program_for(stack: StackSpec, only: Collection[str] | None = None) -> Program:
    """The inline program for ``stack``. An empty stack still declares its network, so that removing
    the last pool deletes only the pool; ``destroy`` removes the rest.

    ``only`` (the local engine's incremental render, infra.engines.rendercache): declare the stack's own
    resources (network, cluster: derived from *all* its pools, as always) and only these pools; the
    ``pools`` output then names only these. A pool's resources depend on its own spec and the stack's
    resources alone, never on another pool, which is what lets a render skip the pools it already has."""
    build = _BUILDERS[stack.provider]
    refused = refusals(stack)
    buildable = dataclasses.replace(stack, pools=tuple(p for p in stack.pools if p.pool not in refused))
    declared = buildable.pools if only is None else tuple(p for p in buildable.pools if p.pool in only)

    def program() -> None:
        pools = build(buildable, declared)
        pulumi.export("stack", stack.name)
        pulumi.export("pools", {name: ids for name, ids in pools.items()})
        if refused:
            pulumi.export("refused", dict(refused))

    return program
