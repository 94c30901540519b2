"""Every Pulumi program rendered with the real provider packages (pulumi_aws, pulumi_gcp,
pulumi_azure_native, pulumi_coreweave + pulumi_kubernetes) under the mock runtime (set_mocks), checked
for what the real clouds require of GPU nodes; and the Pulumi engine's error texts mapped to the typed
errors failover acts on."""

from __future__ import annotations

import pytest

from infra.components.coreweave import cks_kubeconfig
from infra.engines.mockruntime import DesiredResource, run_program
from infra.engines.pulumi_errors import map_pulumi_error
from infra.programs import program_for
from infra.spec import ReservationKind, StackSpec
from providers.catalog.model import CapacityType
from providers.errors import CapacityError, QuotaError, ThrottledError
from tests.infra.fakes import pool

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAwan awan@test"


def render(stack: StackSpec) -> list[DesiredResource]:
    return list(run_program(program_for(stack), stack.name).resources.values())


def one(res: list[DesiredResource], type_: str) -> DesiredResource:
    (r,) = [r for r in res if r.type == type_]
    return r


def test_aws_capacity_block_instances_launch_with_market_type_capacity_block() -> None:
    res = render(StackSpec("aws", "us-east-1", (
        pool("blk", nodes=2, capacity_type=CapacityType.RESERVED, reservation_id="cb-0f00",
             reservation_kind=ReservationKind.BLOCK_OFFERING.value),
        pool("odcr", nodes=1, capacity_type=CapacityType.RESERVED, reservation_id="cr-0abc"))))
    by_pool = {}
    for r in res:
        if r.type == "aws:ec2/instance:Instance":
            by_pool.setdefault(r.inputs["tags"]["awan:pool"], []).append(r.inputs)
    assert {(i.get("instanceMarketOptions") or {}).get("marketType") for i in by_pool["blk"]} == {"capacity-block"}
    assert all("instanceMarketOptions" not in i for i in by_pool["odcr"])
    assert one(res, "aws:ec2/capacityBlockReservation:CapacityBlockReservation").inputs[
        "capacityBlockOfferingId"] == "cb-0f00"


def test_azure_nodes_log_in_with_the_ssh_key_only() -> None:
    p = pool("train-a", provider="azure", region="eastus", zone="eastus-1", instance_type="Standard_ND96isr_H100_v5")
    res = render(StackSpec("azure", "eastus", (p,), config={"ssh_public_key": KEY}))
    linux = one(res, "azure-native:containerservice:ManagedCluster").inputs["linuxProfile"]
    # AKS nodes take SSH keys only (no password login exists for them).
    assert linux == {"adminUsername": "awan", "ssh": {"publicKeys": [{"keyData": KEY}]}}


def test_the_pulumi_engine_asks_for_the_azure_key_before_running() -> None:
    from infra.engines.base import EngineError
    from infra.engines.pulumi_auto import _check_credentials

    p = pool("train-a", provider="azure", region="eastus", zone="eastus-1", instance_type="Standard_ND96isr_H100_v5")
    with pytest.raises(EngineError, match="providers.azure.credentials.ssh_public_key: required"):
        _check_credentials(StackSpec("azure", "eastus", (p,)))
    _check_credentials(StackSpec("azure", "eastus", (p,), config={"ssh_public_key": KEY}))


def test_coreweave_node_pools_are_bound_to_the_new_cks_cluster() -> None:
    p = pool("train-a", provider="coreweave", region="US-EAST-04", zone="US-EAST-04A",
             instance_type="gd-8xh100ib-i128")
    res = render(StackSpec("coreweave", "US-EAST-04", (p,)))
    k8s = one(res, "pulumi:providers:kubernetes")
    cluster = one(res, "coreweave:index/cksCluster:CksCluster")
    nodepool = one(res, "kubernetes:compute.coreweave.com/v1alpha1:NodePool")
    assert nodepool.provider.startswith(k8s.urn + "::")          # not the ambient kubeconfig
    assert cluster.urn in k8s.deps                               # its kubeconfig comes from the cluster
    cfg = cks_kubeconfig("c", "api.c.coreweave.example", "tok")
    assert '"server": "https://api.c.coreweave.example"' in cfg and '"token": "tok"' in cfg


def test_gcp_program_renders_with_compact_placement() -> None:
    p = pool("train-a", provider="gcp", region="us-central1", zone="us-central1-a", instance_type="a3-megagpu-8g",
             nodes=2)
    res = render(StackSpec("gcp", "us-central1", (p,), config={"project": "awan-lab"}))
    policy = one(res, "gcp:compute/resourcePolicy:ResourcePolicy")
    assert policy.inputs["groupPlacementPolicy"]["collocation"] == "COLLOCATED"
    np = one(res, "gcp:container/nodePool:NodePool")
    assert np.inputs["nodeCount"] == 2 and np.inputs["placementPolicy"]["policyName"] == policy.inputs["name"]


# Texts as `pulumi up` prints them (CommandError), each carrying the cloud's own code.
ERRORS = [
    ("aws", "error: 1 error occurred:\n\t* creating EC2 Instance: operation error EC2: RunInstances, https response "
            "error StatusCode: 500, RequestID: 5f2c, api error InsufficientInstanceCapacity: We currently do not "
            "have sufficient p5.48xlarge capacity in the Availability Zone you requested (us-east-1a).",
     CapacityError, "InsufficientInstanceCapacity"),
    ("aws", "creating EC2 Instance: operation error EC2: RunInstances, https response error StatusCode: 400, "
            "api error VcpuLimitExceeded: You have requested more vCPU capacity than your current vCPU limit of 0 "
            "allows for the instance bucket that the specified instance type belongs to.",
     QuotaError, "VcpuLimitExceeded"),
    ("gcp", "error: 1 error occurred:\n\t* Error creating instance: googleapi: Error 503: The zone "
            "'projects/awan-lab/zones/us-central1-a' does not have enough resources available to fulfill the "
            "request. Try a different zone, or try again later., ZONE_RESOURCE_POOL_EXHAUSTED",
     CapacityError, "ZONE_RESOURCE_POOL_EXHAUSTED"),
    ("gcp", "Error creating instance: googleapi: Error 403: Quota 'NVIDIA_H100_GPUS' exceeded.  Limit: 0.0 in "
            "region us-central1., quotaExceeded", QuotaError, "quotaExceeded"),
    ("azure", "error: azure-native:compute:VirtualMachineScaleSet resource 'train-a-vmss': Code=\"SkuNotAvailable\" "
              "Message=\"The requested VM size for resource 'Following SKUs have failed for Capacity Restrictions: "
              "Standard_ND96isr_H100_v5' is currently not available in location 'eastus'.\"",
     CapacityError, "SkuNotAvailable"),
    ("azure", "Code=\"OperationNotAllowed\" Message=\"Operation could not be completed as it results in exceeding "
              "approved standardNDSH100v5Family Cores quota. Current Limit: 0, Current Usage: 0\"",
     QuotaError, "OperationNotAllowed"),
    ("aws", "api error RequestLimitExceeded: Request limit exceeded.", ThrottledError, "RequestLimitExceeded"),
]


@pytest.mark.parametrize("provider, text, kind, code", ERRORS)
def test_pulumi_error_texts_map_to_the_typed_errors(provider: str, text: str, kind: type, code: str) -> None:
    err = map_pulumi_error(text, provider=provider, region="r1")
    assert type(err) is kind and err.code == code and err.provider == provider and err.region == "r1"
    assert code in err.message or "quota" in err.message


def test_other_pulumi_failures_are_left_as_they_are() -> None:
    assert map_pulumi_error("error: program failed: NameError: name 'x' is not defined", provider="aws",
                            region="r") is None
    assert map_pulumi_error("InsufficientInstanceCapacityX", provider="aws", region="r") is None   # whole words
