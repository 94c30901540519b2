"""Where a submit's CPU goes in the API process: ``python -m bench.submitcpu.profile [N] [sqlite|PG_URL]``.

The real app (``create_app``, no reconcile loop) is driven in-process through ASGI, without a server or a
client: ``N`` one-document submits, the first 100 uncounted. FastAPI's thread-pool hop is made inline here so
one cProfile sees the whole request (the endpoint's work is the same; the hop itself is left out). Prints CPU ms
per submit without the profiler, then the profile's top functions."""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.api.service import fresh_database, member_token
from bench.submitcpu.cpu import manifest


def _inline_threadpool() -> None:
    import fastapi.dependencies.utils as deps
    import fastapi.routing as routing

    async def inline(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    routing.run_in_threadpool = inline  # type: ignore[assignment]
    deps.run_in_threadpool = inline  # type: ignore[assignment]


async def _submit(app: Any, token: str, name: str) -> int:
    body = manifest(name).encode()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/workloads", "raw_path": b"/v1/workloads", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode()),
                         (b"content-type", b"application/yaml"), (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080)}
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(msg: dict[str, Any]) -> None:
        nonlocal status
        if msg["type"] == "http.response.start":
            status = msg["status"]

    await app(scope, receive, send)
    return status


async def _run(app: Any, token: str, prefix: str, n: int) -> None:
    for i in range(n):
        st = await _submit(app, token, f"{prefix}{i}")
        if st != 201:
            raise RuntimeError(f"submit {i}: HTTP {st}")


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 2000
    db = argv[1] if len(argv) > 1 else "sqlite"
    from controlplane.api import create_app
    from controlplane.logs import configure_logging
    from controlplane.settings import Settings

    configure_logging("WARNING")     # as `awan serve` does (bench.submitcpu.cpu says why)
    _inline_threadpool()
    kind = "sqlite" if db == "sqlite" else "postgresql"
    with tempfile.TemporaryDirectory() as wake_dir, fresh_database(kind, db if kind != "sqlite" else "") as url:
        token = member_token(url)
        settings = Settings(db_url=url, reconcile=False, log_level="WARNING", wake_socket=f"{wake_dir}/wake")
        app = create_app(settings, providers={})

        async def go() -> None:
            async with app.router.lifespan_context(app):
                await _run(app, token, "warm-", 100)
                c0 = time.process_time()
                await _run(app, token, "plain-", n)
                print(f"{kind}: {1000 * (time.process_time() - c0) / n:.3f} CPU ms/submit (in-process, no profiler)")
                prof = cProfile.Profile()
                prof.enable()
                await _run(app, token, "prof-", n)
                prof.disable()
                st = pstats.Stats(prof)
                st.sort_stats("tottime").print_stats(40)
                st.sort_stats("cumulative").print_stats(80)

        asyncio.run(go())
        app.state.ctx.db.dispose()


if __name__ == "__main__":
    main(sys.argv[1:])
