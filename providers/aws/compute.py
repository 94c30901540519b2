"""EC2 instances as Awan nodes: the RunInstances request for a NodeRequest, and Instance -> Node."""

from __future__ import annotations

import hashlib
from typing import Any

from providers.catalog import CapacityType, Catalog
from providers.errors import InvalidRequestError
from providers.model import TAG_OWNER, TAG_POOL, TAG_WORKLOAD, Node, NodeRequest, NodeState

# Set on instances launched into a capacity reservation: EC2 reports the reservation only on some
# API versions, the tag always survives.
TAG_RESERVATION = "awan:reservation"
LIVE_STATES = ("pending", "running", "stopping")

_STATES = {"pending": NodeState.PENDING, "running": NodeState.RUNNING, "stopping": NodeState.STOPPING,
           "stopped": NodeState.STOPPING, "shutting-down": NodeState.STOPPING,
           "terminated": NodeState.TERMINATED}


def client_token(key: str) -> str:
    """EC2 ClientToken (at most 64 ASCII characters): the key itself, or a stable digest of a long one."""
    if len(key) <= 64 and key.isascii():
        return key
    return key.encode("ascii", "ignore").decode()[:23] + "-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def run_params(req: NodeRequest, *, owner: str, image_id: str, block: bool) -> dict[str, Any]:
    """RunInstances parameters for one request; ``block`` when the reservation is a Capacity Block."""
    if req.count < 1:
        raise InvalidRequestError(f"count: must be at least 1, got {req.count}", provider="aws")
    if not req.idempotency_key:
        raise InvalidRequestError("idempotency_key: required (it becomes the EC2 ClientToken)", provider="aws")
    tags = {**req.tags, TAG_OWNER: owner, TAG_POOL: req.pool, TAG_WORKLOAD: req.workload,
            "Name": req.tags.get("Name", req.pool)}
    params: dict[str, Any] = {
        "ImageId": image_id, "InstanceType": req.instance_type, "MinCount": req.count, "MaxCount": req.count,
        "ClientToken": client_token(req.idempotency_key),
        "Placement": {"AvailabilityZone": req.zone, **({"GroupName": req.placement_group}
                                                        if req.placement_group else {})},
    }
    if req.capacity_type == CapacityType.SPOT:
        params["InstanceMarketOptions"] = {
            "MarketType": "spot",
            "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}}
    elif req.capacity_type == CapacityType.RESERVED:
        if not req.reservation_id:
            raise InvalidRequestError("reservation_id: required for capacity type reserved", provider="aws")
        tags[TAG_RESERVATION] = req.reservation_id
        params["CapacityReservationSpecification"] = {
            "CapacityReservationTarget": {"CapacityReservationId": req.reservation_id}}
        if block:
            params["InstanceMarketOptions"] = {"MarketType": "capacity-block"}
    params["TagSpecifications"] = [
        {"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}
        for kind in ("instance", "volume")]
    return params


def to_node(inst: dict[str, Any], region: str, catalog: Catalog) -> Node:
    tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
    if inst.get("InstanceLifecycle") == "spot":
        ctype = CapacityType.SPOT
    elif inst.get("CapacityReservationId") or tags.get(TAG_RESERVATION):
        ctype = CapacityType.RESERVED
    else:
        ctype = CapacityType.ON_DEMAND
    itype = inst["InstanceType"]
    it = catalog.instance_types.get(("aws", itype))
    return Node(provider="aws", id=inst["InstanceId"], name=tags.get("Name", inst["InstanceId"]), region=region,
                zone=(inst.get("Placement") or {}).get("AvailabilityZone", ""), instance_type=itype,
                capacity_type=ctype, state=_STATES.get((inst.get("State") or {}).get("Name", ""), NodeState.PENDING),
                pool=tags.get(TAG_POOL, ""), workload=tags.get(TAG_WORKLOAD, ""), gpus=it.gpus if it else 0,
                labels=tags)


def instance_vcpus(inst: dict[str, Any], catalog: Catalog) -> int:
    it = catalog.instance_types.get(("aws", inst["InstanceType"]))
    if it:
        return it.vcpus
    cpu = inst.get("CpuOptions") or {}
    return int(cpu.get("CoreCount", 0)) * int(cpu.get("ThreadsPerCore", 1))
