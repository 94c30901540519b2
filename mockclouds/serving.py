"""Run a WSGI app on a loopback port in a daemon thread (port 0 picks a free one)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server


@dataclass
class RunningServer:
    name: str
    server: BaseWSGIServer
    thread: threading.Thread
    backend: Any

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        assert isinstance(host, str)        # an AF_INET/AF_INET6 socket: getsockname() gives a str host
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_in_thread(name: str, app: Any, backend: Any, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=f"mock-{name}", daemon=True)
    thread.start()
    return RunningServer(name, server, thread, backend)
