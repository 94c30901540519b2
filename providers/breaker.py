"""A circuit breaker per provider, so one sick cloud cannot stall the reconcile loop.

Closed: calls go through; ``failure_threshold`` consecutive retryable failures (throttled, unavailable)
open it. Open: calls fail at once with UnavailableError for ``reset_after_s``. Half-open: one trial call;
success closes it, failure opens it again. Capacity, quota and request errors are answers, not sickness,
and never trip it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from providers.base import Provider
from providers.catalog.model import Offering
from providers.errors import ProviderError, UnavailableError
from providers.model import CapacityReport, Node, NodeRequest, ProviderHealth

T = TypeVar("T")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass
class CircuitBreaker:
    name: str
    failure_threshold: int = 5
    reset_after_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _admit(self) -> bool:
        with self._lock:
            if self.state is BreakerState.OPEN and self.clock() - self.opened_at >= self.reset_after_s:
                self.state = BreakerState.HALF_OPEN
                return True
            return self.state is not BreakerState.OPEN

    def _record(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self.state, self.failures = BreakerState.CLOSED, 0
                return
            self.failures += 1
            if self.state is BreakerState.HALF_OPEN or self.failures >= self.failure_threshold:
                self.state, self.opened_at = BreakerState.OPEN, self.clock()

    def call(self, fn: Callable[[], T], endpoint: str = "") -> T:
        if not self._admit():
            wait = self.reset_after_s - (self.clock() - self.opened_at)
            raise UnavailableError(f"circuit open after {self.failures} failures; next try in {wait:.0f} s",
                                   provider=self.name, endpoint=endpoint, code="CircuitOpen",
                                   retry_after=max(0.0, wait))
        try:
            result = fn()
        except ProviderError as e:
            self._record(not e.retryable)
            raise
        self._record(True)
        return result


class GuardedProvider(Provider):
    """The same Provider, every call through its breaker."""

    def __init__(self, inner: Provider, breaker: CircuitBreaker | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.endpoint = inner.endpoint
        self.breaker = breaker or CircuitBreaker(inner.name)

    def __getattr__(self, item: str):  # provider-specific extras (placement groups, node pools, ...)
        return getattr(self.inner, item)

    def offerings(self) -> list[Offering]:
        return self.breaker.call(self.inner.offerings, self.endpoint)

    def capacity(self) -> CapacityReport:
        return self.breaker.call(self.inner.capacity, self.endpoint)

    def list_nodes(self) -> list[Node]:
        return self.breaker.call(self.inner.list_nodes, self.endpoint)

    def health(self) -> ProviderHealth:
        return self.breaker.call(self.inner.health, self.endpoint)

    def create_nodes(self, request: NodeRequest) -> list[Node]:
        return self.breaker.call(lambda: self.inner.create_nodes(request), self.endpoint)

    def delete_nodes(self, nodes: Sequence[Node]) -> None:
        self.breaker.call(lambda: self.inner.delete_nodes(nodes), self.endpoint)

    def close(self) -> None:
        self.inner.close()
