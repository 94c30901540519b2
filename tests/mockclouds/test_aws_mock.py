"""The AWS mock through real boto3 over HTTP: moto plus capacity, quotas, reservations, capacity blocks,
placement groups, faults and the /_mock control API."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from mockclouds.launcher import MOCK_SECRETS, MockClouds

AMI = "ami-12c6146b"   # one of moto's built-in images
REGION = "us-east-1"


def _client(mock_aws: Any, service: str = "ec2", key: str | None = None) -> Any:
    return boto3.client(service, endpoint_url=mock_aws.urls["aws"], region_name=REGION,
                        aws_access_key_id=key or MOCK_SECRETS["aws"]["access_key_id"],
                        aws_secret_access_key=MOCK_SECRETS["aws"]["secret_access_key"],
                        config=Config(retries={"mode": "standard", "total_max_attempts": 1}))


def _control(mock_aws: Any, path: str, body: dict | None = None, method: str = "POST") -> Any:
    req = urllib.request.Request(mock_aws.urls["aws"] + path, method=method,
                                 data=json.dumps(body or {}).encode() if method != "GET" else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def _run(ec2: Any, itype: str = "p5.48xlarge", zone: str = "us-east-1a", count: int = 1, **kw: Any) -> list[str]:
    out = ec2.run_instances(ImageId=AMI, InstanceType=itype, MinCount=count, MaxCount=count,
                            Placement={"AvailabilityZone": zone}, **kw)
    return [i["InstanceId"] for i in out["Instances"]]


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_offerings_come_from_the_catalog_including_gb200(mock_aws: Any) -> None:
    ec2 = _client(mock_aws)
    rows = ec2.describe_instance_type_offerings(
        LocationType="availability-zone",
        Filters=[{"Name": "instance-type", "Values": ["p6-b200.48xlarge", "p6e-gb200.36xlarge"]}],
    )["InstanceTypeOfferings"]
    got = {(r["InstanceType"], r["Location"]) for r in rows}
    # catalog: p6-b200 only in us-east-1f; GB200 (reserved) in us-east-1a and 1b
    assert got == {("p6-b200.48xlarge", "us-east-1f"), ("p6e-gb200.36xlarge", "us-east-1a"),
                   ("p6e-gb200.36xlarge", "us-east-1b")}
    it = ec2.describe_instance_types(InstanceTypes=["p6e-gb200.36xlarge"])["InstanceTypes"][0]
    assert it["GpuInfo"]["Gpus"][0]["Name"] == "GB200" and it["GpuInfo"]["Gpus"][0]["Count"] == 4


def test_run_takes_capacity_and_terminate_gives_it_back(mock_aws: Any) -> None:
    ec2, ledger = _client(mock_aws), mock_aws.backend("aws").ledger
    before = ledger.free("us-east-1a", "p5.48xlarge")
    ids = _run(ec2, count=3)
    assert ledger.free("us-east-1a", "p5.48xlarge") == before - 3
    ec2.terminate_instances(InstanceIds=ids)
    assert ledger.free("us-east-1a", "p5.48xlarge") == before


def test_exhausted_zone_answers_insufficient_capacity_all_or_nothing(mock_aws: Any) -> None:
    ec2 = _client(mock_aws)
    assert _control(mock_aws, "/_mock/capacity", {"free": 2, "zone": "us-east-1a",
                                                  "instanceType": "p5.48xlarge"}) == {"pools": 1}
    with pytest.raises(ClientError) as e:
        _run(ec2, count=3)
    assert _code(e) == ("InsufficientInstanceCapacity", 500)
    assert mock_aws.backend("aws").ledger.free("us-east-1a", "p5.48xlarge") == 2   # nothing taken
    assert len(_run(ec2, count=2)) == 2


def test_type_not_offered_in_zone_is_unsupported(mock_aws: Any) -> None:
    with pytest.raises(ClientError) as e:
        _run(_client(mock_aws), itype="p6-b200.48xlarge", zone="us-east-1a")
    assert _code(e) == ("Unsupported", 400)
    assert "us-east-1f" in e.value.response["Error"]["Message"]


def test_vcpu_quota_is_enforced_and_served_by_service_quotas(mock_aws: Any) -> None:
    ec2, sq = _client(mock_aws), _client(mock_aws, "service-quotas")
    q = sq.get_service_quota(ServiceCode="ec2", QuotaCode="L-417A185B")["Quota"]
    assert q["Value"] == 6144.0 and q["QuotaName"] == "Running On-Demand P instances"
    codes = {x["QuotaCode"] for x in sq.list_service_quotas(ServiceCode="ec2")["Quotas"]}
    assert codes == {"L-417A185B", "L-7212CCBC"}
    mock_aws.backend("aws").state.quota_limits[(REGION, "L-417A185B")] = 192 * 3
    _run(ec2, count=2)
    with pytest.raises(ClientError) as e:
        _run(ec2, zone="us-east-1b", count=2)
    assert _code(e)[0] == "VcpuLimitExceeded"


def test_client_token_makes_run_instances_idempotent(mock_aws: Any) -> None:
    ec2 = _client(mock_aws)
    first = _run(ec2, count=2, ClientToken="tok-1")
    assert _run(ec2, count=2, ClientToken="tok-1") == first
    with pytest.raises(ClientError) as e:
        _run(ec2, count=1, ClientToken="tok-1")
    assert _code(e)[0] == "IdempotentParameterMismatch"


def test_placement_groups(mock_aws: Any) -> None:
    ec2 = _client(mock_aws)
    ec2.create_placement_group(GroupName="pg-a", Strategy="cluster",
                               TagSpecifications=[{"ResourceType": "placement-group",
                                                   "Tags": [{"Key": "awan:owner", "Value": "t"}]}])
    groups = ec2.describe_placement_groups()["PlacementGroups"]
    assert [(g["GroupName"], g["Strategy"], g["Tags"]) for g in groups] == [
        ("pg-a", "cluster", [{"Key": "awan:owner", "Value": "t"}])]
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=AMI, InstanceType="p5.48xlarge", MinCount=1, MaxCount=1,
                          Placement={"AvailabilityZone": "us-east-1a", "GroupName": "nope"})
    assert _code(e)[0] == "InvalidPlacementGroup.Unknown"
    ec2.delete_placement_group(GroupName="pg-a")
    assert ec2.describe_placement_groups()["PlacementGroups"] == []


def test_capacity_reservation_holds_capacity_and_launches_draw_on_it(mock_aws: Any) -> None:
    ec2, ledger = _client(mock_aws), mock_aws.backend("aws").ledger
    free = ledger.free("us-east-1b", "p5.48xlarge")
    cr = ec2.create_capacity_reservation(InstanceType="p5.48xlarge", InstancePlatform="Linux/UNIX",
                                         AvailabilityZone="us-east-1b", InstanceCount=4,
                                         InstanceMatchCriteria="targeted")["CapacityReservation"]
    assert ledger.free("us-east-1b", "p5.48xlarge") == free - 4
    target = {"CapacityReservationTarget": {"CapacityReservationId": cr["CapacityReservationId"]}}
    ids = _run(ec2, zone="us-east-1b", count=3, CapacityReservationSpecification=target)
    got = ec2.describe_capacity_reservations(CapacityReservationIds=[cr["CapacityReservationId"]])
    assert got["CapacityReservations"][0]["AvailableInstanceCount"] == 1
    assert ledger.free("us-east-1b", "p5.48xlarge") == free - 4      # not drawn from the free pool
    with pytest.raises(ClientError) as e:
        _run(ec2, zone="us-east-1b", count=2, CapacityReservationSpecification=target)
    assert _code(e)[0] == "ReservationCapacityExceeded"
    ec2.terminate_instances(InstanceIds=ids[:1])
    ec2.cancel_capacity_reservation(CapacityReservationId=cr["CapacityReservationId"])
    # the 2 unused slots return to the pool; the 2 running instances keep theirs
    assert ledger.free("us-east-1b", "p5.48xlarge") == free - 2


def test_ultraserver_capacity_block_purchase_and_launch(mock_aws: Any) -> None:
    ec2 = _client(mock_aws)
    offers = ec2.describe_capacity_block_offerings(CapacityDurationHours=48, UltraserverType="u-p6e-gb200x72",
                                                   UltraserverCount=2)["CapacityBlockOfferings"]
    assert {o["AvailabilityZone"] for o in offers} == {"us-east-1a", "us-east-1b"}
    o = offers[0]
    assert (o["InstanceType"], o["InstanceCount"], o["UltraserverCount"]) == ("p6e-gb200.36xlarge", 36, 2)
    assert (o["EndDate"] - o["StartDate"]).total_seconds() == 48 * 3600
    bought = ec2.purchase_capacity_block(CapacityBlockOfferingId=o["CapacityBlockOfferingId"],
                                         InstancePlatform="Linux/UNIX")
    cr = bought["CapacityReservation"]
    assert cr["ReservationType"] == "capacity-block" and cr["TotalInstanceCount"] == 36
    blocks = ec2.describe_capacity_blocks()["CapacityBlocks"]
    assert blocks[0]["UltraserverType"] == "u-p6e-gb200x72"
    assert blocks[0]["CapacityReservationIds"] == [cr["CapacityReservationId"]]
    # the zone's two racks are now one: a second 2-rack offering there is gone
    again = ec2.describe_capacity_block_offerings(CapacityDurationHours=24, UltraserverType="u-p6e-gb200x72",
                                                  UltraserverCount=2)["CapacityBlockOfferings"]
    assert o["AvailabilityZone"] not in {x["AvailabilityZone"] for x in again}
    ids = _run(ec2, itype="p6e-gb200.36xlarge", zone=o["AvailabilityZone"], count=18,
               InstanceMarketOptions={"MarketType": "capacity-block"},
               CapacityReservationSpecification={"CapacityReservationTarget": {
                   "CapacityReservationId": cr["CapacityReservationId"]}})
    assert len(ids) == 18
    # GB200 is sold only as capacity blocks: plain on-demand is refused
    with pytest.raises(ClientError) as e:
        _run(ec2, itype="p6e-gb200.36xlarge", zone="us-east-1b")
    assert _code(e)[0] == "Unsupported"


@pytest.mark.parametrize(("fault", "code", "status"), [
    ({"kind": "throttle", "retry_after": 0.5}, "RequestLimitExceeded", 503),
    ({"kind": "outage", "region": REGION}, "Unavailable", 503),
    ({"kind": "error", "code": "InternalError", "status": 500, "operation": "DescribeInstances"},
     "InternalError", 500),
])
def test_faults_are_rendered_as_ec2_errors(mock_aws: Any, fault: dict, code: str, status: int) -> None:
    ec2 = _client(mock_aws)
    _control(mock_aws, "/_mock/faults", {**fault, "times": 1})
    with pytest.raises(ClientError) as e:
        ec2.describe_instances()
    assert _code(e) == (code, status)
    if fault["kind"] == "throttle":
        assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "0.5"
    ec2.describe_instances()     # times=1: the next call goes through


def test_fault_in_another_region_does_not_hit(mock_aws: Any) -> None:
    _control(mock_aws, "/_mock/faults", {"kind": "outage", "region": "eu-west-2"})
    _client(mock_aws).describe_instances()


def test_unknown_access_key_is_auth_failure(mock_aws: Any) -> None:
    with pytest.raises(ClientError) as e:
        _client(mock_aws, key="AKIANOTTHEMOCKKEY000").describe_instances()
    assert _code(e) == ("AuthFailure", 401)


def test_preempt_terminates_spot_only_and_inventory_lists_resources(mock_aws: Any) -> None:
    ec2 = _client(mock_aws)
    spot = _run(ec2, count=2, InstanceMarketOptions={"MarketType": "spot"},
                TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "awan:owner", "Value": "x"}]}])
    od = _run(ec2, count=1)
    ec2.create_placement_group(GroupName="pg-b", Strategy="cluster")
    got = _control(mock_aws, "/_mock/preempt", {"region": REGION, "instanceType": "p5.48xlarge"})
    assert sorted(got["nodes"]) == sorted(spot)
    inv = _control(mock_aws, "/_mock/inventory", method="GET")["resources"]
    instances = {r["id"]: r for r in inv if r["kind"] == "instance"}
    assert set(instances) == set(od)
    assert {r["id"] for r in inv if r["kind"] == "placement-group"} == {"pg-b"}
    assert _control(mock_aws, "/_mock/revoke", {"zone": "us-east-1a"})["nodes"] == od


def test_reset_forgets_moto_state_and_refills(mock_aws: Any) -> None:
    ec2 = _client(mock_aws)
    _run(ec2, count=2)
    mock_aws.reset()
    assert ec2.describe_instances()["Reservations"] == []
    assert mock_aws.backend("aws").ledger.free("us-east-1a", "p5.48xlarge") == 16


# -- Capacity Blocks over time (issue 10): the mock's clock is moved through /_mock/clock -------------------

def _block(ec2: Any, mock_aws: Any, start_in_h: int, hours: int = 24, count: int = 2) -> dict:
    now = datetime.fromisoformat(_control(mock_aws, "/_mock/clock", method="GET")["now"])
    offers = ec2.describe_capacity_block_offerings(InstanceType="p5.48xlarge", InstanceCount=count,
                                                   CapacityDurationHours=hours,
                                                   StartDateRange=now + timedelta(hours=start_in_h))
    o = offers["CapacityBlockOfferings"][0]
    assert o["StartDate"] == now + timedelta(hours=start_in_h)
    return ec2.purchase_capacity_block(CapacityBlockOfferingId=o["CapacityBlockOfferingId"],
                                       InstancePlatform="Linux/UNIX")["CapacityReservation"]


def _into(cr: dict) -> dict[str, Any]:
    return {"InstanceMarketOptions": {"MarketType": "capacity-block"},
            "CapacityReservationSpecification": {"CapacityReservationTarget": {
                "CapacityReservationId": cr["CapacityReservationId"]}}}


def test_block_that_starts_later_refuses_launches_until_its_start(mock_aws: Any) -> None:
    ec2 = _client(mock_aws)
    cr = _block(ec2, mock_aws, start_in_h=5 * 24)
    assert cr["State"] == "scheduled"
    with pytest.raises(ClientError) as e:
        _run(ec2, zone=cr["AvailabilityZone"], **_into(cr))
    assert _code(e) == ("InsufficientInstanceCapacity", 500)
    assert "starts at" in e.value.response["Error"]["Message"]
    _control(mock_aws, "/_mock/clock", {"advanceSeconds": 5 * 24 * 3600 - 60})
    with pytest.raises(ClientError):
        _run(ec2, zone=cr["AvailabilityZone"], **_into(cr))        # one minute early: still refused
    _control(mock_aws, "/_mock/clock", {"advanceSeconds": 60})
    got = ec2.describe_capacity_reservations(CapacityReservationIds=[cr["CapacityReservationId"]])
    assert got["CapacityReservations"][0]["State"] == "active"
    assert len(_run(ec2, zone=cr["AvailabilityZone"], count=2, **_into(cr))) == 2
    events = _control(mock_aws, "/_mock/events", method="GET")["events"]
    assert [e["detail_type"] for e in events] == ["Capacity Block Delivered"]


def test_block_instances_are_warned_then_reclaimed_before_the_end(mock_aws: Any) -> None:
    ec2, ledger = _client(mock_aws), mock_aws.backend("aws").ledger
    cr = _block(ec2, mock_aws, start_in_h=1, hours=24)
    zone = cr["AvailabilityZone"]
    free = ledger.free(zone, "p5.48xlarge")
    _control(mock_aws, "/_mock/clock", {"advanceSeconds": 3600})
    ids = _run(ec2, zone=zone, count=2, **_into(cr))
    # 41 minutes before the end: nothing yet; 40: the warning; 30: the instances are terminated
    _control(mock_aws, "/_mock/clock", {"advanceSeconds": 24 * 3600 - 41 * 60})
    assert [e["detail_type"] for e in _control(mock_aws, "/_mock/events", method="GET")["events"]] == [
        "Capacity Block Delivered"]
    _control(mock_aws, "/_mock/clock", {"advanceSeconds": 60})
    events = _control(mock_aws, "/_mock/events", method="GET")["events"]
    assert events[-1]["detail_type"] == "Capacity Block Expiration Warning"
    assert events[-1]["detail"]["capacity-reservation-id"] == cr["CapacityReservationId"]
    states = {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
              for i in r["Instances"]}
    assert set(states.values()) == {"running"}
    _control(mock_aws, "/_mock/clock", {"advanceSeconds": 10 * 60})
    insts = [i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]
    assert {i["State"]["Name"] for i in insts} <= {"shutting-down", "terminated"}
    assert {i["StateReason"]["Code"] for i in insts} == {"Server.ScheduledStop"}
    with pytest.raises(ClientError) as e:      # no new launches into a block being reclaimed
        _run(ec2, zone=zone, **_into(cr))
    assert _code(e)[0] == "InsufficientInstanceCapacity"
    _control(mock_aws, "/_mock/clock", {"advanceSeconds": 30 * 60})
    got = ec2.describe_capacity_reservations(CapacityReservationIds=[cr["CapacityReservationId"]])
    assert got["CapacityReservations"][0]["State"] == "expired"
    assert ec2.describe_capacity_blocks()["CapacityBlocks"][0]["State"] == "expired"
    assert ledger.free(zone, "p5.48xlarge") == free + 2       # the block's capacity is back for sale


def test_clock_control_refuses_going_back(mock_aws: Any) -> None:
    req = urllib.request.Request(mock_aws.urls["aws"] + "/_mock/clock", method="POST",
                                 data=json.dumps({"advanceSeconds": -5}).encode(),
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 400 and "advanceSeconds" in json.loads(e.value.read())["error"]


def test_a_new_mock_clouds_starts_empty_beside_another_aws_mock_in_the_process(mock_aws: Any) -> None:
    """moto's EC2 state is global to the process: a MockClouds started where another AWS mock already holds
    instances must not inherit them (a resilience test counted a previous test's instances as its orphans
    and never settled)."""
    _run(_client(mock_aws))
    assert _control(mock_aws, "/_mock/inventory", method="GET")["resources"]
    with MockClouds(clouds=("aws",)) as fresh:
        assert _control(fresh, "/_mock/inventory", method="GET")["resources"] == []
