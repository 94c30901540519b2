"""No full garbage collection while a large submit holds its documents.

CPython's automatic full (generation 2) collection walks every tracked object of the process and holds the
GIL until it is done. A 10,000-document submit keeps several hundred thousand objects alive at once (the
YAML node tree, the documents, the validated models, the rows); each time the survivors grow by a quarter a
full collection runs again, so one submit met about ten of them, each 0.3-1.2 s on a loaded machine, and
the event loop (/healthz with it) could not run for the length of each. Measured in the service with
``gc.callbacks`` under ``python -m bench --suite stall`` (BENCHMARKS.md, stall).

While any large submit is in flight the full collection is deferred (its threshold raised); the young
generations are still collected, so short-lived cycles are freed as before. Deferral is bounded: after
``max_defer_s`` of uninterrupted deferral (large submits overlapping back to back) new submits no longer
extend it, and the thresholds are restored when the last one leaves.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

# Above any count the process reaches while deferring: gen 2 is considered once per this many gen-1 runs.
_DEFERRED = 1_000_000


class FullCollectionGuard:
    def __init__(self, max_defer_s: float = 120.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_defer_s = max_defer_s
        self._clock = clock
        self._lock = threading.Lock()
        self._inside = 0
        self._since = 0.0
        self._saved: tuple[int, int, int] | None = None

    @property
    def deferring(self) -> bool:
        return self._saved is not None

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self._enter()
        try:
            yield
        finally:
            self._leave()

    def _enter(self) -> None:
        with self._lock:
            self._inside += 1
            now = self._clock()
            if self._inside == 1:
                self._since = now
                self._defer()
            elif now - self._since > self.max_defer_s:
                self._restore()

    def _leave(self) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0:
                self._restore()

    def _defer(self) -> None:
        t0, t1, t2 = gc.get_threshold()
        if t2 >= _DEFERRED:         # someone else raised it already: leave it to them
            return
        self._saved = (t0, t1, t2)
        gc.set_threshold(t0, t1, _DEFERRED)

    def _restore(self) -> None:
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None


# One per process: the collector's thresholds are the process's.
guard = FullCollectionGuard()

# About 750 one-line documents: below this a submit's objects are too few for a full collection to matter.
LARGE_SUBMIT_CHARS = 64 * 1024


def while_large(chars: int) -> AbstractContextManager[None]:
    """``guard.deferred()`` for a submit body of at least LARGE_SUBMIT_CHARS characters, else nothing."""
    return guard.deferred() if chars >= LARGE_SUBMIT_CHARS else nullcontext()


def freeze_startup() -> None:
    """Move what startup allocated (modules, the app, the settings, the catalog) out of the collector's
    reach: every full collection would walk these ~50,000 objects again and find nothing to free."""
    gc.collect()
    gc.freeze()


def unfreeze() -> None:
    """At shutdown: what startup froze is collectable again (a process that makes several apps, as the
    tests do, must not keep the earlier ones' cycles for good)."""
    gc.unfreeze()
