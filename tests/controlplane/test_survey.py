"""`awan offerings` quota headroom: spot and on-demand are metered apart (issue 17), reserved by neither."""

from __future__ import annotations

from datetime import UTC, datetime

from controlplane.survey import Survey, offering_rows
from providers.catalog import CapacityType, Offering
from providers.model import CapacityReport, Quota

IT = "p5.48xlarge"      # 192 vCPUs, 8 GPUs per node


def _offer(ct: CapacityType) -> Offering:
    return Offering("aws", IT, "us-east-1", "us-east-1a", ct, 50.0, "test")


def _headroom(quotas: list[Quota]) -> dict[str, int | None]:
    offers = [_offer(ct) for ct in CapacityType]
    s = Survey(offerings={"aws": offers}, capacity={"aws": CapacityReport(provider="aws", pools=(), quotas=tuple(quotas),
                                                                     taken_at=datetime(2026, 10, 1, tzinfo=UTC))})
    return {r.offering.capacity_type.value: r.quota_headroom_nodes for r in offering_rows(s)}


def test_spot_and_on_demand_quotas_bound_only_their_own_rows():
    quotas = [Quota("aws", "us-east-1", "L-417A185B", "vcpus", 192 * 4, 192, (IT,), ("on-demand",)),
              Quota("aws", "us-east-1", "L-7212CCBC", "vcpus", 192 * 2, 0, (IT,), ("spot",))]
    assert _headroom(quotas) == {"on-demand": 3, "spot": 2, "reserved": None}


def test_a_quota_without_capacity_types_meters_on_demand_and_spot_alike():
    quotas = [Quota("aws", "us-east-1", "all", "gpus", 8 * 5, 8, ())]
    assert _headroom(quotas) == {"on-demand": 4, "spot": 4, "reserved": None}
