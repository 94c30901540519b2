"""No automatic garbage collection while a one-shot bulk command runs.

`awan plan -f` on 10,000 workloads keeps a few million objects alive until it has written its output (the
documents, the validated models, the decisions and what their explanations are made of) and makes almost no
reference cycles. CPython's collector runs a full collection each time the survivors grow by a quarter,
and each one walks every tracked object again and frees nothing: 0.6-0.7 s of a 2.1 s plan of 10,000
workloads, and 26 s of 47 s at 100,000 (BENCHMARKS.md, plan). Objects are still freed as their last
reference goes; only cycle detection waits until the command is done.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Automatic collections off while the block runs, back on after (a caller that had them off, e.g. a
    test harness, keeps its own choice). Run the bulk work in a function called inside the block, so its
    objects are freed on return before the collector comes back and need not be scanned once more."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
