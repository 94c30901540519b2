from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from providers.base import Provider
from providers.breaker import BreakerState, CircuitBreaker, GuardedProvider
from providers.catalog.model import Offering
from providers.errors import CapacityError, ThrottledError, UnavailableError
from providers.model import CapacityReport, HealthStatus, Node, NodeRequest, ProviderHealth


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Flaky(Provider):
    """A provider whose next answers are scripted: an exception instance or None for success."""

    name = "flaky"
    endpoint = "http://127.0.0.1:9"

    def __init__(self) -> None:
        self.script: list[Exception | None] = []
        self.calls = 0

    def _next(self) -> None:
        self.calls += 1
        e = self.script.pop(0) if self.script else None
        if e is not None:
            raise e

    def offerings(self) -> list[Offering]:
        self._next()
        return []

    def capacity(self) -> CapacityReport:
        self._next()
        return CapacityReport("flaky", (), (), datetime.now(UTC))

    def list_nodes(self) -> list[Node]:
        self._next()
        return []

    def health(self) -> ProviderHealth:
        self._next()
        return ProviderHealth("flaky", self.endpoint, HealthStatus.OK, 1.0)

    def create_nodes(self, request: NodeRequest) -> list[Node]:
        self._next()
        return []

    def delete_nodes(self, nodes: Sequence[Node]) -> None:
        self._next()


def test_opens_after_threshold_fails_fast_then_half_opens_and_closes() -> None:
    clock, inner = Clock(), Flaky()
    p = GuardedProvider(inner, CircuitBreaker("flaky", failure_threshold=3, reset_after_s=30, clock=clock))
    inner.script = [UnavailableError("down")] * 3
    for _ in range(3):
        with pytest.raises(UnavailableError):
            p.list_nodes()
    assert p.breaker.state is BreakerState.OPEN
    with pytest.raises(UnavailableError, match="circuit open") as e:
        p.list_nodes()
    assert inner.calls == 3, "an open breaker must not call the cloud"
    assert e.value.provider == "flaky" and e.value.endpoint == inner.endpoint
    clock.t = 31
    assert p.list_nodes() == []          # half-open trial succeeds
    assert p.breaker.state is BreakerState.CLOSED


def test_half_open_failure_reopens() -> None:
    clock, inner = Clock(), Flaky()
    p = GuardedProvider(inner, CircuitBreaker("flaky", failure_threshold=1, reset_after_s=10, clock=clock))
    inner.script = [ThrottledError("slow down"), ThrottledError("still")]
    with pytest.raises(ThrottledError):
        p.health()
    clock.t = 11
    with pytest.raises(ThrottledError):
        p.health()
    assert p.breaker.state is BreakerState.OPEN and p.breaker.opened_at == 11


def test_capacity_errors_are_answers_not_sickness() -> None:
    inner = Flaky()
    p = GuardedProvider(inner, CircuitBreaker("flaky", failure_threshold=2))
    inner.script = [CapacityError("none left")] * 5
    for _ in range(5):
        with pytest.raises(CapacityError):
            p.create_nodes(NodeRequest("pool", "w", "r", "z", "t", "on-demand", 1, "k"))  # type: ignore[arg-type]
    assert p.breaker.state is BreakerState.CLOSED and inner.calls == 5


def test_capabilities_go_through_the_breaker_and_nothing_passes_around_it() -> None:
    from providers.capabilities import PlacementGroupRequest, ReservationRequest
    from tests.infra.fakes import BareFakeProvider, FakeProvider

    inner = FakeProvider("aws")
    p = GuardedProvider(inner, CircuitBreaker("aws", failure_threshold=1, reset_after_s=60, clock=Clock()))
    assert not hasattr(p, "reserve") and not hasattr(p, "ensure_placement")   # no __getattr__ passthrough
    groups, reservations = p.supports_placement_groups(), p.supports_reservations()
    assert groups is not None and reservations is not None
    assert groups.ensure_placement(PlacementGroupRequest("us-east-1", "pg-a")).id == "pg-a"
    p.breaker.state, p.breaker.opened_at = BreakerState.OPEN, 0.0
    before = list(inner.calls)
    with pytest.raises(UnavailableError, match="circuit open"):
        reservations.reserve(ReservationRequest("us-east-1", "us-east-1a", "p5.48xlarge", 1, "tok"))
    with pytest.raises(UnavailableError, match="circuit open"):
        groups.delete_placement("us-east-1", "pg-a")
    assert inner.calls == before and inner.reservations == {}
    # An adapter without an ability yields none through the wrapper either.
    assert GuardedProvider(BareFakeProvider("gcp")).supports_reservations() is None


def test_the_local_engine_uses_the_process_providers_not_a_second_set(mock_config) -> None:
    from infra.engines.select import select_engine
    from providers.breaker import guard_all
    from providers.registry import build_providers

    guarded = guard_all(build_providers(mock_config, ["aws"]))
    engine = select_engine("local", config=mock_config, providers=guarded)
    assert engine._providers("aws") is guarded["aws"]             # type: ignore[attr-defined]
    with pytest.raises(KeyError):     # configured but not in the process's set: not built behind its back
        engine._providers("gcp")                                  # type: ignore[attr-defined]
    assert guard_all(guarded)["aws"] is guarded["aws"]            # wrapped once


class RegionalFlaky(Flaky):
    """Flaky, listing region by region: region "bad" always fails as unavailable."""

    def configured_regions(self) -> list[str]:
        return ["bad", "good"]

    def list_nodes_in(self, region: str) -> list[Node]:
        self.calls += 1
        if region == "bad":
            raise UnavailableError("region down", provider="flaky", region=region)
        return []


def test_a_failing_region_opens_its_own_breaker_not_the_providers() -> None:
    # Observation lists region by region so that one sick region leaves the others known: a breaker for
    # the whole provider opened by that region's failures would make every region fail fast.
    inner = RegionalFlaky()
    guarded = GuardedProvider(inner, CircuitBreaker("flaky", failure_threshold=2, clock=Clock()))
    lister = guarded.supports_regional_listing()
    assert lister is not None and lister.configured_regions() == ["bad", "good"]
    for _ in range(4):
        with pytest.raises(UnavailableError):
            lister.list_nodes_in("bad")
    assert inner.calls == 2                      # the region's breaker opened after two failures
    assert lister.list_nodes_in("good") == []    # the other region is still asked
    assert guarded.list_nodes() == []            # and so is the provider
    assert guarded.breaker.state is BreakerState.CLOSED
