"""Azure: resource group + VNet, and a Flexible VM scale set of InfiniBand-capable ND-series VMs."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure

from infra.components.tags import aws_tags
from infra.spec import NodePoolSpec, SpecError
from providers.catalog import default_catalog
from providers.catalog.fabric import gang_fabric_refusal

DEFAULT_IMAGE: azure.compute.ImageReferenceArgsDict = {"publisher": "microsoft-dsvm", "offer": "ubuntu-hpc", "sku": "2204", "version": "latest"}


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
class AzureGpuScaleSetArgs:
    pool: NodePoolSpec
    stack: str
    resource_group: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    admin_username: str = "awan"
    ssh_public_key: str = ""      # providers.azure.credentials.ssh_public_key, via the stack config


class AzureGpuScaleSet(pulumi.ComponentResource):
    """One Flexible VMSS per pool: ``nodes`` VMs of an ND-series size; Spot priority for spot pools;
    no public IP configuration on the NIC."""

    def __init__(self, name: str, args: AzureGpuScaleSetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awan:azure:GpuScaleSet", name, None, opts)
        p = args.pool
        if (why := pool_refusal(p)) is not None:
            raise SpecError(why)
        profile: azure.compute.VirtualMachineScaleSetVMProfileArgsDict = {
            # Login policy: SSH keys only, password login disabled. ARM refuses a Linux profile with
            # passwords off and no key, so the Pulumi engine asks for the key before it runs.
            "os_profile": {"computer_name_prefix": p.pool[:9], "admin_username": args.admin_username,
                           "linux_configuration": _linux(args)},
            "storage_profile": {"image_reference": DEFAULT_IMAGE,
                                "os_disk": {"create_option": "FromImage", "disk_size_gb": 256}},
            "network_profile": {
                "network_api_version": "2020-11-01",     # required by Flexible orchestration
                "network_interface_configurations": [{
                    "name": f"{p.pool}-nic", "primary": True, "enable_accelerated_networking": True,
                    # no public_ip_address_configuration: no public IP
                    "ip_configurations": [{"name": "internal", "primary": True,
                                           "subnet": {"id": args.subnet_id}}]}]},
        }
        if p.spot:
            profile["priority"] = "Spot"
            profile["eviction_policy"] = "Delete"
            profile["billing_profile"] = {"max_price": -1}
        else:
            profile["priority"] = "Regular"
        self.scale_set = azure.compute.VirtualMachineScaleSet(
            f"{name}-vmss", vm_scale_set_name=f"awan-{p.pool}", resource_group_name=args.resource_group,
            location=p.region, orchestration_mode="Flexible", platform_fault_domain_count=1,
            single_placement_group=False, zones=[_zone_number(p.zone)] if p.zone else None,
            sku={"name": p.instance_type, "tier": "Standard", "capacity": p.nodes},
            virtual_machine_profile=profile, tags=aws_tags(args.stack, p),
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"scale_set_id": self.scale_set.id})


def _linux(args: AzureGpuScaleSetArgs) -> azure.compute.LinuxConfigurationArgsDict:
    linux: azure.compute.LinuxConfigurationArgsDict = {"disable_password_authentication": True}
    if args.ssh_public_key:
        linux["ssh"] = {"public_keys": [{"path": f"/home/{args.admin_username}/.ssh/authorized_keys",
                                         "key_data": args.ssh_public_key}]}
    return linux


def _zone_number(zone: str) -> str:
    """Catalog zones look like ``eastus-1``; ARM wants ``1``."""
    return zone.rsplit("-", 1)[-1]
