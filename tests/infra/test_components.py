"""Pulumi unit tests (set_mocks, through the mock runtime) of every component: what matters is
asserted on the inputs each resource is registered with."""

from __future__ import annotations

import pytest

from infra.engines.mockruntime import DesiredResource, run_program
from infra.programs import program_for
from infra.spec import SpecError, StackSpec
from providers.catalog.model import CapacityType
from tests.infra.fakes import pool

TAGS = {"awan:owner": "awan", "awan:pool": "train-a", "awan:workload": "wl-train-a",
        "awan:stack": "awan-aws-us-east-1"}


def record(stack: StackSpec) -> list[DesiredResource]:
    return list(run_program(program_for(stack), stack.name).resources.values())


def of(res: list[DesiredResource], type_: str) -> list[DesiredResource]:
    return [r for r in res if r.type == type_]


def test_aws_training_pool_has_efa_cluster_placement_and_no_public_ip():
    res = record(StackSpec("aws", "us-east-1", (pool("train-a", nodes=2),)))
    (pg,) = of(res, "aws:ec2/placementGroup:PlacementGroup")
    assert pg.inputs["strategy"] == "cluster"
    (lt,) = of(res, "aws:ec2/launchTemplate:LaunchTemplate")
    nics = lt.inputs["networkInterfaces"]
    assert len(nics) == 32 and all(n["interfaceType"] == "efa" for n in nics)          # p5: 32 EFA cards
    assert sorted(n["networkCardIndex"] for n in nics) == list(range(32))
    assert all(n["associatePublicIpAddress"] == "false" for n in nics)
    insts = of(res, "aws:ec2/instance:Instance")
    assert len(insts) == 2
    for i in insts:
        assert i.inputs["placementGroup"] == pg.inputs["name"]
        assert i.inputs["availabilityZone"] == "us-east-1a" and i.inputs["region"] == "us-east-1"
        assert TAGS.items() <= i.inputs["tags"].items()
        assert "instanceMarketOptions" not in i.inputs
    rules = of(res, "aws:ec2/securityGroupRule:SecurityGroupRule")
    assert {r.inputs["type"] for r in rules} == {"ingress", "egress"}
    assert all(r.inputs["self"] is True and r.inputs["protocol"] == "-1" for r in rules)
    subnets = of(res, "aws:ec2/subnet:Subnet")       # the pool's zone and a second one (EKS wants two)
    assert {s.inputs["availabilityZone"] for s in subnets} == {"us-east-1a", "us-east-1b"}
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)


def test_aws_inference_spot_pool_has_no_placement_group_and_spot_market():
    res = record(StackSpec("aws", "us-east-1", (pool("serve", nodes=1, placement="none",
                                                     capacity_type=CapacityType.SPOT),)))
    assert of(res, "aws:ec2/placementGroup:PlacementGroup") == []
    (lt,) = of(res, "aws:ec2/launchTemplate:LaunchTemplate")
    assert lt.inputs["instanceMarketOptions"]["marketType"] == "spot"
    (i,) = of(res, "aws:ec2/instance:Instance")
    assert i.inputs["instanceMarketOptions"] == {"marketType": "spot"}


def test_aws_reserved_pools_use_a_reservation_or_a_capacity_block():
    # Offering ids as EC2 and the mock hand them out ("cb-..."): the kind comes from placement, not the id.
    res = record(StackSpec("aws", "us-east-1", (
        pool("a", nodes=2, capacity_type=CapacityType.RESERVED),
        pool("b", nodes=18, instance_type="p6e-gb200.36xlarge", gpus=4, placement="nvlink",
             capacity_type=CapacityType.RESERVED, reservation_id="cb-0123", ultraserver_type="u-p6e-gb200x72",
             reservation_kind="capacity-block-offering"),
        pool("c", nodes=1, capacity_type=CapacityType.RESERVED, reservation_id="cr-0abc"),
        pool("d", nodes=1, capacity_type=CapacityType.RESERVED, reservation_id="cr-0def",
             reservation_kind="capacity-block"))))
    (cr,) = of(res, "aws:ec2/capacityReservation:CapacityReservation")
    assert cr.inputs["instanceCount"] == 2 and cr.inputs["availabilityZone"] == "us-east-1a"
    (cb,) = of(res, "aws:ec2/capacityBlockReservation:CapacityBlockReservation")
    assert cb.inputs["capacityBlockOfferingId"] == "cb-0123"
    assert cb.inputs["tags"]["awan:ultraserver"] == "u-p6e-gb200x72"
    instances = {i.name: i.inputs for i in of(res, "aws:ec2/instance:Instance")}
    targets = {n: i["capacityReservationSpecification"]["capacityReservationTarget"]["capacityReservationId"]
               for n, i in instances.items()}
    assert targets["c-0"] == "cr-0abc" and targets["d-0"] == "cr-0def"
    assert targets["a-0"] == cr.logical_id and targets["b-17"] == cb.logical_id
    market = {n: (i.get("instanceMarketOptions") or {}).get("marketType") for n, i in instances.items()}
    # EC2 refuses a Capacity Block launch without market type capacity-block; an ODCR needs none.
    assert market["b-0"] == market["b-17"] == market["d-0"] == "capacity-block"
    assert market["a-0"] is None and market["c-0"] is None


def test_gcp_training_pool_is_a_gke_node_pool_with_compact_placement_spot_and_labels():
    p = pool("train-a", provider="gcp", region="us-central1", zone="us-central1-a",
             instance_type="a3-megagpu-8g", nodes=4, capacity_type=CapacityType.SPOT)
    res = record(StackSpec("gcp", "us-central1", (p,), config={"project": "awan-lab"}))
    (pol,) = of(res, "gcp:compute/resourcePolicy:ResourcePolicy")
    assert pol.inputs["groupPlacementPolicy"] == {"collocation": "COLLOCATED", "vmCount": 4}
    assert of(res, "gcp:compute/instance:Instance") == []      # GKE makes the VMs
    (np,) = of(res, "gcp:container/nodePool:NodePool")
    i = np.inputs
    assert i["nodeCount"] == 4 and i["nodeLocations"] == ["us-central1-a"] and i["project"] == "awan-lab"
    assert i["placementPolicy"] == {"type": "COMPACT", "policyName": pol.inputs["name"]}
    cfg = i["nodeConfig"]
    assert cfg["machineType"] == "a3-megagpu-8g" and cfg["spot"] is True
    assert cfg["resourceLabels"]["awan-pool"] == "train-a" and cfg["resourceLabels"]["awan-owner"] == "awan"
    assert i["networkConfig"]["enablePrivateNodes"] is True       # no external IPs on the nodes


def test_gcp_tpu_slices_spot_vm_and_reserved_queued_resource():
    t = dict(provider="gcp", region="us-east5", zone="us-east5-a", instance_type="tpu-v5p-8",
             gpu_model="TPU-v5p", gpus=4, placement="none")
    res = record(StackSpec("gcp", "us-east5", (pool("tpu-s", nodes=1, capacity_type=CapacityType.SPOT, **t),
                                               pool("tpu-r", nodes=1, capacity_type=CapacityType.RESERVED, **t))))
    (vm,) = of(res, "gcp:tpu/v2Vm:V2Vm")
    assert vm.inputs["acceleratorType"] == "v5p-8" and vm.inputs["schedulingConfig"] == {"spot": True}
    assert vm.inputs["networkConfig"]["enableExternalIps"] is False
    (qr,) = of(res, "gcp:tpu/v2QueuedResource:V2QueuedResource")
    assert qr.inputs["tpu"]["nodeSpecs"][0]["node"]["acceleratorType"] == "v5p-8"


def test_azure_aks_agent_pool_infiniband_spot_no_public_ip():
    p = pool("train-a", provider="azure", region="eastus", zone="eastus-2",
             instance_type="Standard_ND96isr_H100_v5", nodes=4, capacity_type=CapacityType.SPOT)
    res = record(StackSpec("azure", "eastus", (p,)))
    assert of(res, "azure-native:compute:VirtualMachineScaleSet") == []      # AKS makes the scale set
    (ap,) = of(res, "azure-native:containerservice:AgentPool")
    i = ap.inputs
    assert i["vmSize"] == "Standard_ND96isr_H100_v5" and i["count"] == 4 and i["availabilityZones"] == ["2"]
    assert i["mode"] == "User" and i["enableNodePublicIP"] is False and i["enableAutoScaling"] is False
    assert i["scaleSetPriority"] == "Spot" and i["scaleSetEvictionPolicy"] == "Delete" and i["spotMaxPrice"] == -1
    assert i["tags"]["awan:pool"] == "train-a" and i["tags"]["awan:scale-set"] == "awan-train-a"
    # AKS agent pool names: at most 12 lowercase letters and digits, starting with a letter.
    assert len(i["agentPoolName"]) <= 12 and i["agentPoolName"].isalnum() and i["agentPoolName"][0].isalpha()


def test_azure_refuses_training_pool_without_infiniband():
    from infra.components.azure import AksGpuAgentPool, AksGpuAgentPoolArgs

    p = pool("train-a", provider="azure", region="eastus", zone="eastus-1",
             instance_type="Standard_NC80adis_H100_v5", nodes=2)
    with pytest.raises(SpecError, match="InfiniBand"):
        run_program(lambda: AksGpuAgentPool("x", AksGpuAgentPoolArgs(p, "s", "rg", "aks", "subnet")), "s")


def test_a_refused_pool_is_left_out_and_reported_while_the_rest_of_the_stack_is_built():
    """Issue 13, item 7: one pool the component refuses no longer fails its whole stack."""
    bad = pool("bad-a", provider="azure", region="eastus", zone="eastus-1",
               instance_type="Standard_NC40ads_H100_v5", gpus=1, nodes=2)
    good = pool("good-b", provider="azure", region="eastus", zone="eastus-1",
                instance_type="Standard_ND96isr_H100_v5", nodes=2)
    rec = run_program(program_for(StackSpec("azure", "eastus", (bad, good))), "awan-azure-eastus")
    sets = of(list(rec.resources.values()), "azure-native:containerservice:AgentPool")
    assert [r.inputs["tags"]["awan:pool"] for r in sets] == ["good-b"]
    assert set(rec.outputs["refused"]) == {"bad-a"} and "InfiniBand" in rec.outputs["refused"]["bad-a"]
    assert "good-b" not in rec.outputs["refused"]["bad-a"]


def test_coreweave_cks_cluster_and_node_pool_spec():
    p = pool("train-a", provider="coreweave", region="US-EAST-04", zone="US-EAST-04A",
             instance_type="gb200-4x", gpu_model="GB200", gpus=4, nodes=18, placement="nvlink")
    res = record(StackSpec("coreweave", "US-EAST-04", (p,)))
    (cks,) = of(res, "coreweave:index/cksCluster:CksCluster")
    assert cks.inputs["public"] is False and cks.inputs["zone"] == "US-EAST-04A"
    (np,) = of(res, "kubernetes:compute.coreweave.com/v1alpha1:NodePool")
    spec = np.inputs["spec"]
    assert spec["instanceType"] == "gb200-4x" and spec["targetNodes"] == 18
    assert spec["nodeLabels"]["awan-pool"] == "train-a" and spec["nodeLabels"]["awan-owner"] == "awan"
    assert spec["nodeLabels"]["awan.dev/pool"] == "train-a" and spec["nodeLabels"]["awan.dev/provider"] == "coreweave"
    assert np.inputs["metadata"]["name"] == "train-a"


def test_every_cloud_resource_carries_owner_tags():
    res = record(StackSpec("aws", "us-east-1", (pool("train-a", nodes=1),)))
    for r in res:
        if r.custom and "tags" in r.inputs:
            assert r.inputs["tags"]["awan:owner"] == "awan", r.name
