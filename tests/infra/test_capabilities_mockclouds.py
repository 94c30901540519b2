"""The typed capabilities driven from the local engine into the real AWS adapter over boto3 and the AWS
mock (no fake in between): a reservation that survives a SIGKILL without a duplicate, and a Capacity
Block bought and launched into."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from infra.engines.local import LocalEngine
from infra.engines.select import provider_factory
from infra.engines.state import FileStateStore
from infra.spec import ReservationKind, StackSpec
from providers.capabilities import CapacityBlockQuery, ReservationRequest, SupportsCapacityBlocks
from providers.catalog.model import CapacityType
from providers.registry import build_providers
from tests.infra.fakes import pool

REPO = Path(__file__).resolve().parents[2]
ZONE, TYPE = "us-east-1a", "p5.48xlarge"


def _ec2(mock_config: Any) -> Any:
    import boto3

    aws = mock_config.providers["aws"]
    return boto3.client("ec2", region_name="us-east-1", endpoint_url=aws.endpoint,
                        aws_access_key_id=aws.secret("access_key_id"),
                        aws_secret_access_key=aws.secret("secret_access_key"))


def _reservations(ec2: Any, stack: str) -> list[dict[str, Any]]:
    crs = ec2.describe_capacity_reservations(Filters=[{"Name": "tag:awan:stack", "Values": [stack]}])
    return [c for c in crs["CapacityReservations"] if c["State"] in ("active", "scheduled")]


def _running(ec2: Any, stack: str) -> list[dict[str, Any]]:
    res = ec2.describe_instances(Filters=[{"Name": "tag:awan:stack", "Values": [stack]},
                                          {"Name": "instance-state-name", "Values": ["running"]}])
    return [i for r in res["Reservations"] for i in r["Instances"]]


def test_the_mock_and_the_adapter_honour_the_reservation_client_token(mock_config: Any) -> None:
    aws = build_providers(mock_config, ["aws"])["aws"]
    caps = aws.supports_reservations()
    assert caps is not None
    req = ReservationRequest("us-east-1", ZONE, TYPE, 1, idempotency_token="tok-1", tags={"awan:stack": "t-token"})
    first, again = caps.reserve(req), caps.reserve(req)
    assert first.id == again.id
    assert [c["CapacityReservationId"] for c in _reservations(_ec2(mock_config), "t-token")] == [first.id]
    caps.release_reservation("us-east-1", first.id)


_KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    from infra.engines.local import LocalEngine
    from infra.engines.select import provider_factory
    from infra.engines.state import FileStateStore
    from infra.spec import StackSpec
    from providers.catalog.model import CapacityType
    from providers.config import load_config
    from tests.infra.fakes import pool

    class DiesAfterTheReservation(FileStateStore):
        # SIGKILLed after the cloud made the reservation, before its id reached the state.
        def put(self, stack, state):
            if any(r["type"].endswith("CapacityReservation") and r.get("status") == "created"
                   for r in state["resources"].values()):
                os.kill(os.getpid(), signal.SIGKILL)
            super().put(stack, state)

    cfg = load_config(sys.argv[1])
    p = pool("res-a", nodes=1, placement="none", capacity_type=CapacityType.RESERVED)
    LocalEngine(provider_factory(cfg), store=DiesAfterTheReservation(sys.argv[2])).up(StackSpec("aws", "us-east-1", (p,)))
""")


@pytest.mark.slow
def test_reservation_rerun_after_sigkill_creates_no_duplicate(mockclouds: Any, mock_config: Any,
                                                              tmp_path: Path) -> None:
    cfg_file = mockclouds.write_config(tmp_path / "awan.yaml")
    state = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(cfg_file), str(state)], cwd=REPO, env=env,
                         capture_output=True, timeout=600)
    assert run.returncode == -signal.SIGKILL, run.stderr.decode()[-2000:]
    stack = StackSpec("aws", "us-east-1", (pool("res-a", nodes=1, placement="none",
                                                capacity_type=CapacityType.RESERVED),))
    ec2 = _ec2(mock_config)
    assert len(_reservations(ec2, stack.name)) == 1          # the killed run made it; its id is not recorded
    eng = LocalEngine(provider_factory(mock_config), store=FileStateStore(state))
    eng.up(stack)
    (cr,) = _reservations(ec2, stack.name)                  # adopted, not made again
    assert len(_running(ec2, stack.name)) == 1
    assert (cr["TotalInstanceCount"], cr["AvailableInstanceCount"]) == (1, 0)   # the instance draws on it
    eng.destroy(stack.name)
    assert _reservations(ec2, stack.name) == []


@pytest.mark.slow
def test_a_capacity_block_is_bought_and_launched_into_through_boto3(mock_config: Any, tmp_path: Path) -> None:
    aws = build_providers(mock_config, ["aws"])["aws"]
    assert isinstance(aws, SupportsCapacityBlocks)
    (offer, *_) = [o for o in aws.find_capacity_blocks(CapacityBlockQuery("us-east-1", TYPE, count=1))
                   if o.zone == ZONE]
    assert not offer.id.startswith("cbo-")        # EC2 promises no prefix; the kind comes from placement
    p = pool("blk-a", nodes=1, placement="none", capacity_type=CapacityType.RESERVED, zone=offer.zone,
             reservation_id=offer.id, reservation_kind=ReservationKind.BLOCK_OFFERING.value)
    stack = StackSpec("aws", "us-east-1", (p,))
    eng = LocalEngine(provider_factory(mock_config), store=FileStateStore(tmp_path))
    r = eng.up(stack)
    assert r.not_applied == [], [c.detail for c in r.not_applied]
    ec2 = _ec2(mock_config)
    (cr,) = _reservations(ec2, stack.name)
    assert cr["ReservationType"] == "capacity-block" and cr["CapacityBlockId"]
    assert len(_running(ec2, stack.name)) == 1
    assert (cr["TotalInstanceCount"], cr["AvailableInstanceCount"]) == (1, 0)   # launched into the block
    # What placement will see of it: a reserved pool whose kind (from EC2's ReservationType) says Capacity
    # Block, so the pool spec built from the placement record launches with market type capacity-block.
    kinds = {pl.reservation_kind for pl in aws.capacity().pools if pl.reservation_id == cr["CapacityReservationId"]}
    assert kinds == {"capacity-block"}
    assert eng.up(stack).changes.changed is False          # a second run buys nothing
    assert len(_reservations(ec2, stack.name)) == 1
    eng.destroy(stack.name)
