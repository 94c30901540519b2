"""`awan serve` runs the reconcile loop in a process of its own (``AWAN_CONTROLLER_PROCESS=process``, the
default), as kube-apiserver and kube-controller-manager are separate processes.

Why: the loop's passes (placement, stack planning, usage) are pure Python and held the API process's GIL
almost continuously during a burst of submits (``py-spy --gil``; BENCHMARKS.md, stall), so /healthz and every
request waited behind them. In its own interpreter the loop has a GIL of its own. Both processes use the same
database, which is how the loop already coordinates (the leader lease, the change feed, the work leases).

The parent (the API process) and this child:

- **one pipe** between them (``multiprocessing``, ``spawn``: a fresh interpreter, nothing of the API's state
  copied): the parent asks it whether this replica leads (/readyz, ``awan_leader``) and for its Prometheus
  exposition (merged into the API's /metrics: controlplane/api/metricsmerge.py), and tells it to stop;
- **stopped with the parent**: the API's shutdown (SIGTERM) sends "stop" with the grace period; the child
  drains as the in-process loop does (no new work, running stack runs get the grace, the lease released
  when nothing was cut short) and exits;
- **dies with the parent**: if the parent is SIGKILLed the child is killed too (Linux: the kernel's parent
  death signal; elsewhere: the pipe's end of file), at once and without draining, so a killed service is a
  crash of both, never a loop left acting with no API. Ctrl-C reaches both: the child ignores it and waits
  for the parent's stop; a SIGTERM sent to the child itself drains it;
- **restarted** if it exits on its own (a crash): the service keeps reconciling;
- **its logs** go to the parent's stdout/stderr (inherited), in the same format.

A runner process (runner.py: stack runs and shared rounds only, never the leader) is the same child with
``runner`` set: a ChildLoop each, spawned, stopped, killed and restarted the same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from typing import TYPE_CHECKING, Any

from controlplane.logs import get_logger
from controlplane.priority import lower_this_thread

if TYPE_CHECKING:
    from providers.base import Provider
    from providers.config import AwanConfig

log = get_logger("awan.controller")

ANSWER_S = 5.0            # a question to the child not answered in this long: answered "unknown"
RESTART_S = 2.0           # between a crash of the child and its restart
RELEASE_S = 5.0           # bound on freeing a dead child's work leases (connect, then the statement)
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class _Ask:
    n: int
    what: str             # "leader" | "metrics"


@dataclass(frozen=True, slots=True)
class _Stop:
    release_lease: bool
    grace_s: float


@dataclass(frozen=True, slots=True)
class _Answer:
    n: int
    value: object


class ChildLoop:
    """The service's loop (context.ServiceLoop) run in a child process. ``elector.is_leader`` and
    ``exposition()`` ask the child; both answer "no"/nothing while it is starting or gone."""

    def __init__(self, settings: dict[str, Any], config: AwanConfig | None, *, runner: int | None = None,
                 target: Callable[..., None] | None = None) -> None:
        self._settings = settings
        # The child's entry point: ``main``; a test's own (module-level: ``spawn`` imports it by name) stands in
        # for a child that misbehaves, one that outlives its grace.
        self._target = target if target is not None else main
        self._runner = runner           # runner.py: this runner's index; None: the loop's child
        self._what = "controller" if runner is None else "runner"
        self._config = config
        self._mp = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()         # one question at a time on the pipe
        self._n = 0
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        # Set by the child once its loop runs: until then a question is answered "no" at once, not after
        # ANSWER_S (a readiness probe must not wait on the child's imports).
        self._ready: EventType | None = None
        self._stopping = threading.Event()
        self._watch: threading.Thread | None = None
        self._holder = str(settings.get("replica_id", ""))   # the running child's work-lease holder

    @property
    def elector(self) -> ChildLoop:
        return self

    @property
    def is_leader(self) -> bool:
        return self._ask("leader") is True

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def exposition(self) -> bytes:
        got = self._ask("metrics")
        return got if isinstance(got, bytes) else b""

    def start(self) -> None:
        self._spawn()
        self._watch = threading.Thread(target=self._supervise, name="awan-controller-watch", daemon=True)
        self._watch.start()

    def _spawn(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            ours, theirs = self._mp.Pipe()
            ready = self._mp.Event()
            settings = self._settings
            if self._runner is not None:
                from controlplane.reconcile.runner import runner_holder

                settings = {**settings, "replica_id": runner_holder(str(settings["replica_id"]), self._runner)}
            self._holder = str(settings["replica_id"])
            proc = self._mp.Process(target=self._target, args=(theirs, settings, self._config, os.getpid(), ready,
                                                       self._runner is not None),
                                    name=f"awan-{self._what}", daemon=False)
            proc.start()
            theirs.close()      # our copy: the child's end of file on ours is then the child's exit
            self._proc, self._conn, self._ready = proc, ours, ready
        log.info(f"{self._what} process started", pid=proc.pid)

    def _supervise(self) -> None:
        """Restarts a child that exited on its own. Returns only once the child has exited: Linux's parent
        death signal follows the thread that started the child, so this thread outlives what it started."""
        while True:
            proc = self._proc
            if proc is None:
                return
            proc.join(timeout=1.0)
            if proc.exitcode is None:
                continue
            if self._stopping.is_set() or proc is not self._proc:
                return
            log.error(f"{self._what} process exited; starting another", pid=proc.pid, exitcode=proc.exitcode)
            self._release_leases(self._holder)
            if self._stopping.wait(RESTART_S):
                return
            self._spawn()

    def _release_leases(self, holder: str) -> None:
        """The dead child's work leases (its stack runs, its rounds' shares, a runner's "runner" lease), freed
        now rather than after ``AWAN_WORK_LEASE_TTL_S``: the leader or the next runner takes its work at their
        next pass. Safe: the child has exited and the holder was its own (a runner's name is new at each
        start; the loop's is this replica's, and its successor starts only after this), and a lease taken
        over since has another holder. Before the restart, so a loop child (same holder) never renews them.
        On an error they expire as before. Bounded (PostgreSQL: connect and statement timeouts), so a store that
        does not answer delays the restart by seconds, and a release given up on is not applied later, when a
        loop child under the same holder may be running again."""
        if not holder:
            return
        from sqlalchemy.engine import make_url

        from controlplane.store import work_leases
        from controlplane.store.db import Database

        url = make_url(str(self._settings["db_url"]))
        if url.get_backend_name() == "postgresql":
            given = url.query.get("options", "")     # the operator's own (a search_path) are kept
            options = " ".join([*([given] if isinstance(given, str) else given),
                                f"-c statement_timeout={int(RELEASE_S * 1000)}"]).strip()
            url = url.update_query_dict({"connect_timeout": str(int(RELEASE_S)), "options": options})
        try:
            db = Database.from_url(url.render_as_string(hide_password=False), pool_size=1, max_overflow=0,
                                   pool_timeout=RELEASE_S, busy_timeout_s=RELEASE_S)
            try:
                n = work_leases.release_holder(db, holder)
            finally:
                db.dispose()
        except Exception as e:
            log.warning(f"releasing the dead {self._what}'s work leases failed; they expire",
                        holder=holder, error=f"{type(e).__name__}: {e}")
            return
        log.info(f"dead {self._what}'s work leases released", holder=holder, leases=n)

    def _ask(self, what: str) -> object:
        with self._lock:
            conn = self._conn
            if conn is None or self._ready is None or not self._ready.is_set() or self._stopping.is_set():
                return None
            self._n += 1
            n = self._n
            try:
                conn.send(_Ask(n, what))
                end = time.monotonic() + ANSWER_S
                while (left := end - time.monotonic()) > 0 and conn.poll(left):
                    got = conn.recv()
                    if isinstance(got, _Answer) and got.n == n:   # an answer to an earlier, timed-out question
                        return got.value                          # is skipped
            except (OSError, EOFError):
                pass
            return None

    def stop(self, release_lease: bool = True, grace_s: float = 60.0) -> bool:
        """Drain the child within ``grace_s`` (as Controller.stop); it is killed if it outlives that.

        A child that did not drain (killed after its grace, or exited with stack runs cut short) is dead with
        work leases still its own: they are freed at once by its holder name (``_release_leases``, as after a
        crash), not left to expire after ``AWAN_WORK_LEASE_TTL_S``, so another replica's runner or leader takes
        the cut-short stacks at its next pass. Only once the child is known to have exited."""
        self._stopping.set()
        with self._lock:
            proc, conn, holder = self._proc, self._conn, self._holder
        if proc is None or conn is None:
            return True
        drained = False
        with self._lock, contextlib.suppress(OSError, EOFError):
            conn.send(_Stop(release_lease, grace_s))
            end = time.monotonic() + grace_s + ANSWER_S
            while (left := end - time.monotonic()) > 0 and conn.poll(left):
                got = conn.recv()
                if isinstance(got, _Answer) and got.n == 0:
                    drained = got.value is True
                    break
        proc.join(timeout=ANSWER_S)
        if proc.exitcode is None:
            log.warning(f"{self._what} process did not exit after its grace; killing it", pid=proc.pid)
            proc.kill()
            proc.join(timeout=ANSWER_S)
        conn.close()
        if self._watch is not None:
            self._watch.join(timeout=2 * ANSWER_S)
        if not drained:
            if proc.exitcode is not None:
                self._release_leases(holder)
            else:   # still alive after the kill: its leases may yet be acted under, so they are left to expire
                log.error(f"{self._what} process still alive after the kill; its work leases expire",
                          pid=proc.pid, holder=holder)
        # Freed now, not at the interpreter's exit: uvicorn ends the process by re-raising SIGTERM, so
        # multiprocessing's finalizers would not run and its resource tracker would warn of leaked semaphores.
        with self._lock:
            self._ready = None
        return drained


def _die_with(parent_pid: int) -> None:
    """Linux: the kernel kills this process when the parent dies (even by SIGKILL). The pipe's end of file
    is the fallback elsewhere, and the check after catches a parent gone before the call."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def main(conn: Connection, settings: dict[str, Any], config: AwanConfig | None, parent_pid: int,
         ready: EventType, runner: bool = False) -> None:
    """The child: build the loop as the API process would (``runner``: a runner's, runner.py), start it,
    answer the parent until told to stop."""
    _die_with(parent_pid)
    # Below the API process (controlplane/priority.py says why), before this process starts any thread: on
    # Linux the nice value is per thread and inherited by the threads created after.
    lower_this_thread(int(settings.get("background_nice", 0)))
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C: the parent drains us
    term = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: term.set())

    from prometheus_client import generate_latest

    from controlplane.api.context import ServiceContext
    from controlplane.environment import register_secrets
    from controlplane.logs import configure_logging
    from controlplane.reconcile.metrics import LoopMetrics
    from controlplane.reconcile.policy_source import PolicySource
    from controlplane.reconcile.runner import Presence
    from controlplane.reconcile.runtime import build_controller
    from controlplane.settings import Settings
    from controlplane.store.db import Database
    from providers.registry import build_providers

    s = Settings(**settings)
    configure_logging(s.log_level, fmt=s.log_format, sdk_http=s.log_sdk_http)
    db = Database.from_url(s.db_url, pool_size=s.db_pool_size, max_overflow=s.db_max_overflow,
                           pool_timeout=s.db_pool_timeout_s)
    providers: dict[str, Provider] = {}
    if config is not None:
        register_secrets(config)
        providers = build_providers(config)
    ctx = ServiceContext(settings=s, db=db, providers=providers, policies=PolicySource(db, s.policies),
                         metrics=LoopMetrics(), config=config)
    controller = build_controller(ctx, runner=runner)
    presence = Presence(controller.share) if runner else None
    controller.start()
    ready.set()
    if presence is None:
        log.info("controller process reconciling", pid=os.getpid(), replica=s.replica_id)
    else:
        log.info("runner process running stacks", pid=os.getpid(), replica=s.replica_id)
    stop = _Stop(True, s.shutdown_grace_s)
    try:
        while not term.is_set():
            if presence is not None:
                presence.beat()
            if not conn.poll(0.5):
                continue
            msg = conn.recv()
            if isinstance(msg, _Stop):
                stop = msg
                break
            if isinstance(msg, _Ask):
                value: object = (controller.elector.is_leader if msg.what == "leader"
                                 else generate_latest(ctx.metrics.registry) if msg.what == "metrics" else None)
                conn.send(_Answer(msg.n, value))
    except (EOFError, OSError):
        os._exit(1)         # the parent is gone: a crash of the service, not a shutdown (no draining)
    drained = controller.stop(release_lease=stop.release_lease, grace_s=stop.grace_s)
    if presence is not None:
        presence.leave()
    for p in providers.values():
        p.close()
    db.dispose()
    with contextlib.suppress(OSError):
        conn.send(_Answer(0, drained))
    conn.close()
    sys.stdout.flush()
    sys.stderr.flush()
    # Not the interpreter's exit: it would join a stack run still going after the grace (Controller.stop
    # leaves those to the process's exit, as after a crash).
    os._exit(0)
