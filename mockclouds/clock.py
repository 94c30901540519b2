"""A controllable clock for the mock clouds: wall time plus an offset a test moves forward through the
control API (``POST /_mock/clock``), so a Capacity Block that starts in five days can be reached in a test
without waiting five days. Every date a mock hands out or enforces (block start and end, reservation end)
is read from this clock.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class MockClock:
    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return (datetime.now(UTC) + self._offset).replace(microsecond=0)

    def advance(self, seconds: float) -> datetime:
        """Move forward by ``seconds`` (never back: the clouds' clocks do not go back)."""
        if seconds < 0:
            raise ValueError("advanceSeconds: must be >= 0 (the clock never goes back)")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self.now()

    def set(self, at: datetime) -> datetime:
        """Jump to ``at`` (which must not be in the clock's past)."""
        if at.tzinfo is None:
            raise ValueError("now: needs a time zone (e.g. 2026-12-05T11:30:00Z)")
        now = self.now()
        if at < now:
            raise ValueError(f"now: {at.isoformat()} is before the mock's current time {now.isoformat()}")
        return self.advance((at - now).total_seconds())

    def reset(self) -> None:
        with self._lock:
            self._offset = timedelta(0)
