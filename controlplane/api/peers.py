"""Questions between the processes of one ``awan serve --workers N`` (controlplane/api/workers.py), over Unix
sockets in the service's private run directory: a worker asks the parent whether the controller process
leads and for its metrics, and asks the other workers for theirs (merged into its /metrics).

One question per connection: the asker sends a word and a newline, the answerer writes its answer and closes.
An answer not given within the bound (a process starting, restarting or gone) is ``None``: the asker answers
"unknown"/nothing for that process rather than hanging a scrape or a readiness probe.
"""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path

from controlplane.logs import get_logger

log = get_logger("awan.api.peers")

ANSWER_S = 5.0


def ask(path: Path, what: str, timeout_s: float = ANSWER_S) -> bytes | None:
    """The answer of the process listening on ``path`` to ``what``; None if there is none in time."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout_s)
            s.connect(str(path))
            s.sendall(what.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)
    except OSError:
        return None


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class Answering:
    """Answers questions on ``path`` from a thread of this process until ``close()``."""

    def __init__(self, path: Path, answer: Callable[[str], bytes]) -> None:
        self.path = path
        path.unlink(missing_ok=True)

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                what = self.rfile.readline(64).decode(errors="replace").strip()
                try:
                    got = answer(what)
                except Exception as e:   # a question must never take the answering process down
                    log.warning("peer question failed", question=what, error=f"{type(e).__name__}: {e}")
                    got = b""
                with contextlib.suppress(OSError):
                    self.wfile.write(got)

        self._server = _Server(str(path), Handler)
        os.chmod(path, 0o600)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name=f"awan-peer-{path.name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.path.unlink(missing_ok=True)
