"""The OCI Pulumi program rendered with the real pulumi-oci package under the mock runtime: what OCI
requires of a GPU pool, asserted on the inputs each resource is registered with."""

from __future__ import annotations

import pulumi

from infra.engines.mockruntime import DesiredResource, run_program
from infra.programs import program_for
from infra.spec import StackSpec
from providers.catalog.model import CapacityType
from tests.infra.fakes import pool

OCI = dict(provider="oci", region="us-chicago-1", zone="US-CHICAGO-AD-1", instance_type="BM.GPU.H100.8")
CONFIG = {"compartment": "ocid1.compartment.oc1..awan"}


def record(stack: StackSpec) -> list[DesiredResource]:
    return list(run_program(program_for(stack), stack.name).resources.values())


def of(res: list[DesiredResource], type_: str) -> list[DesiredResource]:
    return [r for r in res if r.type == type_]


def test_training_pool_is_a_cluster_network_of_tagged_hosts_without_public_ips():
    res = record(StackSpec("oci", "us-chicago-1", (pool("train-a", nodes=3, **OCI),), config=CONFIG))
    assert of(res, "oci:Core/instance:Instance") == []
    (cfg,) = of(res, "oci:Core/instanceConfiguration:InstanceConfiguration")
    launch = cfg.inputs["instanceDetails"]["launchDetails"]
    assert cfg.inputs["instanceDetails"]["instanceType"] == "compute"
    assert launch["shape"] == "BM.GPU.H100.8" and launch["availabilityDomain"] == "US-CHICAGO-AD-1"
    assert launch["createVnicDetails"]["assignPublicIp"] is False
    assert launch["freeformTags"]["awan-pool"] == "train-a" and launch["freeformTags"]["awan-owner"] == "awan"
    assert launch["sourceDetails"]["instanceSourceImageFilterDetails"]["operatingSystem"] == "Canonical Ubuntu"
    (cn,) = of(res, "oci:Core/clusterNetwork:ClusterNetwork")
    (ip,) = cn.inputs["instancePools"]
    assert ip["size"] == 3 and cn.inputs["compartmentId"] == CONFIG["compartment"]
    assert cn.inputs["placementConfiguration"]["availabilityDomain"] == "US-CHICAGO-AD-1"
    assert cn.inputs["freeformTags"]["awan-workload"] == "wl-train-a"
    (subnet,) = of(res, "oci:Core/subnet:Subnet")
    assert subnet.inputs["prohibitPublicIpOnVnic"] is True and subnet.inputs["freeformTags"]["awan-role"] == "gpu"


def test_inference_spot_pool_is_preemptible_instances_and_reserved_pool_reserves():
    spot = pool("serve-s", nodes=2, placement="none", capacity_type=CapacityType.SPOT, **OCI)
    reserved = pool("serve-r", nodes=2, placement="none", capacity_type=CapacityType.RESERVED, **OCI)
    res = record(StackSpec("oci", "us-chicago-1", (spot, reserved), config=CONFIG))
    insts = of(res, "oci:Core/instance:Instance")
    assert len(insts) == 4
    by_pool: dict[str, list[DesiredResource]] = {}
    for i in insts:
        by_pool.setdefault(i.inputs["freeformTags"]["awan-pool"], []).append(i)
        assert i.inputs["createVnicDetails"]["assignPublicIp"] == "false"
        assert i.inputs["shape"] == "BM.GPU.H100.8" and ":" not in "".join(i.inputs["freeformTags"])
    assert all(i.inputs["preemptibleInstanceConfig"]["preemptionAction"]["type"] == "TERMINATE"
               for i in by_pool["serve-s"])
    (cr,) = of(res, "oci:Core/computeCapacityReservation:ComputeCapacityReservation")
    assert cr.inputs["instanceReservationConfigs"] == [{"instanceShape": "BM.GPU.H100.8", "reservedCount": "2"}]
    assert all(i.inputs.get("capacityReservationId") for i in by_pool["serve-r"])
    assert not any(i.inputs.get("capacityReservationId") for i in by_pool["serve-s"])


def test_a_named_reservation_is_used_as_is():
    p = pool("serve-r", nodes=1, placement="none", capacity_type=CapacityType.RESERVED,
             reservation_id="ocid1.capacityreservation.oc1.us-chicago-1.x", **OCI)
    res = record(StackSpec("oci", "us-chicago-1", (p,), config=CONFIG))
    assert of(res, "oci:Core/computeCapacityReservation:ComputeCapacityReservation") == []
    (inst,) = of(res, "oci:Core/instance:Instance")
    assert inst.inputs["capacityReservationId"] == "ocid1.capacityreservation.oc1.us-chicago-1.x"


class _Mocks(pulumi.runtime.Mocks):
    """Answers Identity's ListAvailabilityDomains as OCI does: AD names carry the tenancy's prefix."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        return args.name + "_id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        if args.token == "oci:Identity/getAvailabilityDomains:getAvailabilityDomains":
            return {"availabilityDomains": [{"name": "Uocm:US-CHICAGO-AD-1", "id": "ad1"},
                                            {"name": "Uocm:US-CHICAGO-AD-2", "id": "ad2"}]}, []
        return {}, []


@pulumi.runtime.test
def test_availability_domain_gets_the_tenancy_prefix_from_identity():
    pulumi.runtime.set_mocks(_Mocks(), project="awan", stack="oci-test", preview=False)
    from infra.components.oci import OciGpuNodePool, OciGpuNodePoolArgs

    p = pool("serve-a", nodes=1, placement="none", **OCI)
    np = OciGpuNodePool("serve-a", OciGpuNodePoolArgs(pool=p, stack="awan-oci-us-chicago-1",
                                                      compartment_id="ocid1.compartment.oc1..awan", subnet_id="sn"))

    def check(ad: str) -> None:
        assert ad == "Uocm:US-CHICAGO-AD-1", ad

    return np.instances[0].availability_domain.apply(check)
