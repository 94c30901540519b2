"""OCI: the network (VCN, private GPU subnet) and the GPU node pool of bare-metal shapes.

A training pool (a gang, or a GB200 NVL72 rack) is a cluster network: one instance pool of ``nodes`` hosts on
OCI's RDMA fabric, from an instance configuration that carries the tags; other pools are plain instances.
A reserved pool launches into a compute capacity reservation: the one named by the pool, or one this
component reserves for it. Freeform tags use dashed keys (``awan-pool``); no public IPs.

The stack's Kubernetes cluster is an OKE enhanced cluster, and the GPU hosts join it as OKE *self-managed
nodes* (cloud-init runs ``oke bootstrap`` with the cluster's endpoint and CA): OKE's managed node pools
cannot use cluster networks (the RDMA fabric), self-managed nodes can. A dynamic group of the stack's hosts
and a policy let them join (``CLUSTER_JOIN``); self-managed nodes need the flannel overlay CNI.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_oci as oci

from infra.components.kube import gpu_taints, label_flag, node_labels
from infra.components.tags import aws_tags
from infra.spec import NodePoolSpec

IMAGE_OS = "Canonical Ubuntu"        # OCI's GPU images (drivers included), chosen per shape by the image filter


def oci_tags(stack: str, pool: NodePoolSpec | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The Awan tags as OCI freeform tags: the same keys as AWS/Azure with '-' for ':'."""
    return {k.replace(":", "-"): v for k, v in {**aws_tags(stack, pool), **(extra or {})}.items()}


def availability_domain(compartment_id: pulumi.Input[str], zone: str) -> pulumi.Output[str]:
    """The AD's full name (``Uocm:US-ASHBURN-AD-1``) for a catalog zone (``US-ASHBURN-AD-1``): the prefix is
    the tenancy's own, so it is asked of Identity; where nothing answers (the mock runtime) the zone stays."""
    ads = oci.identity.get_availability_domains_output(compartment_id=compartment_id)
    return ads.availability_domains.apply(
        lambda found: next((a.name for a in found or [] if a.name.rsplit(":", 1)[-1] == zone), zone))


@dataclass
class OciNetworkArgs:
    region: str
    stack: str
    compartment_id: str
    cidr: str = "10.30.0.0/16"


class OciNetwork(pulumi.ComponentResource):
    """A VCN and one private regional subnet for the GPU hosts (``awan-role: gpu``, which the adapter finds)."""

    def __init__(self, name: str, args: OciNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awan:oci:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.vcn = oci.core.Vcn(f"{name}-vcn", compartment_id=args.compartment_id, cidr_blocks=[args.cidr],
                                display_name=f"{args.stack}-vcn", freeform_tags=oci_tags(args.stack), opts=child)
        self.subnet = oci.core.Subnet(
            f"{name}-gpu", compartment_id=args.compartment_id, vcn_id=self.vcn.id,
            cidr_block=args.cidr.replace("/16", "/20"), display_name="awan-gpu",
            prohibit_public_ip_on_vnic=True, freeform_tags=oci_tags(args.stack, extra={"awan:role": "gpu"}), opts=child)
        self.register_outputs({"vcn_id": self.vcn.id, "subnet_id": self.subnet.id})


@dataclass
class OkeClusterArgs:
    region: str
    stack: str
    cluster_name: str
    compartment_id: str
    vcn_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    tenancy_id: str = ""                 # where the dynamic group lives (empty: the compartment)
    kubernetes_version: str = "v1.32.1"
    pods_cidr: str = "10.244.0.0/16"
    services_cidr: str = "10.96.0.0/16"


@dataclass
class OkeJoin:
    """What a self-managed node needs to join: read by the node pool's cloud-init."""

    endpoint: pulumi.Input[str]
    certificate_authority: pulumi.Input[str]


class OkeCluster(pulumi.ComponentResource):
    """A private OKE enhanced cluster (flannel overlay: what self-managed nodes support), and the dynamic
    group + policy that let the stack's hosts (tagged ``awan-stack``) join it."""

    def __init__(self, name: str, args: OkeClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awan:oci:OkeCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = oci_tags(args.stack)
        self.cluster = oci.containerengine.Cluster(
            f"{name}-oke", compartment_id=args.compartment_id, name=args.cluster_name, vcn_id=args.vcn_id,
            kubernetes_version=args.kubernetes_version, type="ENHANCED_CLUSTER",
            endpoint_config={"subnet_id": args.subnet_id, "is_public_ip_enabled": False},
            cluster_pod_network_options=[{"cni_type": "FLANNEL_OVERLAY"}],
            options={"kubernetes_network_config": {"pods_cidr": args.pods_cidr, "services_cidr": args.services_cidr}},
            freeform_tags=tags, opts=child)
        group = f"{args.cluster_name}-nodes"
        self.dynamic_group = oci.identity.DynamicGroup(
            f"{name}-nodes", compartment_id=args.tenancy_id or args.compartment_id, name=group,
            description=f"GPU hosts of {args.stack} (self-managed OKE nodes)",
            matching_rule=(f"ALL {{instance.compartment.id = '{args.compartment_id}', "
                           f"tag.awan-stack.value = '{args.stack}'}}"), freeform_tags=tags, opts=child)
        self.policy = oci.identity.Policy(
            f"{name}-join", compartment_id=args.compartment_id, name=f"{args.cluster_name}-join",
            description="Self-managed nodes join the stack's OKE cluster",
            statements=[f"Allow dynamic-group {group} to {{CLUSTER_JOIN}} in compartment id {args.compartment_id}"],
            freeform_tags=tags, opts=child)
        self.endpoint: pulumi.Output[str] = self.cluster.endpoints.apply(
            lambda eps: (eps[0].private_endpoint or "") if eps else "")
        kube = oci.containerengine.get_cluster_kube_config_output(cluster_id=self.cluster.id)
        self.kubeconfig: pulumi.Output[str] = kube.content.apply(lambda c: c or "")
        self.join = OkeJoin(endpoint=self.endpoint, certificate_authority=kube.content.apply(_ca_of))
        self.register_outputs({"cluster_id": self.cluster.id, "endpoint": self.endpoint})


def _ca_of(kubeconfig: str | None) -> str:
    """The cluster CA (base64) out of OKE's kubeconfig (YAML; the field is one line)."""
    for line in (kubeconfig or "").splitlines():
        if "certificate-authority-data:" in line:
            return line.split(":", 1)[1].strip()
    return ""


def node_cloud_init(p: NodePoolSpec, endpoint: str, ca: str) -> str:
    """cloud-init for an OKE self-managed node: ``oke bootstrap`` (in OKE's node images) with the pool's
    node labels and GPU taint as kubelet flags. Base64, as instance metadata ``user_data`` takes it."""
    taints = ",".join(t.flag() for t in gpu_taints(p))
    extra = f"--node-labels={label_flag(node_labels(p))}" + (f" --register-with-taints={taints}" if taints else "")
    script = ("#!/usr/bin/env bash\nset -euo pipefail\n"
              f"oke bootstrap --apiserver-host {json.dumps(endpoint.split(':')[0])} --ca {json.dumps(ca)} "
              f"--kubelet-extra-args {json.dumps(extra)}\n")
    return base64.b64encode(script.encode()).decode()


@dataclass
class OciGpuNodePoolArgs:
    pool: NodePoolSpec
    stack: str
    compartment_id: str
    subnet_id: pulumi.Input[str]
    image_id: str = ""                  # empty: the newest IMAGE_OS image for the shape (image filter)
    ssh_public_key: str = ""            # empty: no key (reached through OCI's bastion / run command)
    extra_tags: dict[str, str] = field(default_factory=dict)
    cluster: OkeJoin | None = None      # the OKE cluster the hosts join (None: plain hosts)


class OciGpuNodePool(pulumi.ComponentResource):
    """``nodes`` hosts of one shape in one AD: a cluster network for training pools, else instances."""

    def __init__(self, name: str, args: OciGpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("awan:oci:GpuNodePool", name, None, opts)
        p, child = args.pool, pulumi.ResourceOptions(parent=self)
        self.args = args
        self.tags = {**oci_tags(args.stack, p), **args.extra_tags}
        self.ad = availability_domain(args.compartment_id, p.zone)
        self.reservation_id: pulumi.Input[str] | None = None
        if p.reserved:
            self.reservation_id = self._reservation(name, p, child)
        self.instances: list[oci.core.Instance] = []
        self.instance_configuration: oci.core.InstanceConfiguration | None = None
        self.cluster_network: oci.core.ClusterNetwork | None = None
        if p.training:
            self._cluster_network(name, p, child)
        else:
            self.instances = [self._instance(f"{name}-{i}", p, child) for i in range(p.nodes)]
        self.register_outputs({"instance_ids": [i.id for i in self.instances],
                               "cluster_network_id": self.cluster_network.id if self.cluster_network else None,
                               "reservation_id": self.reservation_id})

    @property
    def ids(self) -> list[pulumi.Output[str]]:
        """What the pool holds, for the stack's ``pools`` output."""
        return [self.cluster_network.id] if self.cluster_network is not None else [i.id for i in self.instances]

    def _reservation(self, name: str, p: NodePoolSpec, child: pulumi.ResourceOptions) -> pulumi.Input[str]:
        if p.reservation_id:
            return p.reservation_id                                   # an existing reservation's OCID
        cr = oci.core.ComputeCapacityReservation(
            f"{name}-cr", compartment_id=self.args.compartment_id, availability_domain=self.ad,
            display_name=f"awan-{p.pool}", freeform_tags=self.tags,
            instance_reservation_configs=[{"instance_shape": p.instance_type, "reserved_count": str(p.nodes)}],
            opts=child)
        return cr.id

    def _source(self) -> dict[str, Any]:
        if self.args.image_id:
            return {"source_type": "image", "source_id": self.args.image_id}
        return {"source_type": "image", "instance_source_image_filter_details": {
            "compartment_id": self.args.compartment_id, "operating_system": IMAGE_OS}}

    def _metadata(self) -> dict[str, pulumi.Input[str]] | None:
        out: dict[str, pulumi.Input[str]] = {}
        if self.args.ssh_public_key:
            out["ssh_authorized_keys"] = self.args.ssh_public_key
        if self.args.cluster is not None:
            join, p = self.args.cluster, self.args.pool
            out["user_data"] = pulumi.Output.all(join.endpoint, join.certificate_authority).apply(
                lambda a: node_cloud_init(p, a[0] or "", a[1] or ""))
        return out or None

    def _instance(self, name: str, p: NodePoolSpec, child: pulumi.ResourceOptions) -> oci.core.Instance:
        kw: dict[str, Any] = {
            "compartment_id": self.args.compartment_id, "availability_domain": self.ad, "shape": p.instance_type,
            "display_name": name, "freeform_tags": self.tags, "source_details": self._source(),
            "metadata": self._metadata(),
            "create_vnic_details": {"subnet_id": self.args.subnet_id, "assign_public_ip": "false"},
            "capacity_reservation_id": self.reservation_id,
            "preemptible_instance_config": (
                {"preemption_action": {"type": "TERMINATE", "preserve_boot_volume": False}} if p.spot else None)}
        return oci.core.Instance(name, opts=child, **kw)

    def _cluster_network(self, name: str, p: NodePoolSpec, child: pulumi.ResourceOptions) -> None:
        source = self._source()
        launch: dict[str, Any] = {
            "compartment_id": self.args.compartment_id, "availability_domain": self.ad, "shape": p.instance_type,
            "freeform_tags": self.tags, "display_name": f"awan-{p.pool}",
            "create_vnic_details": {"subnet_id": self.args.subnet_id, "assign_public_ip": False},
            "source_details": ({"source_type": "image", "image_id": source["source_id"]} if "source_id" in source
                               else {"source_type": "image", "instance_source_image_filter_details":
                                     source["instance_source_image_filter_details"]}),
            "capacity_reservation_id": self.reservation_id}
        if self._metadata():
            launch["metadata"] = self._metadata()
        kw: dict[str, Any] = {"compartment_id": self.args.compartment_id, "display_name": f"awan-{p.pool}",
                              "freeform_tags": self.tags,
                              "instance_details": {"instance_type": "compute", "launch_details": launch}}
        self.instance_configuration = oci.core.InstanceConfiguration(f"{name}-config", opts=child, **kw)
        self.cluster_network = oci.core.ClusterNetwork(
            f"{name}-cn", compartment_id=self.args.compartment_id, display_name=f"awan-{p.pool}",
            freeform_tags=self.tags,
            instance_pools=[{"instance_configuration_id": self.instance_configuration.id, "size": p.nodes,
                             "display_name": f"awan-{p.pool}-pool"}],
            placement_configuration={"availability_domain": self.ad, "primary_subnet_id": self.args.subnet_id},
            opts=child)
