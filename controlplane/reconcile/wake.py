"""Wake the reconcile loop when a submit commits, from any process of the service.

The controller binds a local datagram socket (a unix socket path, ``AWAN_WAKE_SOCKET``; `awan serve` makes one
in a private temporary directory when none is set and hands it to every process it starts through the
environment). A process that has just committed new Pending workloads sends it one byte (``poke``). Why a
datagram: no connection to keep or re-open per API process (``awan serve`` may run several), a controller
restarted after a crash binds the same path again and is reachable at once, and a send never waits: it is
non-blocking and every error (no controller bound yet or any more, its buffer full) is ignored. A lost wake
costs at most one interval: the loop's interval pass is the safety net, on SQLite as on PostgreSQL.

Wakes coalesce: the listener drains every datagram queued and then calls ``wake`` once, and ``wake`` sets one
event the loop waits on, so a burst of a thousand submits is one or a few passes, not a thousand.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator

from controlplane.logs import get_logger

log = get_logger("awan.wake")
ENV = "AWAN_WAKE_SOCKET"
_DRAIN = 4096            # datagrams read per wake at most (then wake, then read on)

_sender: socket.socket | None = None
_sender_lock = threading.Lock()


def supported() -> bool:
    return hasattr(socket, "AF_UNIX")


def _socket() -> socket.socket:
    global _sender
    with _sender_lock:
        if _sender is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.setblocking(False)
            _sender = s
        return _sender


def poke(path: str | None) -> None:
    """Tell the controller listening at ``path`` that something was submitted. Never raises, never blocks."""
    if not path or not supported():
        return
    # Nobody bound (the controller down or starting), its buffer full, the path gone: the interval covers it.
    with contextlib.suppress(OSError):
        _socket().sendto(b"w", path)


class WakeListener:
    """Receives pokes at ``path`` in a thread of its own and calls ``wake`` once per batch of them."""

    def __init__(self, path: str | None, wake: Callable[[], None]) -> None:
        self.path, self.wake = path, wake
        self.received = 0           # datagrams read
        self.wakes = 0              # calls of ``wake`` (fewer: coalesced)
        self._sock: socket.socket | None = None
        self._ino: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.path or not supported() or self._thread is not None:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)     # left by a controller that was killed: bind would fail on it
            sock.bind(self.path)
            self._ino = os.stat(self.path).st_ino
        except OSError as e:   # the loop still runs on its interval
            sock.close()
            log.warning("cannot listen for submit wakes; the loop runs on its interval", path=self.path,
                        error=str(e))
            return
        sock.setblocking(False)
        self._sock = sock
        self._thread = threading.Thread(target=self._run, name="awan-wake", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([sock], [], [], 0.5)
            except (OSError, ValueError):    # closed by stop()
                return
            if not ready:
                continue
            n = 0
            with contextlib.suppress(OSError):    # drained (EAGAIN), or closed by stop()
                while n < _DRAIN:
                    sock.recv(16)
                    n += 1
            if n:
                self.received += n
                self.wakes += 1
                self.wake()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.path and self._ino is not None:
            # Removed only if it is still ours: a successor may have bound the same path meanwhile.
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == self._ino:
                    os.unlink(self.path)
        self._ino = None


@contextlib.contextmanager
def service_address(given: str | None, *, loop: bool) -> Iterator[str | None]:
    """The wake address of one `awan serve`: ``given`` (AWAN_WAKE_SOCKET), else, when it runs a loop, a fresh
    path in a private temporary directory (mode 0700: only this user's processes can wake the loop), removed
    at exit. It is put in the environment, so every process the service starts (API workers, the controller)
    finds it."""
    if given or not loop or not supported():
        yield given or None
        return
    d = tempfile.mkdtemp(prefix="awan-wake-")
    path = os.path.join(d, "loop.sock")
    before = os.environ.get(ENV)
    os.environ[ENV] = path
    try:
        yield path
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before
        shutil.rmtree(d, ignore_errors=True)
