"""One health roll-up and one retry loop for every adapter (providers/health.py, providers/retry.py):
throttled is never down, whichever cloud it is; only retryable errors are retried, Retry-After honoured."""

from __future__ import annotations

from typing import Any

import pytest

from mockclouds.faults import Fault
from providers.errors import CapacityError, ThrottledError, UnavailableError
from providers.health import overall, region_status
from providers.model import HealthStatus
from providers.registry import build_provider
from providers.retry import with_retries

OK, DEG, DOWN = HealthStatus.OK, HealthStatus.DEGRADED, HealthStatus.DOWN


def test_the_roll_up_rule() -> None:
    assert overall({}) is OK and overall({"a": OK, "b": OK}) is OK
    assert overall({"a": DOWN, "b": DOWN}) is DOWN
    assert overall({"a": DEG, "b": DEG}) is DEG          # every region throttled: alive, not down
    assert overall({"a": OK, "b": DOWN}) is DEG and overall({"a": DEG, "b": DOWN}) is DEG
    assert region_status(ThrottledError("slow down")) is DEG
    assert region_status(UnavailableError("503")) is DOWN


@pytest.mark.slow
@pytest.mark.parametrize("kind, expected", [("throttle", DEG), ("outage", DOWN)])
def test_every_adapter_rolls_up_a_provider_wide_fault_the_same_way(mockclouds: Any, mock_config: Any,
                                                                   kind: str, expected: HealthStatus) -> None:
    got = {}
    for name in ("aws", "gcp", "azure", "coreweave"):
        book = mockclouds.backend(name).faults
        fault = book.add(Fault(kind=kind, retry_after=0.01))
        p = build_provider(mock_config.providers[name])
        try:
            got[name] = p.health().status
        finally:
            book.clear(fault.id)
            p.close()
    assert got == dict.fromkeys(got, expected)


class Script:
    def __init__(self, *answers: Exception | None) -> None:
        self.answers, self.calls = list(answers), 0

    def __call__(self) -> str:
        self.calls += 1
        a = self.answers.pop(0)
        if a is not None:
            raise a
        return "ok"


def test_retries_only_what_is_retryable_and_waits_at_least_retry_after() -> None:
    sleeps: list[float] = []
    fn = Script(ThrottledError("slow", retry_after=3.0), UnavailableError("503"), None)
    assert with_retries(fn, 5, base_s=0.001, cap_s=10, sleep=sleeps.append) == "ok"
    assert fn.calls == 3 and sleeps[0] >= 3.0 and sleeps[1] <= 0.002
    stock_out = Script(CapacityError("none left"), None)
    with pytest.raises(CapacityError):
        with_retries(stock_out, 5, sleep=sleeps.append)
    assert stock_out.calls == 1                            # a stock-out is an answer, not retried
    capped: list[float] = []
    with pytest.raises(ThrottledError):
        with_retries(Script(ThrottledError("x", retry_after=999), ThrottledError("y")), 2, cap_s=5,
                     sleep=capped.append)
    assert capped == [5]                                   # Retry-After is honoured up to the cap
