"""The work `awan serve` runs beside the API, at a lower CPU priority (``AWAN_BACKGROUND_NICE``, default 10).

Why: on a machine whose cores are all busy, a /healthz waits for a core as long as every other runnable task
of the same priority does (BENCHMARKS.md, stall: at load 13-25 on 2 cores a bare uvicorn's own p99 was
141 ms). The reconcile loop's process and the large-submit parse workers are the service's own CPU hogs
under a burst; niced, the kernel gives the API process the core first whenever both want one (at nice 10 a
task's CFS weight is about a tenth of a nice-0 one's), and they still get every idle cycle.

How, on Linux: the nice value is a property of each thread, not of the process (``setpriority(PRIO_PROCESS,
0)`` changes the calling thread only), and a thread or process inherits it from the thread that creates it.
So:

- a parse worker lowers its own main thread in the pool's initializer, before it runs anything else (its
  later threads inherit);
- the controller process is started (and restarted, by the watch thread ChildLoop starts) from a thread of
  the API process lowered for that purpose, so the child is lowered from its first instruction, with every
  thread it ever starts. Only that thread and the watch thread it starts are lowered in the API process;
  they do nothing but start, join and restart the child. The starting thread stays until the loop is
  stopped: Linux's parent-death signal (child.py) fires when the thread that forked the child ends.

Elsewhere (macOS) the nice value belongs to the whole process: the controller process is lowered by its pid
once started (a restarted one is not).

Not the API process's own threads: a lowered thread that holds the GIL and is then kept off the core by the
kernel would hold up the event loop with it (a priority inversion), so the large submit's store step stays
at the API's priority.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from controlplane.reconcile.child import ChildLoop

if TYPE_CHECKING:
    from providers.config import AwanConfig

_PER_THREAD = sys.platform.startswith("linux")


def lower_this_thread(steps: int) -> None:
    """``steps`` nice steps below where this thread runs (the kernel caps the value at 19); 0: unchanged.
    Unprivileged, a thread's nice value only goes up: there is no way back for it."""
    if steps > 0:
        os.nice(steps)


class _Lowered:
    """Runs ``start`` in a thread lowered by ``steps`` and keeps that thread until ``release()``."""

    def __init__(self, start: Callable[[], None], steps: int) -> None:
        self._started = threading.Event()
        self._released = threading.Event()
        self._error: BaseException | None = None

        def run() -> None:
            try:
                lower_this_thread(steps)
                start()
            except BaseException as e:    # handed to the caller of __init__, which re-raises it
                self._error = e
            finally:
                self._started.set()
            self._released.wait()

        self._thread = threading.Thread(target=run, name="awan-background-start", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self.release()
            raise self._error

    def release(self) -> None:
        self._released.set()
        self._thread.join()


class LoweredChildLoop(ChildLoop):
    """The controller process (child.py) at ``steps`` nice steps below the API process."""

    def __init__(self, settings: dict[str, Any], config: AwanConfig | None, steps: int) -> None:
        super().__init__(settings, config)
        self._steps = steps
        self._starter: _Lowered | None = None

    def start(self) -> None:
        if self._steps <= 0:
            super().start()
        elif _PER_THREAD:
            self._starter = _Lowered(super().start, self._steps)
        else:
            super().start()
            if self.pid is not None:
                now = os.getpriority(os.PRIO_PROCESS, self.pid)
                os.setpriority(os.PRIO_PROCESS, self.pid, min(19, now + self._steps))

    def stop(self, release_lease: bool = True, grace_s: float = 60.0) -> bool:
        try:
            return super().stop(release_lease=release_lease, grace_s=grace_s)
        finally:
            if self._starter is not None:
                self._starter.release()
                self._starter = None
