"""No automatic garbage collection while one piece of bulk work runs, for the two places that do such work
in a process of their own: `awan plan -f` (controlplane/cli/plan_cmds.py) and a Pulumi program run under the
mock runtime (infra/engines/mockruntime.py). Here, below both, because controlplane imports infra and infra
never imports controlplane.

Why: both keep a few million objects alive until they are done (a plan's documents, models and decisions;
a stack's resources and outputs) and make almost no reference cycles. CPython's collector runs a full
collection each time the survivors grow by a quarter, and each one walks every tracked object again and
frees nothing: 0.6-0.7 s of a 2.1 s plan of 10,000 workloads, 26 s of 47 s at 100,000 (BENCHMARKS.md,
plan), and twice the registration cost of a large stack. Objects are still freed as their last reference
goes; only cycle detection waits until the work is done.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused(collect_young: bool = False) -> Iterator[None]:
    """Automatic collections off while the block runs, back on after (a caller that had them off, e.g. a
    test harness, keeps its own choice, and nothing is collected for it). ``collect_young``: then one
    collection of the youngest generation, where what the block allocated still sits (a process that goes
    on after the block frees the block's cycles without rescanning everything else). Run the bulk work in
    a function called inside the block, so its objects are freed on return before the collector comes back."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        if collect_young:
            gc.collect(0)
