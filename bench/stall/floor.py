"""The floor: the same HTTP server (uvicorn) answering /healthz from a bare ASGI function, in a process of
its own, no store, no framework, nothing else to do. Polled in the same window as the service's /healthz,
it says how long any Python HTTP process waits for a core on this machine at this moment, so a service
figure can be read against what the machine allowed (on 2 cores at load 18 a runnable process gets about a
ninth of one).

    python -m bench.stall.floor PORT
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

_BODY = b'{"status":"ok"}'


async def app(scope: Scope, receive: Callable[[], Awaitable[Message]],
              send: Callable[[Message], Awaitable[None]]) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]})
    await send({"type": "http.response.body", "body": _BODY})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
