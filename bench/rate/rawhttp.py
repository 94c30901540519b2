"""A cheap HTTP/1.1 client for the open-loop submitters: plain asyncio streams over a fixed pool of
keep-alive connections, requests rendered to bytes before the schedule starts, answers read by status line
and Content-Length (or chunked, should a server send it).

Why not httpx: its per-request machinery (request and response models, header normalisation, the pool's
bookkeeping, h11) cost the submitter 7-10 ms of CPU per POST, as much as the service spends on one submit,
so on a 2-core machine the client took the CPU the service was being measured on. Here a request is a
``write`` of ready bytes and a few ``readuntil``/``readexactly`` calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.1 this client can read."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    close: bool           # the server asked to close the connection after this answer


def address(url: str) -> tuple[str, int]:
    u = urlsplit(url)
    if u.scheme != "http" or not u.hostname:
        raise ValueError(f"url: only http://host[:port] is supported, got {url!r}")
    return u.hostname, u.port or 80


def render_post(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """One POST, ready to write: request line, headers, Content-Length and the body."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head[:-4].split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"status line: {status_line[:80]!r}")
    length, chunked, close = -1, False, parts[0] == b"HTTP/1.0"
    for line in header_lines:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            close = value == b"close" or (close and value != b"keep-alive")
    if chunked:
        body = await _chunked(reader)
    elif length >= 0:
        body = await reader.readexactly(length)
    else:                     # neither: the body runs to the end of the connection
        body, close = await reader.read(), True
    return Answer(int(parts[1]), body, close)


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":     # trailers, if any
                pass
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)


class Connection:
    """One keep-alive connection, opened again when the server closed it or a request failed on it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, data: bytes) -> Answer:
        """Write ``data`` (a rendered request) and read the answer. Not retried: a POST is not idempotent,
        so a failure is the caller's to record."""
        if self._reader is None or self._writer is None or self._reader.at_eof():
            await self.close()
            await self.open()
        assert self._reader is not None and self._writer is not None
        try:
            self._writer.write(data)
            answer = await read_answer(self._reader)
        except BaseException:
            await self.close()
            raise
        if answer.close:
            await self.close()
        return answer

    async def close(self) -> None:
        w, self._reader, self._writer = self._writer, None, None
        if w is not None:
            w.close()
            with contextlib.suppress(OSError):
                await w.wait_closed()
