"""AWS: the network (VPC, subnets, EFA security group), the stack's EKS cluster, and the GPU node pool.

The nodes are self-managed EC2 instances that join the EKS cluster with bootstrap user-data (nodeadm's
NodeConfig, as Karpenter launches them), not a managed node group: each instance is launched on its own,
so it can take a Capacity Block's market type, an UltraServer's reservation and a cluster placement
group, and the local engine applies the very same resources. The node role is let in through an EKS
access entry of type EC2_LINUX (the cluster's authentication mode is API, no aws-auth ConfigMap).

A training pool gets a cluster placement group and EFA interfaces on every network card (the number is
the catalog's, providers/catalog/fabric.efa_devices); reserved pools draw on a capacity reservation or a
Capacity Block (UltraServers included).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.kube import gpu_taints, label_flag, node_labels
from infra.components.tags import aws_tags
from infra.spec import NodePoolSpec, ReservationKind
from providers.catalog.fabric import efa_devices

EKS_VERSION = "1.32"
SERVICE_CIDR = "172.20.0.0/16"
# The EKS-optimized Amazon Linux 2023 NVIDIA AMI (drivers, container toolkit, EFA, nodeadm), resolved by
# the launch template at launch time (no AMI lookup in the program). Grace (GB200/GB300) hosts are arm64.
_EKS_GPU_AMI = "resolve:ssm:/aws/service/eks/optimized-ami/{version}/amazon-linux-2023/{arch}/nvidia/recommended/image_id"
_ASSUME = {"ec2": "ec2.amazonaws.com", "eks": "eks.amazonaws.com"}
CLUSTER_POLICIES = ("arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",)
NODE_POLICIES = ("arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
                 "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
                 "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
                 "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")


def gpu_ami(gpu_model: str, version: str = EKS_VERSION) -> str:
    return _EKS_GPU_AMI.format(version=version, arch="arm64" if gpu_model.startswith("GB") else "x86_64")


def _assume_role(service: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": _ASSUME[service]}}]})


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
        for i, zone in enumerate(eks_zones(args.region, args.zones)):
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


def eks_zones(region: str, zones: list[str]) -> list[str]:
    """The pools' zones, plus a second one when they use only one: EKS wants subnets in two zones."""
    out = sorted(set(zones))
    for letter in "abc":
        if len(out) >= 2:
            break
        if f"{region}{letter}" not in out:
            out.append(f"{region}{letter}")
    return sorted(out)


@dataclass
class EksClusterArgs:
    region: str
    stack: str
    cluster_name: str
    subnet_ids: list[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    version: str = EKS_VERSION
    service_cidr: str = SERVICE_CIDR


@dataclass
class EksJoin:
    """What a node needs to join the cluster: read by the node pool's user-data and instance profile."""

    name: pulumi.Input[str]
    endpoint: pulumi.Input[str]
    certificate_authority: pulumi.Input[str]
    service_cidr: str
    instance_profile_arn: pulumi.Input[str]
    version: str = EKS_VERSION


class EksCluster(pulumi.ComponentResource):
    """A private EKS cluster (API authentication mode, endpoint reachable from the VPC only), its role,
    and the node role + instance profile the GPU nodes join with (an EC2_LINUX access entry)."""

    def __init__(self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awan:aws:EksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = aws_tags(args.stack)
        self.cluster_role = aws.iam.Role(f"{name}-cluster-role", assume_role_policy=_assume_role("eks"),
                                         tags=tags, opts=child)
        cluster_attach = [aws.iam.RolePolicyAttachment(f"{name}-cluster-{i}", role=self.cluster_role.name,
                                                       policy_arn=arn, opts=child)
                          for i, arn in enumerate(CLUSTER_POLICIES)]
        self.node_role = aws.iam.Role(f"{name}-node-role", assume_role_policy=_assume_role("ec2"), tags=tags,
                                      opts=child)
        for i, arn in enumerate(NODE_POLICIES):
            aws.iam.RolePolicyAttachment(f"{name}-node-{i}", role=self.node_role.name, policy_arn=arn, opts=child)
        self.instance_profile = aws.iam.InstanceProfile(f"{name}-node-profile", role=self.node_role.name,
                                                        tags=tags, opts=child)
        self.cluster = aws.eks.Cluster(
            f"{name}-eks", name=args.cluster_name, role_arn=self.cluster_role.arn, version=args.version,
            region=args.region,
            vpc_config={"subnet_ids": args.subnet_ids, "security_group_ids": [args.security_group_id],
                        "endpoint_private_access": True, "endpoint_public_access": False},
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": True},
            kubernetes_network_config={"service_ipv4_cidr": args.service_cidr},
            tags=tags, opts=pulumi.ResourceOptions(parent=self, depends_on=cluster_attach))
        # Self-managed nodes are let in by their role: an EC2_LINUX access entry (group system:nodes).
        self.node_access = aws.eks.AccessEntry(
            f"{name}-nodes", cluster_name=self.cluster.name, principal_arn=self.node_role.arn, type="EC2_LINUX",
            region=args.region, tags=tags, opts=child)
        ca = self.cluster.certificate_authority.apply(lambda c: (c.data if c is not None else None) or "")
        self.join = EksJoin(name=self.cluster.name, endpoint=self.cluster.endpoint.apply(lambda e: e or ""),
                            certificate_authority=ca, service_cidr=args.service_cidr,
                            instance_profile_arn=self.instance_profile.arn, version=args.version)
        self.kubeconfig: pulumi.Output[str] = pulumi.Output.all(
            self.cluster.name, self.join.endpoint, ca).apply(lambda a: eks_kubeconfig(a[0], a[1], a[2], args.region))
        self.register_outputs({"cluster_name": self.cluster.name, "endpoint": self.join.endpoint,
                               "node_role_arn": self.node_role.arn})


def eks_kubeconfig(cluster: str, endpoint: str, ca: str, region: str) -> str:
    """A kubeconfig (JSON is YAML) that authenticates with ``aws eks get-token``, as ``aws eks
    update-kubeconfig`` writes it."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": cluster,
        "clusters": [{"name": cluster, "cluster": {"server": endpoint or "https://pending.invalid",
                                                   "certificate-authority-data": ca}}],
        "users": [{"name": cluster, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster, "--region", region]}}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}]})


def node_user_data(p: NodePoolSpec, cluster: str, endpoint: str, ca: str, service_cidr: str) -> str:
    """nodeadm's NodeConfig in a MIME multi-part document (what AL2023 EKS AMIs read at boot), with the
    pool's node labels and GPU taint as kubelet flags. Base64, as launch templates take it."""
    taints = ",".join(t.flag() for t in gpu_taints(p))
    flags = [f"--node-labels={label_flag(node_labels(p))}"]
    if taints:
        flags.append(f"--register-with-taints={taints}")
    config = {"apiVersion": "node.eks.aws/v1alpha1", "kind": "NodeConfig", "spec": {
        "cluster": {"name": cluster, "apiServerEndpoint": endpoint, "certificateAuthority": ca,
                    "cidr": service_cidr},
        "kubelet": {"flags": flags}}}
    doc = ("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"//\"\n\n--//\n"
           "Content-Type: application/node.eks.aws\n\n" + json.dumps(config, indent=1) + "\n--//--\n")
    return base64.b64encode(doc.encode()).decode()


@dataclass
class AwsGpuNodePoolArgs:
    pool: NodePoolSpec
    stack: str
    subnet_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    ami: str = ""                      # empty: the EKS GPU AMI for the pool's architecture (gpu_ami)
    extra_tags: dict[str, str] = field(default_factory=dict)
    cluster: EksJoin | None = None     # the EKS cluster the nodes join (None: plain instances)


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
            "image_id": args.ami or gpu_ami(p.gpu_model), "instance_type": p.instance_type, "region": p.region,
            "network_interfaces": self._interfaces(p, args),
            "tag_specifications": [{"resource_type": "instance", "tags": tags},
                                   {"resource_type": "network-interface", "tags": tags}],
            "tags": tags,
        }
        if args.cluster is not None:
            join = args.cluster
            lt_args["iam_instance_profile"] = {"arn": join.instance_profile_arn}
            lt_args["user_data"] = pulumi.Output.all(join.name, join.endpoint, join.certificate_authority).apply(
                lambda a: node_user_data(p, a[0], a[1] or "", a[2] or "", join.service_cidr))
            # IMDSv2 only; hop limit 2 so pods on the node (EFA device plugin, DCGM) reach it too.
            lt_args["metadata_options"] = {"http_tokens": "required", "http_put_response_hop_limit": 2,
                                           "http_endpoint": "enabled"}
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
