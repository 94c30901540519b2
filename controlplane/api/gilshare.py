"""How the event loop's thread gets the GIL back while worker threads compute.

CPython hands the GIL to a waiting thread only after the holder has run for the switch interval (5 ms by
default), and then to whichever waiter the OS wakes: with K threads wanting it, the event loop waits about K
intervals each time it needs the GIL again, and one request (/healthz included) needs it several times
(every socket call releases it). Under a burst, FastAPI's thread pool (40 threads by default) made K about
40 beside the reconcile loop's threads. So, while the app runs:

- at most as many request threads as the store has connections (``db_pool_size + db_max_overflow``, at
  least 4): a request beyond them would only wait for a connection, and waits in the pool's async queue
  instead, holding no thread;
- a 1 ms switch interval: a waiting thread gets its turn five times sooner.

Both are restored when the app stops (a process that makes several apps, as the tests do, gets its
defaults back).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from anyio import to_thread

SWITCH_INTERVAL_S = 0.001
MIN_THREADS = 4


@dataclass(slots=True)
class Saved:
    threads: float
    interval_s: float


def apply(db_connections: int) -> Saved:
    """Call on the event loop (the thread limiter is the loop's). Returns what to give back to ``restore``."""
    limiter = to_thread.current_default_thread_limiter()
    saved = Saved(limiter.total_tokens, sys.getswitchinterval())
    limiter.total_tokens = min(saved.threads, max(MIN_THREADS, db_connections))
    sys.setswitchinterval(min(saved.interval_s, SWITCH_INTERVAL_S))
    return saved


def restore(saved: Saved) -> None:
    to_thread.current_default_thread_limiter().total_tokens = saved.threads
    sys.setswitchinterval(saved.interval_s)
