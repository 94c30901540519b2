"""The one retry loop every adapter uses: tenacity, retrying only what providers.errors marks retryable
(throttled, unavailable), with full-jitter exponential backoff that waits at least what the cloud's
Retry-After asks, capped. A stock-out or a quota refusal is an answer, never retried: placement needs
that signal at once.

The SDKs' own retries are switched off in each adapter, so this is the only loop and its bound is real.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from providers.errors import ProviderError, is_retryable

T = TypeVar("T")

BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 20.0


def backoff(base_s: float = BACKOFF_BASE_S, cap_s: float = BACKOFF_CAP_S) -> Callable[[RetryCallState], float]:
    """Seconds to wait before the next attempt: uniform in [0, base * 2**(n-1)] (full jitter, capped at
    ``cap_s``), but never less than the error's ``retry_after`` (itself capped at ``cap_s``)."""

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        jitter = random.uniform(0, min(cap_s, base_s * 2 ** max(0, state.attempt_number - 1)))
        after = exc.retry_after if isinstance(exc, ProviderError) else None
        return jitter if after is None else max(jitter, min(after, cap_s))

    return wait


def with_retries(fn: Callable[[], T], attempts: int, *, base_s: float = BACKOFF_BASE_S,
                 cap_s: float = BACKOFF_CAP_S, sleep: Callable[[float], None] = time.sleep) -> T:
    """Call ``fn`` at most ``attempts`` times; ``fn`` raises typed ProviderErrors (the adapter maps its
    SDK's errors inside it). The last error is raised as it is."""
    retrying = Retrying(stop=stop_after_attempt(max(1, attempts)), retry=retry_if_exception(is_retryable),
                        wait=backoff(base_s, cap_s), sleep=sleep, reraise=True)
    return retrying(fn)
