"""Stack programs rendered in a worker process, never in the process that asks (the API service).

``mockruntime.run_program`` pauses the cyclic garbage collector for the length of a run (what keeps
registration linear, see there), drives Pulumi's process-global runtime (``SETTINGS``, the root
resource, the monitor) and Pulumi's private ``_sync_await``. That is fine in a process that does
nothing else and wrong in the service: the collector is one switch for every thread, so the API's
request threads would run without it for as long as a large stack renders, and Pulumi's globals would
be shared with whatever else the process does. So the local engine sends the stack (a plain, picklable
``StackSpec``) to a child process that runs the program and sends back the ``Recording`` (plain
dataclasses); the service process never sets up the Pulumi runtime nor touches the collector.

The child is *spawned*, not forked: a fork would copy the service's threads' locks, its database
connections and its event loop half-way through whatever they were doing. It is started on the first
render and kept (starting one costs the Pulumi SDK's imports, about a second); one is enough, since
the Pulumi runtime runs one program at a time per process anyway. The worker keeps each stack's last
recording and renders a stack again for the pools new or changed since (``infra.engines.rendercache``):
a no-op run of a 3,000-pool stack renders in milliseconds instead of ~15-40 s of CPU; a replaced worker
starts with none, so its first render of each stack is a full one. It ignores Ctrl-C (the parent shuts it
down) and exits by itself when its parent dies (a killed controller leaves no orphan behind). The
worker belongs to the process that started it: a process forked from it must not render (nothing in
Awan forks; its processes are started, and each starts its own worker). Spawning runs the parent's
main *script* again in the worker (not a ``python -m`` module nor a console script), so a script that
renders keeps its top level under ``if __name__ == "__main__":``, as Python's multiprocessing asks.
"""

from __future__ import annotations

import atexit
import importlib
import multiprocessing
import os
import pickle
import pkgutil
import signal
import threading
import time
from collections.abc import Collection
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from infra.engines.mockruntime import Recording
from infra.engines.rendercache import IncrementalRenderer
from infra.spec import StackSpec

_LOCK = threading.Lock()
_POOL: ProcessPoolExecutor | None = None
_CPU = [0.0]          # CPU seconds the worker spent rendering, summed in the parent (benchmarks add it)


class RenderError(RuntimeError):
    """A program failed in the worker with an exception that cannot travel back as itself."""


# -- in the worker ------------------------------------------------------------------------------------
def _init_worker(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)         # the parent is gone: nobody will ask for anything again

    threading.Thread(target=watch, name="awan-render-parent-watch", daemon=True).start()


def _run(stack: StackSpec, only: Collection[str] | None) -> Recording:
    from infra.engines.mockruntime import run_program
    from infra.programs import program_for

    return run_program(program_for(stack, only), stack.name)


_RENDERER: IncrementalRenderer | None = None      # in the worker: each stack's last render (rendercache)


def _render(stack: StackSpec) -> tuple[Recording, float]:
    global _RENDERER
    if _RENDERER is None:
        _RENDERER = IncrementalRenderer(_run)
    c0 = time.process_time()
    try:
        rec = _RENDERER.render(stack)
    except Exception as e:
        try:
            pickle.loads(pickle.dumps(e))
        except Exception:  # noqa: BLE001 - any failure to travel: send its text instead
            raise RenderError(f"{type(e).__name__}: {e}") from None
        raise
    return rec, time.process_time() - c0


def _forget(stack: str) -> None:
    if _RENDERER is not None:
        _RENDERER.forget(stack)


def _held() -> list[str]:
    return [] if _RENDERER is None else _RENDERER.held()


def _pid() -> int:
    return os.getpid()


def _warm() -> int:
    """Import every program's components now (the Pulumi cloud packages take seconds), as the first
    render would."""
    import infra.components
    import infra.programs  # noqa: F401 - imported for its side effect: the SDK loaded

    for m in pkgutil.iter_modules(infra.components.__path__, "infra.components."):
        importlib.import_module(m.name)
    return os.getpid()


# -- in the caller ------------------------------------------------------------------------------------
def _pool() -> ProcessPoolExecutor:
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_init_worker, initargs=(os.getpid(),))
        return _POOL


def _discard(pool: ProcessPoolExecutor) -> None:
    global _POOL
    with _LOCK:
        if _POOL is pool:
            _POOL = None
    pool.shutdown(wait=False, cancel_futures=True)


def render(stack: StackSpec) -> Recording:
    """What ``stack``'s program declares and exports, rendered in the worker process. Blocking; callers
    on several threads are served one at a time. A worker that died (killed, out of memory) is replaced
    once; a program's own exception is raised here as itself."""
    for attempt in range(2):
        pool = _pool()
        try:
            rec, cpu = pool.submit(_render, stack).result()
        except BrokenProcessPool:
            _discard(pool)
            if attempt:
                raise
            continue
        with _LOCK:
            _CPU[0] += cpu
        return rec
    raise AssertionError("unreachable")


def forget(stack: str) -> None:
    """Drop ``stack``'s last render from the worker (the stack is destroyed). Nothing to do, and no worker
    started, when none runs; a worker that died held nothing."""
    with _LOCK:
        pool = _POOL
    if pool is None:
        return
    try:
        pool.submit(_forget, stack).result()
    except BrokenProcessPool:
        _discard(pool)


def held() -> list[str]:
    """The stacks whose last render the worker holds (none when no worker runs)."""
    with _LOCK:
        pool = _POOL
    return [] if pool is None else list(pool.submit(_held).result())


def worker_pid() -> int:
    """The worker's process id (started if it was not): tests check that it is not the caller's."""
    return int(_pool().submit(_pid).result())


def start() -> None:
    """Start the worker and load the programs' packages now rather than on the first render (benchmarks
    keep both out of a timed phase)."""
    _pool().submit(_warm).result()


def cpu_seconds() -> float:
    """CPU time the worker has spent rendering so far: ``time.process_time()`` of the caller misses it."""
    with _LOCK:
        return _CPU[0]


def shutdown() -> None:
    global _POOL
    with _LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown)
