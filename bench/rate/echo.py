"""A trivial HTTP/1.1 server for measuring and testing the submitters themselves: it reads each request
(headers and a Content-Length body) and answers 201 with a small JSON body, on keep-alive connections, at
almost no cost of its own. ``python -m bench.rate.echo PORT`` serves until killed."""

from __future__ import annotations

import asyncio
import sys

ANSWER = b'{"created":["w"],"unchanged":[]}'
_REPLY = (b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: "
          + str(len(ANSWER)).encode() + b"\r\n\r\n" + ANSWER)


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, bodies: list[bytes] | None = None,
                  delay_s: float = 0.0) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            if bodies is not None:
                bodies.append(body)
            if delay_s:
                await asyncio.sleep(delay_s)
            writer.write(_REPLY)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def start(host: str = "127.0.0.1", port: int = 0, bodies: list[bytes] | None = None,
                delay_s: float = 0.0) -> asyncio.Server:
    """``bodies``: each request's body is appended to it; ``delay_s``: each answer waits this long (a slow
    service, for the tests of the open-loop schedule)."""
    return await asyncio.start_server(lambda r, w: _handle(r, w, bodies, delay_s), host, port, backlog=1024)


async def _main(port: int) -> None:
    server = await start(port=port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1])))
