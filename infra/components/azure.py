"""Azure: resource group + VNet, the stack's AKS cluster, and its GPU agent pools of ND-series VMs.

GPU nodes are AKS agent pools (AKS makes and joins their scale set), one per Awan pool; the local engine
applies an agent pool as that scale set through the adapter's SupportsScaleSets.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_azure_native as azure

from infra.components.kube import gpu_taints, node_labels
from infra.components.tags import aws_tags
from infra.spec import NodePoolSpec, SpecError
from providers.catalog import default_catalog
from providers.catalog.fabric import gang_fabric_refusal


def pool_refusal(p: NodePoolSpec) -> str | None:
    """Why this component cannot provision ``p``, or None: training pools need an InfiniBand (ND 'r') size.
    The fact is the catalog's (its fabric column), read through the rule placement applies too."""
    if not p.training:
        return None
    try:
        it = default_catalog().instance_type("azure", p.instance_type)
    except KeyError:
        return f"pool {p.pool!r}: instance_type: {p.instance_type} is not in the catalog"
    why = gang_fabric_refusal(it)
    return (f"pool {p.pool!r}: instance_type: {why} (e.g. Standard_ND96isr_H100_v5)" if why else None)


@dataclass
class AzureNetworkArgs:
    location: str
    stack: str
    resource_group: str
    cidr: str = "10.20.0.0/16"


class AzureNetwork(pulumi.ComponentResource):
    def __init__(self, name: str, args: AzureNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awan:azure:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = aws_tags(args.stack)
        self.resource_group = azure.resources.ResourceGroup(
            f"{name}-rg", resource_group_name=args.resource_group, location=args.location, tags=tags, opts=child)
        self.vnet = azure.network.VirtualNetwork(
            f"{name}-vnet", resource_group_name=self.resource_group.name, location=args.location,
            address_space={"address_prefixes": [args.cidr]}, tags=tags, opts=child)
        self.subnet = azure.network.Subnet(
            f"{name}-gpu", resource_group_name=self.resource_group.name, virtual_network_name=self.vnet.name,
            address_prefix=args.cidr.replace("/16", "/20"), opts=child)
        self.register_outputs({"resource_group": self.resource_group.name, "subnet_id": self.subnet.id})


@dataclass
class AksClusterArgs:
    location: str
    stack: str
    cluster_name: str
    resource_group: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    admin_username: str = "awan"
    ssh_public_key: str = ""
    kubernetes_version: str = ""          # empty: AKS's default version
    system_vm_size: str = "Standard_D4s_v5"
    pod_cidr: str = "192.168.0.0/16"      # Azure CNI overlay: pods are not on the VNet
    service_cidr: str = "10.21.0.0/16"
    dns_service_ip: str = "10.21.0.10"


class AksCluster(pulumi.ComponentResource):
    """A private AKS cluster (Azure CNI overlay, managed identity) with a small System pool for the cluster's
    own pods; every GPU node comes from an Awan agent pool (AksGpuAgentPool)."""

    def __init__(self, name: str, args: AksClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awan:azure:AksCluster", name, None, opts)
        kw: dict[str, Any] = {}
        if args.ssh_public_key:
            kw["linux_profile"] = {"admin_username": args.admin_username,
                                   "ssh": {"public_keys": [{"key_data": args.ssh_public_key}]}}
        if args.kubernetes_version:
            kw["kubernetes_version"] = args.kubernetes_version
        self.cluster = azure.containerservice.ManagedCluster(
            f"{name}-aks", resource_name_=args.cluster_name, resource_group_name=args.resource_group,
            location=args.location, dns_prefix=args.cluster_name, identity={"type": "SystemAssigned"},
            enable_rbac=True, sku={"name": "Base", "tier": "Standard"},
            agent_pool_profiles=[{"name": "system", "mode": "System", "vm_size": args.system_vm_size, "count": 2,
                                  "os_type": "Linux", "type": "VirtualMachineScaleSets",
                                  "vnet_subnet_id": args.subnet_id}],
            network_profile={"network_plugin": "azure", "network_plugin_mode": "overlay",
                             "pod_cidr": args.pod_cidr, "service_cidr": args.service_cidr,
                             "dns_service_ip": args.dns_service_ip},
            api_server_access_profile={"enable_private_cluster": True},
            tags=aws_tags(args.stack), opts=pulumi.ResourceOptions(parent=self), **kw)
        creds = azure.containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=args.resource_group, resource_name=self.cluster.name)
        self.kubeconfig: pulumi.Output[str] = creds.kubeconfigs.apply(
            lambda ks: base64.b64decode(ks[0].value).decode() if ks else "")
        self.endpoint: pulumi.Output[str] = self.cluster.private_fqdn.apply(lambda f: f"https://{f}" if f else "")
        self.register_outputs({"cluster_id": self.cluster.id, "endpoint": self.endpoint})


def agent_pool_name(pool: str) -> str:
    """AKS names Linux agent pools with at most 12 lowercase letters and digits, starting with a letter; Awan
    pool names are longer DNS labels. A stable digest of the pool's name (its nodes carry the full name as
    the ``awan.dev/pool`` label)."""
    return "g" + hashlib.sha256(pool.encode()).hexdigest()[:11]


@dataclass
class AksGpuAgentPoolArgs:
    pool: NodePoolSpec
    stack: str
    resource_group: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    subnet_id: pulumi.Input[str]


class AksGpuAgentPool(pulumi.ComponentResource):
    """One AKS agent pool (a VM scale set AKS owns) per Awan pool: ``nodes`` VMs of an ND-series size, the
    GPU driver installed by AKS, the pool's labels and the GPU taint, Spot for spot pools, no public IPs.
    Training pools need an InfiniBand size (``pool_refusal``): AKS keeps a pool's VMs in one scale set,
    whose VMs share an InfiniBand fabric."""

    def __init__(self, name: str, args: AksGpuAgentPoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awan:azure:GpuAgentPool", name, None, opts)
        p = args.pool
        if (why := pool_refusal(p)) is not None:
            raise SpecError(why)
        kw: dict[str, Any] = {}
        if p.spot:
            kw.update(scale_set_priority="Spot", scale_set_eviction_policy="Delete", spot_max_price=-1)
        else:
            kw["scale_set_priority"] = "Regular"
        if p.zone:
            kw["availability_zones"] = [_zone_number(p.zone)]
        self.agent_pool = azure.containerservice.AgentPool(
            f"{name}-pool", agent_pool_name=agent_pool_name(p.pool), resource_name_=args.cluster_name,
            resource_group_name=args.resource_group, mode="User", os_type="Linux", os_sku="Ubuntu",
            type="VirtualMachineScaleSets", vm_size=p.instance_type, count=p.nodes, enable_auto_scaling=False,
            enable_node_public_ip=False, vnet_subnet_id=args.subnet_id, os_disk_size_gb=256,
            gpu_profile={"driver": "Install"},
            node_labels=node_labels(p, well_known=False),        # AKS sets region/zone/instance type itself
            node_taints=[t.flag() for t in gpu_taints(p)],
            # On the scale set and its VMs: the adapter finds the pool's nodes by these.
            tags={**aws_tags(args.stack, p), "awan:scale-set": f"awan-{p.pool}"},
            opts=pulumi.ResourceOptions(parent=self), **kw)
        self.register_outputs({"agent_pool_id": self.agent_pool.id})


def _zone_number(zone: str) -> str:
    """Catalog zones look like ``eastus-1``; ARM wants ``1``."""
    return zone.rsplit("-", 1)[-1]
