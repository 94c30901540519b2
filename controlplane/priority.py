"""The work `awan serve` runs beside the API, at a lower CPU priority (``AWAN_BACKGROUND_NICE``; off by default).

Why: on a machine whose cores are all busy, a /healthz waits for a core as long as every other runnable task
of the same priority does (BENCHMARKS.md, stall: at load 13-25 on 2 cores a bare uvicorn's own p99 was
141 ms). The reconcile loop's process and the large-submit parse workers are the service's own CPU hogs
under a burst; niced, the kernel gives the API process the core first whenever both want one (at nice 10 a
task's CFS weight is about a tenth of a nice-0 one's), and they still get every idle cycle.

Off by default: on a machine shared with other busy programs of the same scheduling group, the lowered loop
yields to them too, and submit -> Placed p99 was 1.7-2.7x longer with 10 than with 0 (BENCHMARKS.md, rate),
while /healthz met its 100 ms either way. A deployment that reserves the service its cores (a container's
CPU request: nice then only moves CPU inside the service) can turn it on.

How: each of those processes lowers itself first thing, before it starts any thread: the controller process
at the top of its ``main`` (reconcile/child.py; a controller restarted after a crash too), a parse worker in
the pool's initializer (api/parsepool.py). On Linux the nice value belongs to each thread and a thread
inherits it from the one that creates it, so lowering the main thread before any other exists lowers the
whole process; elsewhere (macOS) it belongs to the process anyway.

Never the API process's own threads: a lowered thread that holds the GIL and is then kept off the core by
the kernel would hold up the event loop with it (a priority inversion), so the large submit's store step
stays at the API's priority.
"""

from __future__ import annotations

import os


def lower_this_thread(steps: int) -> None:
    """``steps`` nice steps below where this thread runs (the kernel caps the value at 19); 0: unchanged.
    Unprivileged, a thread's nice value only goes up: there is no way back for it."""
    if steps > 0:
        os.nice(steps)
