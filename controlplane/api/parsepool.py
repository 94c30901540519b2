"""A large submit body is parsed and validated in a worker process, not in the API process.

Reading 10,000 YAML documents, validating them and turning them into rows is several seconds of pure Python:
in a thread of the API process it holds the GIL the event loop needs (/healthz waited behind it, and behind
the full garbage collections of its several hundred thousand objects; BENCHMARKS.md, stall). In a worker
process (``spawn``: a fresh interpreter, nothing of the service's state copied) those objects never enter
the API process's heap; what comes back is the rows, one small pickle per document, unpickled one at a time
so the GIL is handed over between them as usual.

The worker runs ``Settings.background_nice`` nice steps below the API process (controlplane/priority.py says why).

Small bodies (below ``gcguard.LARGE_SUBMIT_CHARS``) stay inline: a round trip to the worker would cost them
more than their parsing. ``Settings.submit_parse_processes`` = 0 keeps every body inline.
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from controlplane.api import gcguard
from controlplane.api import workload_service as svc
from controlplane.api.gcguard import LARGE_SUBMIT_CHARS
from controlplane.auth.tokens import Principal
from controlplane.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError, TooLarge, Unavailable
from controlplane.logs import get_logger
from controlplane.priority import lower_this_thread

if TYPE_CHECKING:
    from controlplane.policy.model import PolicySet

log = get_logger("awan.api")

# The kinds a refusal keeps across the process boundary (the HTTP edge maps each to its status).
_KINDS: tuple[type[ServiceError], ...] = (Invalid, NotFound, Conflict, Forbidden, TooLarge, Unavailable)


@dataclass(frozen=True, slots=True)
class _Policies:
    """The policies as the worker sees them: read by the API process (it has the store), or why not."""

    value: PolicySet | None
    error: str = ""

    def __call__(self) -> PolicySet:
        if self.value is None:
            raise RuntimeError(self.error)
        return self.value


@dataclass(frozen=True, slots=True)
class _Refused:
    kind: str
    message: str


def _prepare(p: Principal, text: str, source: str, policies: _Policies | None,
             max_documents: int | None) -> list[bytes] | _Refused:
    """In the worker. A refusal comes back as data: a ServiceError subclass whose constructor takes other
    arguments than its message would not unpickle in the API process."""
    # The worker's heap meets the same repeated full collections as the API's did (gcguard says why): the
    # same deferral here, or they would cost the submit several seconds.
    with gcguard.guard.deferred():
        try:
            items = svc.prepare(p, text, source, policies, max_documents)
        except ServiceError as e:
            kind = next((k.__name__ for k in _KINDS if isinstance(e, k)), ServiceError.__name__)
            return _Refused(kind, str(e))
        return [pickle.dumps(i, protocol=pickle.HIGHEST_PROTOCOL) for i in items]


def _raise(r: _Refused) -> NoReturn:
    if r.kind == Invalid.__name__:
        raise Invalid.from_message(r.message)
    for k in _KINDS:
        if k.__name__ == r.kind:
            raise k(r.message)
    raise ServiceError(r.message)


class ParsePool:
    """Started on the first large body (a service that never gets one never starts a process)."""

    def __init__(self, processes: int, nice: int = 0) -> None:
        self.processes, self.nice = processes, nice
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def _executor(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._closed or self.processes <= 0:
                return None
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=lower_this_thread, initargs=(self.nice,))
            return self._pool

    def prepare(self, p: Principal, text: str, source: str, policies: Callable[[], PolicySet] | None = None,
                max_documents: int | None = None) -> list[svc.Prepared]:
        """``workload_service.prepare``, in the worker for a large body. Blocking: call it off the event loop."""
        pool = self._executor() if len(text) >= LARGE_SUBMIT_CHARS else None
        if pool is None:
            return svc.prepare(p, text, source, policies, max_documents)
        given: _Policies | None = None
        if policies is not None:
            # Read here (the worker has no store), whether or not a document needs them: they are cached.
            try:
                given = _Policies(policies())
            except Exception as e:
                given = _Policies(None, str(e))
        try:
            out = pool.submit(_prepare, p, text, source, given, max_documents).result()
        except BrokenProcessPool:
            # The worker died (killed, out of memory): this body is parsed here; the next one gets a new worker.
            log.warning("submit parse worker died; parsing in the API process")
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            return svc.prepare(p, text, source, policies, max_documents)
        if isinstance(out, _Refused):
            _raise(out)
        return [pickle.loads(b) for b in out]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
