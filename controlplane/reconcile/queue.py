"""A work queue with per-key exponential backoff and an overall rate limit (client-go's workqueue idea).

Keys are deduplicated: adding a key that is already waiting keeps the earlier due time. A key that
fails waits base * 2**failures (capped) before it is handed out again; success forgets its failures.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate_per_s, burst, clock
        self.tokens = float(burst)
        self.last = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class RateLimitedQueue:
    def __init__(self, base_s: float = 1.0, max_s: float = 300.0, rate_per_s: float = 50.0, burst: int = 100,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.base_s, self.max_s, self.clock = base_s, max_s, clock
        self._due: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._bucket = TokenBucket(rate_per_s, burst, clock)
        self._lock = threading.Lock()

    def add(self, key: str, delay_s: float = 0.0) -> None:
        with self._lock:
            due = self.clock() + delay_s
            self._due[key] = min(self._due.get(key, due), due)

    def retry(self, key: str) -> float:
        """Schedule ``key`` again after its backoff; returns the delay."""
        with self._lock:
            n = self._failures.get(key, 0)
            self._failures[key] = n + 1
            delay = min(self.max_s, self.base_s * (2.0 ** n))
            self._due[key] = self.clock() + delay
            return delay

    def forget(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        return self._failures.get(key, 0)

    def backing_off(self, key: str) -> bool:
        """True while ``key`` failed and its retry is not yet due."""
        with self._lock:
            return self._failures.get(key, 0) > 0 and self._due.get(key, 0.0) > self.clock()

    def ready(self, prefix: str = "") -> list[str]:
        """Pop every due key (starting with ``prefix``), oldest first, as far as the rate limit allows. Keys
        of another prefix are neither popped nor charged: the loop keeps placement's back-off (``place:``)
        here too, and in a burst hundreds of those, due first, spent the whole budget of every pass while
        the stacks waited (2,000 workloads: 943 Placed, no stack run for minutes)."""
        with self._lock:
            now = self.clock()
            # Keys of another prefix are not popped here, so one left due long ago (a workload since placed
            # or deleted) would stay forever: past its longest backoff it is dropped with its failures.
            for k in [k for k, t in self._due.items() if t < now - self.max_s and not k.startswith(prefix)]:
                del self._due[k]
                self._failures.pop(k, None)
            due = sorted((t, k) for k, t in self._due.items() if t <= now and k.startswith(prefix))
            out = []
            for _, k in due:
                if not self._bucket.take():
                    break
                del self._due[k]
                out.append(k)
            return out

    def __len__(self) -> int:
        return len(self._due)
