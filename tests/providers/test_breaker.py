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
