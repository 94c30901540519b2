"""Which dated pools the live move treats as ending: inside ``now .. now + moveBeforeEnd``, not those ended
already, not those with more time left, not undated ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controlplane.placement.snapshot import FleetSnapshot
from controlplane.timeline.moving import ending_pools
from providers.catalog import CapacityType, default_catalog
from providers.model import CapacityPool

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _pool(rid: str, ends: datetime | None) -> CapacityPool:
    return CapacityPool("aws", "us-east-1", "us-east-1a", "p5.48xlarge", CapacityType.RESERVED, 2,
                        reservation_id=rid, starts_at=NOW - timedelta(days=1), ends_at=ends)


def test_ending_pools_are_those_ending_within_the_lead() -> None:
    snap = FleetSnapshot(default_catalog(), (
        _pool("cr-soon", NOW + timedelta(minutes=90)), _pool("cr-edge", NOW + timedelta(hours=2)),
        _pool("cr-later", NOW + timedelta(hours=2, seconds=1)), _pool("cr-gone", NOW - timedelta(minutes=1)),
        _pool("cr-open", None)))
    got = ending_pools(snap, NOW, timedelta(hours=2))
    assert sorted(got) == ["cr-edge", "cr-soon"]
    assert got["cr-soon"].key == ("aws", "us-east-1a", "p5.48xlarge", "reserved", "cr-soon")
    assert ending_pools(snap, NOW, timedelta(minutes=30)) == {}
