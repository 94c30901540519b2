"""AWS: the network (VPC, subnets, EFA security group) and the GPU node pool.

A training pool gets a cluster placement group and EFA interfaces on every network card; reserved
pools draw on a capacity reservation or a Capacity Block (UltraServers included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.tags import aws_tags
from infra.spec import NodePoolSpec, ReservationKind
from providers.catalog.fabric import efa_devices

# Deep Learning AMI resolved by the launch template at launch time, so no AMI lookup in the program.
DEFAULT_AMI = "resolve:ssm:/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"


@dataclass
class AwsNetworkArgs:
    region: str
    zones: list[str]
    stack: str
    cidr: str = "10.0.0.0/16"


class AwsNetwork(pulumi.ComponentResource):
    """VPC, one private subnet per zone, and a security group that lets EFA traffic flow."""

    def __init__(self, name: str, args: AwsNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awan:aws:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = aws_tags(args.stack)
        self.vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=args.cidr, enable_dns_hostnames=True,
                               region=args.region, tags=tags, opts=child)
        self.subnets: dict[str, aws.ec2.Subnet] = {}
        for i, zone in enumerate(sorted(args.zones)):
            self.subnets[zone] = aws.ec2.Subnet(
                f"{name}-{zone}", vpc_id=self.vpc.id, availability_zone=zone, region=args.region,
                cidr_block=f"10.0.{i * 16}.0/20", map_public_ip_on_launch=False, tags=tags, opts=child)
        self.efa_sg = aws.ec2.SecurityGroup(f"{name}-efa", vpc_id=self.vpc.id, region=args.region,
                                            description="EFA: all traffic within the group", tags=tags,
                                            opts=child)
        # EFA requires all traffic in and out between members of the same group (self-referencing).
        sg_opts = pulumi.ResourceOptions(parent=self.efa_sg)
        aws.ec2.SecurityGroupRule(f"{name}-efa-in", type="ingress", protocol="-1", from_port=0, to_port=0,
                                  self=True, security_group_id=self.efa_sg.id, region=args.region,
                                  opts=sg_opts)
        aws.ec2.SecurityGroupRule(f"{name}-efa-out", type="egress", protocol="-1", from_port=0, to_port=0,
                                  self=True, security_group_id=self.efa_sg.id, region=args.region,
                                  opts=sg_opts)
        self.register_outputs({"vpc_id": self.vpc.id, "security_group_id": self.efa_sg.id,
                               "subnet_ids": {z: s.id for z, s in self.subnets.items()}})


@dataclass
class AwsGpuNodePoolArgs:
    pool: NodePoolSpec
    stack: str
    subnet_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    ami: str = DEFAULT_AMI
    extra_tags: dict[str, str] = field(default_factory=dict)


class AwsGpuNodePool(pulumi.ComponentResource):
    """``nodes`` instances of one type from one launch template, in a cluster placement group for
    training, drawing on a reservation when the pool is reserved. No public IPs."""

    def __init__(self, name: str, args: AwsGpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awan:aws:GpuNodePool", name, None, opts)
        p, child = args.pool, pulumi.ResourceOptions(parent=self)
        tags = {**aws_tags(args.stack, p), **args.extra_tags}
        self.placement_group: aws.ec2.PlacementGroup | None = None
        if p.training:
            self.placement_group = aws.ec2.PlacementGroup(
                f"{name}-pg", name=f"awan-{p.pool}", strategy="cluster", region=p.region, tags=tags, opts=child)
        self.reservation_id: pulumi.Input[str] | None = None
        if p.reserved:
            self.reservation_id = self._reservation(name, p, tags, child)
        lt_args: dict[str, Any] = {
            "image_id": args.ami, "instance_type": p.instance_type, "region": p.region,
            "network_interfaces": self._interfaces(p, args),
            "tag_specifications": [{"resource_type": "instance", "tags": tags},
                                   {"resource_type": "network-interface", "tags": tags}],
            "tags": tags,
        }
        if p.spot:
            lt_args["instance_market_options"] = {
                "market_type": "spot",
                "spot_options": {"spot_instance_type": "one-time", "instance_interruption_behavior": "terminate"}}
        self.launch_template = aws.ec2.LaunchTemplate(f"{name}-lt", **lt_args, opts=child)
        self.instances = [self._instance(f"{name}-{i}", p, tags, child) for i in range(p.nodes)]
        self.register_outputs({"instance_ids": [i.id for i in self.instances],
                               "placement_group": self.placement_group.name if self.placement_group else None,
                               "reservation_id": self.reservation_id})

    @staticmethod
    def _interfaces(p: NodePoolSpec, args: AwsGpuNodePoolArgs) -> list[dict[str, Any]]:
        # One EFA interface per network card; only card 0 carries the primary (device index 0).
        # No public IP: GPU nodes are reached through the VPC, never from the internet.
        n = efa_devices(p.instance_type)
        base = {"subnet_id": args.subnet_id, "security_groups": [args.security_group_id],
                "associate_public_ip_address": "false", "delete_on_termination": "true"}
        if n == 0:
            return [{**base, "device_index": 0}]
        return [{**base, "device_index": 0 if card == 0 else 1, "network_card_index": card,
                 "interface_type": "efa"} for card in range(n)]

    @staticmethod
    def _reservation(name: str, p: NodePoolSpec, tags: dict[str, str],
                     child: pulumi.ResourceOptions) -> pulumi.Input[str]:
        # What the pool draws on was decided by placement (ReservationKind), never read from an id's prefix.
        kind = p.reservation_source
        if kind in (ReservationKind.RESERVATION, ReservationKind.CAPACITY_BLOCK):
            return p.reservation_id                       # an existing reservation or capacity block
        if kind is ReservationKind.BLOCK_OFFERING:        # buy this Capacity Block offering
            cb = aws.ec2.CapacityBlockReservation(
                f"{name}-cb", capacity_block_offering_id=p.reservation_id, instance_platform="Linux/UNIX",
                region=p.region, tags={**tags, "awan:ultraserver": p.ultraserver_type}, opts=child)
            cb_id: pulumi.Output[str] = cb.id
            return cb_id
        cr = aws.ec2.CapacityReservation(
            f"{name}-cr", instance_type=p.instance_type, instance_platform="Linux/UNIX",
            availability_zone=p.zone, instance_count=p.nodes, instance_match_criteria="targeted",
            end_date_type="unlimited", region=p.region, tags=tags, opts=child)
        cr_id: pulumi.Output[str] = cr.id
        return cr_id

    def _instance(self, name: str, p: NodePoolSpec, tags: dict[str, str],
                  child: pulumi.ResourceOptions) -> aws.ec2.Instance:
        kw: dict[str, Any] = {}
        if self.placement_group is not None:
            kw["placement_group"] = self.placement_group.name
        if self.reservation_id is not None:
            kw["capacity_reservation_specification"] = {
                "capacity_reservation_target": {"capacity_reservation_id": self.reservation_id}}
        # EC2 launches into a Capacity Block only with market type capacity-block (RunInstances refuses
        # a block's reservation otherwise); spot is its own market; on-demand and ODCRs need none.
        market = "capacity-block" if p.capacity_block else "spot" if p.spot else None
        return aws.ec2.Instance(
            name, instance_type=p.instance_type, availability_zone=p.zone, region=p.region,
            launch_template={"id": self.launch_template.id, "version": "$Latest"},
            instance_market_options=({"market_type": market} if market else None),
            tags=tags, opts=child, **kw)
