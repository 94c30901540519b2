"""``awan serve --workers N`` (``AWAN_API_WORKERS``): N API processes on one port, one reconcile loop.

Why: one API process answers one request at a time on its GIL (~80 single-workload submits/s on 2 cores,
BENCHMARKS.md "rate"); N processes take N cores' worth. The reconcile loop must stay one per replica (it
places with exact capacity accounting, controlplane/reconcile/child.py), so:

- **the parent** (the ``awan serve`` process) migrates the store once, binds the listening socket, starts the
  controller process once (child.py's ChildLoop, ``AWAN_BACKGROUND_NICE`` below the workers: controlplane/priority.py)
  and the N workers, answers the workers' questions about the loop (leadership, its metrics;
  controlplane/api/peers.py) and restarts a worker that exits on its own. It serves no requests itself;
- **each worker** (a ``spawn``ed interpreter) runs the whole app (create_app, uvicorn) on the shared socket
  (the kernel hands each new connection to one worker that is accepting). Its /readyz and ``awan_leader``
  ask the parent; its /metrics merges its own counters with the other workers' and the controller's
  (controlplane/api/metricsmerge.py);
- **SIGTERM/Ctrl-C** to the parent: every worker drains (uvicorn's graceful shutdown, the grace period), then
  the controller process drains, then the parent exits;
- **SIGKILL** of the parent takes the workers down at once (Linux: the kernel's parent-death signal; elsewhere
  the end of file of a pipe from the parent), as it does the controller process.

The store is shared as with the controller process: on SQLite every process waits for the database-wide write
lock (busy timeout); a wait that outlasts it is a 503 with Retry-After, never a 500 (app.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controlplane.api import peers
from controlplane.logs import get_logger

if TYPE_CHECKING:
    from controlplane.api.context import LoopFactory, ServiceContext
    from controlplane.settings import Settings
    from providers.config import AwanConfig

log = get_logger("awan.serve")

RESTART_S = 2.0
CONTROLLER_SOCKET = "controller.sock"
_PR_SET_PDEATHSIG = 1


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn settings of ``awan serve``, one worker or several."""
    import math

    from controlplane.logs import UVICORN_LOG_CONFIG

    return {"log_config": UVICORN_LOG_CONFIG, "access_log": False, "ssl_certfile": settings.tls_cert_file,
            "ssl_keyfile": settings.tls_key_file, "proxy_headers": True,
            "forwarded_allow_ips": settings.forwarded_allow_ips,
            "timeout_graceful_shutdown": math.ceil(settings.shutdown_grace_s),
            "timeout_keep_alive": math.ceil(settings.http_keep_alive_s)}


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


# -- the worker side -----------------------------------------------------------------------------------


class RemoteLoop:
    """The loop as a worker sees it (context.ServiceLoop): the parent's controller process, asked over the
    run directory. Starting it also answers the other workers' questions about this worker's metrics."""

    def __init__(self, run_dir: Path, index: int, own: ServiceContext) -> None:
        self._run_dir, self._index, self._ctx = run_dir, index, own
        self._answering: peers.Answering | None = None

    @property
    def elector(self) -> RemoteLoop:
        return self

    @property
    def is_leader(self) -> bool:
        return peers.ask(self._run_dir / CONTROLLER_SOCKET, "leader") == b"1"

    def exposition(self) -> bytes:
        return peers.ask(self._run_dir / CONTROLLER_SOCKET, "metrics") or b""

    def peer_expositions(self) -> list[bytes]:
        own = self._answering.path if self._answering is not None else None
        out = []
        for path in sorted(self._run_dir.glob("worker-*.sock")):
            if path != own and (got := peers.ask(path, "metrics")):
                out.append(got)
        return out

    def start(self) -> None:
        from prometheus_client import generate_latest

        registry = self._ctx.metrics.registry   # its counters only: the store's gauges are the asker's own

        def answer(what: str) -> bytes:
            return generate_latest(registry) if what == "metrics" else b""

        self._answering = peers.Answering(self._run_dir / f"worker-{self._index}.sock", answer)

    def stop(self, release_lease: bool = True, grace_s: float = 60.0) -> bool:
        if self._answering is not None:
            self._answering.close()
        return True     # the parent drains the controller process once every worker has stopped


def _remote_factory(run_dir: Path, index: int, with_loop: bool) -> LoopFactory:
    def build(c: ServiceContext) -> RemoteLoop:
        loop = RemoteLoop(run_dir, index, c)
        if with_loop:
            c.metrics_sources.append(loop.exposition)
        c.metrics_peers.append(loop.peer_expositions)
        return loop

    return build


def _die_with(parent_pid: int, conn: Connection) -> None:
    """As the controller process does (child.py): killed by the kernel when the parent dies (Linux), and
    out at the end of file of the parent's pipe elsewhere."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            while True:
                conn.recv()
        os._exit(1)

    threading.Thread(target=watch, name="awan-parent-watch", daemon=True).start()


def worker_main(sock: socket.socket, settings: dict[str, Any], config: AwanConfig | None, run_dir: str,
                index: int, parent_pid: int, conn: Connection, with_loop: bool) -> None:
    _die_with(parent_pid, conn)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C reaches the whole group: the parent stops us
    import uvicorn

    from controlplane.api.app import create_app
    from controlplane.environment import register_secrets
    from controlplane.logs import configure_logging
    from controlplane.settings import Settings
    from providers.registry import build_providers

    s = Settings(**settings)
    configure_logging(s.log_level, fmt=s.log_format, sdk_http=s.log_sdk_http)
    providers = {}
    if config is not None:
        register_secrets(config)
        providers = build_providers(config)
    try:
        app = create_app(s, providers=providers, config=config, migrate=False,
                         controller_factory=_remote_factory(Path(run_dir), index, with_loop))
        server = uvicorn.Server(uvicorn.Config(app, **uvicorn_options(s)))
        log.info("api worker serving", pid=os.getpid(), worker=index, run_dir=run_dir)
        # Returns only on an error: uvicorn ends a drained worker by re-raising the signal that stopped it.
        server.run(sockets=[sock])
    finally:
        for p in providers.values():
            p.close()
    sys.stdout.flush()
    sys.stderr.flush()


# -- the parent side -----------------------------------------------------------------------------------


@dataclass
class _Worker:
    index: int
    proc: BaseProcess
    conn: Connection        # ours: closed by the kernel when we die, the worker's end of file


class Supervisor:
    """The parent of ``awan serve --workers N``: see the module docstring."""

    def __init__(self, settings: Settings, config: AwanConfig | None, workers: int) -> None:
        self.settings, self.config, self.n = settings, config, workers
        self._mp = multiprocessing.get_context("spawn")
        self._stop = threading.Event()
        self._workers: list[_Worker] = []
        self._run_dir = Path(tempfile.mkdtemp(prefix="awan-serve-"))
        os.chmod(self._run_dir, 0o700)
        self._loop: Any = None
        self._sock: socket.socket | None = None

    def _spawn(self, index: int) -> _Worker:
        assert self._sock is not None
        ours, theirs = self._mp.Pipe()
        proc = self._mp.Process(target=worker_main, name=f"awan-api-{index}", daemon=False,
                                args=(self._sock, self.settings.model_dump(), self.config, str(self._run_dir),
                                      index, os.getpid(), theirs, self._loop is not None))
        proc.start()
        theirs.close()
        log.info("api worker started", pid=proc.pid, worker=index)
        return _Worker(index, proc, ours)

    def _answer(self, what: str) -> bytes:
        if what == "leader":
            return b"1" if self._loop.is_leader else b"0"
        if what == "metrics":
            return bytes(self._loop.exposition())
        return b""

    def run(self) -> None:
        """Until SIGTERM/SIGINT: the socket, the loop, the workers; then drain them in that order reversed."""
        from controlplane.store import make_engine, upgrade

        eng = make_engine(self.settings.db_url)
        try:
            upgrade(eng)        # once, before any worker opens the store
        finally:
            eng.dispose()
        self._sock = bind(self.settings.host, self.settings.port)
        previous = {sig: signal.signal(sig, lambda *_: self._stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        answering = None
        try:
            if self.settings.reconcile:
                from controlplane.reconcile.runner import service_loop

                self._loop = service_loop(self.settings, self.config)
                self._loop.start()
                answering = peers.Answering(self._run_dir / CONTROLLER_SOCKET, self._answer)
            self._workers = [self._spawn(i) for i in range(self.n)]
            while not self._stop.wait(1.0):
                for k, w in enumerate(self._workers):
                    if w.proc.exitcode is not None and not self._stop.is_set():
                        log.error("api worker exited; starting another", pid=w.proc.pid, worker=w.index,
                                  exitcode=w.proc.exitcode)
                        w.conn.close()
                        if self._stop.wait(RESTART_S):
                            break
                        self._workers[k] = self._spawn(w.index)
        finally:
            self._drain()
            if answering is not None:
                answering.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._sock.close()
            shutil.rmtree(self._run_dir, ignore_errors=True)

    def _drain(self) -> None:
        grace = self.settings.shutdown_grace_s
        for w in self._workers:
            if w.proc.exitcode is None and w.proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.proc.pid, signal.SIGTERM)
        for w in self._workers:
            w.proc.join(grace + peers.ANSWER_S)
            if w.proc.exitcode is None:
                log.warning("api worker did not exit after its grace; killing it", pid=w.proc.pid)
                w.proc.kill()
                w.proc.join(peers.ANSWER_S)
            w.conn.close()
        if self._loop is not None:
            self._loop.stop(grace_s=grace)
