"""AWSProvider against the AWS mock: real boto3 over HTTP, no patched SDK calls.

The retry clock is injected (``sleep``) so backoff is observed without waiting on wall-clock time.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from typing import Any

import pytest

from providers.aws.adapter import AWSProvider
from providers.aws.clients import AwsClients
from providers.catalog import CapacityType
from providers.errors import AuthError, CapacityError, QuotaError, UnavailableError
from providers.model import HealthStatus, NodeRequest, NodeState

REGION = "us-east-1"


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _provider(mock_aws: Any, sleeps: Sleeps | None = None, **cfg: Any) -> AWSProvider:
    base = mock_aws.config().providers["aws"]
    c = base.model_copy(update={"regions": [REGION], "max_attempts": 3, **cfg})
    return AWSProvider(c, sleep=sleeps if sleeps is not None else Sleeps(), backoff_base=0.01)


def _fault(mock_aws: Any, **body: Any) -> None:
    req = urllib.request.Request(mock_aws.urls["aws"] + "/_mock/faults", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req).close()


def _req(key: str, count: int = 2, zone: str = "us-east-1a", itype: str = "p5.48xlarge",
         ctype: CapacityType = CapacityType.ON_DEMAND, **kw: Any) -> NodeRequest:
    return NodeRequest(pool="pool-a", workload="wl-1", region=REGION, zone=zone, instance_type=itype,
                       capacity_type=ctype, count=count, idempotency_key=key, **kw)


def test_offerings_follow_live_zones_with_live_spot_prices(mock_aws: Any) -> None:
    p = _provider(mock_aws)
    rows = p.offerings()
    assert rows and {o.region for o in rows} == {REGION}
    keys = {(o.zone, o.instance_type, o.capacity_type) for o in rows}
    assert ("us-east-1f", "p6-b200.48xlarge", CapacityType.ON_DEMAND) in keys
    assert ("us-east-1a", "p6-b200.48xlarge", CapacityType.ON_DEMAND) not in keys
    assert ("us-east-1a", "p6e-gb200.36xlarge", CapacityType.RESERVED) in keys
    spot = [o for o in rows if o.capacity_type == CapacityType.SPOT]
    assert spot and all(o.source.startswith("aws DescribeSpotPriceHistory") for o in spot)


def test_capacity_reports_quotas_and_quota_bounded_pools(mock_aws: Any) -> None:
    p = _provider(mock_aws)
    p.create_nodes(_req("cap-1", count=2))
    rep = p.capacity()
    od = next(q for q in rep.quotas if q.name == "L-417A185B")
    assert (od.limit, od.used, od.unit) == (6144.0, 384.0, "vcpus")
    spot = next(q for q in rep.quotas if q.name == "L-7212CCBC")     # metered apart (issue 17, defect 1)
    assert (od.capacity_types, spot.capacity_types, spot.used) == (("on-demand",), ("spot",), 0.0)
    pool = next(x for x in rep.pools if (x.zone, x.instance_type, x.capacity_type) ==
                ("us-east-1b", "p5.48xlarge", CapacityType.ON_DEMAND))
    assert pool.available_nodes == (6144 - 384) // 192 and pool.capacity_known is False
    assert not [x for x in rep.pools if x.capacity_type == CapacityType.RESERVED]


def test_create_list_delete_nodes(mock_aws: Any) -> None:
    p = _provider(mock_aws)
    made = p.create_nodes(_req("cld-1", count=2, tags={"team": "research"}))
    assert len(made) == 2 and all(n.gpus == 8 and n.pool == "pool-a" for n in made)
    listed = {n.id: n for n in p.list_nodes()}
    assert set(listed) == {n.id for n in made}
    n = listed[made[0].id]
    assert (n.state, n.zone, n.workload, n.labels["team"]) == (NodeState.RUNNING, "us-east-1a", "wl-1", "research")
    p.delete_nodes(made)
    assert p.list_nodes() == []
    p.delete_nodes(made)       # already gone: not an error


def test_create_is_idempotent_by_key(mock_aws: Any) -> None:
    p = _provider(mock_aws)
    key = "workload-wl-1/pool-a/generation-7/" + "x" * 60     # longer than EC2's 64-character limit
    first = p.create_nodes(_req(key))
    second = p.create_nodes(_req(key))
    assert [n.id for n in first] == [n.id for n in second]
    assert len(p.list_nodes()) == 2


def test_exhausted_zone_is_capacity_error(mock_aws: Any) -> None:
    mock_aws.backend("aws").ledger.set_free(1, zone="us-east-1a", instance_type="p5.48xlarge")
    with pytest.raises(CapacityError) as e:
        _provider(mock_aws).create_nodes(_req("ice-1", count=2))
    assert (e.value.code, e.value.provider, e.value.region) == ("InsufficientInstanceCapacity", "aws", REGION)
    assert e.value.endpoint == mock_aws.urls["aws"]


def test_capacity_errors_are_never_retried(mock_aws: Any) -> None:
    sleeps = Sleeps()
    mock_aws.backend("aws").ledger.set_free(0, zone="us-east-1a")
    with pytest.raises(CapacityError):
        _provider(mock_aws, sleeps).create_nodes(_req("ice-2", count=1))
    assert sleeps == []


def test_quota_exceeded_is_quota_error(mock_aws: Any) -> None:
    mock_aws.backend("aws").state.quota_limits[(REGION, "L-7212CCBC")] = 192.0
    with pytest.raises(QuotaError) as e:
        _provider(mock_aws).create_nodes(_req("q-1", count=2, ctype=CapacityType.SPOT))
    assert e.value.code == "VcpuLimitExceeded"


def test_throttling_is_retried_with_backoff_honouring_retry_after(mock_aws: Any) -> None:
    sleeps = Sleeps()
    _fault(mock_aws, kind="throttle", operation="RunInstances", times=2, retry_after=0.25)
    made = _provider(mock_aws, sleeps).create_nodes(_req("thr-1", count=1))
    assert len(made) == 1
    assert len(sleeps) == 2 and all(s >= 0.25 for s in sleeps)


def test_outage_gives_unavailable_after_bounded_retries(mock_aws: Any) -> None:
    sleeps = Sleeps()
    _fault(mock_aws, kind="outage", region=REGION)
    with pytest.raises(UnavailableError) as e:
        _provider(mock_aws, sleeps, max_attempts=3).list_nodes()
    assert len(sleeps) == 2 and e.value.code == "Unavailable"
    assert _provider(mock_aws, max_attempts=1).health().status == HealthStatus.DOWN


def test_health_ok(mock_aws: Any) -> None:
    p = _provider(mock_aws)
    # moto's first EC2 call loads its tables (seconds on a busy machine), which the slow-region rule
    # would rightly call degraded: warm it, then ask.
    p.health()
    h = p.health()
    assert h.regions.keys() == {REGION} and h.status == h.regions[REGION]
    assert h.status == HealthStatus.OK or h.latency_ms > 2000, h


def test_a_regions_health_latency_leaves_out_building_the_clients(mock_aws: Any, monkeypatch: Any) -> None:
    """The regions are probed at once, but their clients are built one at a time (under the clients' lock): a
    probe timed from its start counted its own build and waited for the other regions' builds, and with slow
    builds a healthy region read over SLOW_REGION_MS, DEGRADED. Fails before: each latency held a build."""
    regions = ["us-east-1", "us-west-2"]
    _provider(mock_aws, regions=regions).health()   # the mock's first call per region (moto's tables), done
    build_s = 4.0   # far above a warm mock call, even on a loaded machine: the old code reads at least this
    real = AwsClients._make

    def slow_build(self: AwsClients, service: str, region: str) -> Any:
        time.sleep(build_s)
        return real(self, service, region)

    monkeypatch.setattr(AwsClients, "_make", slow_build)
    h = _provider(mock_aws, regions=regions).health()
    assert h.regions.keys() == set(regions)
    assert h.latency_ms < build_s * 1000, h


def test_unreachable_endpoint_names_provider_and_endpoint(mock_aws: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"      # bound, not listening: refused
        p = _provider(mock_aws, endpoint=url, max_attempts=2)
        with pytest.raises(UnavailableError) as e:
            p.list_nodes()
    assert e.value.provider == "aws" and e.value.endpoint == url and url in str(e.value)


def test_bad_credentials_give_auth_error(mock_aws: Any) -> None:
    from pydantic import SecretStr

    p = _provider(mock_aws, credentials={"access_key_id": SecretStr("AKIAWRONG0000000000"),
                                         "secret_access_key": SecretStr("nope")})
    with pytest.raises(AuthError) as e:
        p.list_nodes()
    assert (e.value.code, e.value.provider, e.value.endpoint) == ("AuthFailure", "aws", mock_aws.urls["aws"])


def test_capacity_reservation_then_launch_into_it(mock_aws: Any) -> None:
    p = _provider(mock_aws)
    pool = p.create_capacity_reservation(REGION, "us-east-1b", "p5.48xlarge", 4, {"awan:owner": "awan"})
    assert pool.available_nodes == 4 and pool.reservation_id.startswith("cr-")
    made = p.create_nodes(_req("res-1", count=3, zone="us-east-1b", ctype=CapacityType.RESERVED,
                               reservation_id=pool.reservation_id))
    assert {n.capacity_type for n in made} == {CapacityType.RESERVED}
    [reported] = [x for x in p.capacity().pools if x.reservation_id == pool.reservation_id]
    assert reported.available_nodes == 1 and reported.capacity_known
    p.cancel_capacity_reservation(REGION, pool.reservation_id)
    p.cancel_capacity_reservation(REGION, "cr-00000000000000000")     # unknown: not an error
    assert not [x for x in p.capacity().pools if x.reservation_id == pool.reservation_id]


def test_ultraserver_capacity_block_purchase_then_launch(mock_aws: Any) -> None:
    p = _provider(mock_aws)
    offers = p.describe_capacity_block_offerings(REGION, "p6e-gb200.36xlarge", count=18)
    assert offers and all(o.ultraserver_type == "u-p6e-gb200x72" and o.instance_count == 18 for o in offers)
    pool = p.purchase_capacity_block(offers[0], {"awan:owner": "awan"})
    assert (pool.ultraserver_type, pool.available_nodes, pool.capacity_type) == (
        "u-p6e-gb200x72", 18, CapacityType.RESERVED)
    made = p.create_nodes(_req("cb-1", count=18, zone=pool.zone, itype="p6e-gb200.36xlarge",
                               ctype=CapacityType.RESERVED, reservation_id=pool.reservation_id))
    assert len(made) == 18 and {n.capacity_type for n in made} == {CapacityType.RESERVED}
    [reported] = [x for x in p.capacity().pools if x.reservation_id == pool.reservation_id]
    assert (reported.available_nodes, reported.ultraserver_type) == (0, "u-p6e-gb200x72")
    assert reported.starts_at is not None and reported.ends_at is not None


def test_capacity_block_offerings_for_hgx_types(mock_aws: Any) -> None:
    offers = _provider(mock_aws).describe_capacity_block_offerings(REGION, "p5.48xlarge", count=4, hours=72)
    assert offers and {o.instance_count for o in offers} == {4} and {o.hours for o in offers} == {72}
    assert not any(o.ultraserver_type for o in offers)


def test_placement_group_is_idempotent(mock_aws: Any) -> None:
    p = _provider(mock_aws)
    assert p.ensure_placement_group(REGION, "pg-1", {"awan:owner": "awan"}) == "pg-1"
    assert p.ensure_placement_group(REGION, "pg-1") == "pg-1"
    made = p.create_nodes(_req("pg-n", count=1, placement_group="pg-1"))
    assert len(made) == 1
    p.delete_placement_group(REGION, "pg-1")
    p.delete_placement_group(REGION, "pg-1")
    inv = mock_aws.backend("aws").inventory()
    assert not [r for r in inv if r["kind"] == "placement-group"]


def test_spot_preemption_removes_nodes(mock_aws: Any) -> None:
    p = _provider(mock_aws)
    spot = p.create_nodes(_req("sp-1", count=2, ctype=CapacityType.SPOT))
    od = p.create_nodes(_req("od-1", count=1))
    req = urllib.request.Request(mock_aws.urls["aws"] + "/_mock/preempt", method="POST",
                                 data=json.dumps({"region": REGION}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        assert sorted(json.loads(r.read())["nodes"]) == sorted(n.id for n in spot)
    assert [n.id for n in p.list_nodes()] == [od[0].id]


def test_block_that_starts_later_is_reported_with_its_dates_and_never_placed_into_early(mock_aws: Any) -> None:
    """Issue 10: the adapter reads a future block's dates; placement ignores it until its start; EC2 (the
    mock) refuses a launch into it before then with insufficient capacity."""
    import dataclasses
    from datetime import UTC, datetime, timedelta

    from controlplane.model.workload import GPUWorkload
    from controlplane.placement.engine import place_one
    from controlplane.placement.snapshot import FleetSnapshot
    from controlplane.policy.model import PolicySet
    from providers.catalog import default_catalog

    p = _provider(mock_aws)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    [offer, *_] = p.describe_capacity_block_offerings(REGION, "p5.48xlarge", count=2, hours=48, start_after=start)
    pool = p.purchase_capacity_block(offer)
    [reported] = [x for x in p.capacity().pools if x.reservation_id == pool.reservation_id]
    assert reported.starts_at == start and reported.ends_at == start + timedelta(hours=48)
    with pytest.raises(CapacityError):
        p.create_nodes(_req("early", count=1, zone=pool.zone, ctype=CapacityType.RESERVED,
                            reservation_id=pool.reservation_id))
    w = GPUWorkload.model_validate({"metadata": {"name": "waits"}, "spec": {
        "gpus": {"model": "H100", "count": 16}, "capacityType": "reserved",
        "location": {"regions": ["aws:us-east-1"]}}})
    snap = FleetSnapshot(default_catalog(), (reported,), taken_at=datetime.now(UTC))
    assert not place_one(w, snap, PolicySet.default()).placed
    later = place_one(w, dataclasses.replace(snap, taken_at=start), PolicySet.default())
    assert later.placed and {a.reservation for a in later.assignments} == {pool.reservation_id}
    after_end = place_one(w, dataclasses.replace(snap, taken_at=start + timedelta(hours=48)), PolicySet.default())
    assert not after_end.placed
