"""`awan serve` keeps an idle connection open longer than its clients do (AWAN_HTTP_KEEP_ALIVE_S), so a client
reusing a connection after its own idle time does not race the server closing it. Checked on a real uvicorn
with `awan serve`'s options: a request on a connection idle for longer than uvicorn's own default (5 s) is
answered. Fails before the setting: the server had closed the connection."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import pytest
import uvicorn

from controlplane.api.workers import uvicorn_options
from controlplane.settings import Settings

Message = MutableMapping[str, Any]
UVICORN_DEFAULT_S = 5.0


async def _app(scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Message]],
               send: Callable[[Message], Awaitable[None]]) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        p = int(s.getsockname()[1])
    opts = {k: v for k, v in uvicorn_options(Settings()).items() if k not in ("log_config",)}
    server = uvicorn.Server(uvicorn.Config(_app, host="127.0.0.1", port=p, log_level="warning", **opts))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    end = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < end, "uvicorn did not start"
        time.sleep(0.05)
    yield p
    server.should_exit = True
    t.join(30)


def _ask(conn: socket.socket) -> bytes:
    """One request; the whole answer (headers and the 2-byte body may come in separate reads), or what came
    before the server closed the connection."""
    conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while not got.endswith(b"\r\n\r\nok"):
        chunk = conn.recv(4096)
        if not chunk:
            break
        got += chunk
    return got


def test_the_default_keep_alive_outlasts_common_client_idle_timeouts() -> None:
    assert Settings().http_keep_alive_s > 60          # AWS ALB's default idle timeout; httpx keeps 5 s


def test_a_connection_idle_past_uvicorns_default_still_gets_an_answer(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        assert _ask(conn).startswith(b"HTTP/1.1 200")
        time.sleep(UVICORN_DEFAULT_S + 1.5)
        assert _ask(conn).startswith(b"HTTP/1.1 200")     # closed by the server before: b"" (EOF)
