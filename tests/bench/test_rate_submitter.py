"""The rate bench's open-loop submitter against a tiny local server (bench.rate.echo), no service: the
raw client's answers, K documents per POST, and the schedule's semantics (a POST is due at its time
whatever the earlier ones' answers; one that waits for a connection keeps its due time)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bench.rate import echo, rawhttp, submitter
from controlplane.model.manifest import load_documents, parse_documents


def _run(tmp_path: Path, rate: float, seconds: float, docs: int = 1, connections: int = 8, delay_s: float = 0.0,
         client: str = "raw") -> tuple[dict, list[bytes]]:
    bodies: list[bytes] = []

    async def go() -> dict:
        server = await echo.start(bodies=bodies, delay_s=delay_s)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await submitter.run(f"http://127.0.0.1:{port}", "tok", rate, seconds, "w-", tmp_path / "stop",
                                       start=time.time() + 0.2, docs=docs, client=client, connections=connections)

    return asyncio.run(go()), bodies


@pytest.mark.parametrize("client", ["raw", "httpx"])
def test_every_workload_is_sent_once_and_answered(tmp_path: Path, client: str) -> None:
    res, bodies = _run(tmp_path, rate=200, seconds=0.5, client=client)
    rows = sorted(res["requests"], key=lambda r: r["i"])
    assert [r["i"] for r in rows] == list(range(100)) and all(r["status"] == 201 for r in rows)
    assert len(bodies) == 100
    names = sorted(w.name for b in bodies for w in parse_documents(load_documents(b.decode(), "t"), "t"))
    assert names == sorted(f"w-{i}" for i in range(100))
    # due at start + i / rate, answered after it was sent
    assert all(abs(r["due"] - (res["start"] + r["i"] / 200)) < 1e-6 for r in rows)
    assert all(r["due"] - 0.05 <= r["sent"] <= r["done"] for r in rows)


def test_k_documents_per_post_each_workload_keeps_its_own_due_time(tmp_path: Path) -> None:
    res, bodies = _run(tmp_path, rate=100, seconds=0.25, docs=10)    # 25 workloads: POSTs of 10, 10, 5
    assert sorted(len(parse_documents(load_documents(b.decode(), "t"), "t")) for b in bodies) == [5, 10, 10]
    rows = res["requests"]
    assert len(rows) == 25 and {r["post"] for r in rows} == {0, 1, 2}
    for r in rows:
        assert abs(r["due"] - (res["start"] + r["i"] / 100)) < 1e-6
        # a POST is due when its last workload is: none of its workloads is sent before its own due time
        assert r["post_due"] >= r["due"] and r["sent"] >= r["due"] - 0.05
    assert max(r["post_due"] for r in rows) == pytest.approx(res["start"] + 24 / 100)


def test_a_slow_server_does_not_lower_the_offered_rate(tmp_path: Path) -> None:
    # 20 POSTs due over 0.475 s, each answered 5 s after it arrives: open loop, every one is sent before
    # the first answer comes back (a closed-loop client would have sent one per connection and waited).
    # 5 s, ten times the schedule: a loaded machine that delays the sends by seconds still passes.
    res, _ = _run(tmp_path, rate=40, seconds=0.5, connections=32, delay_s=5.0)
    rows = res["requests"]
    assert len(rows) == 20 and all(r["status"] == 201 for r in rows)
    assert max(r["sent"] for r in rows) < min(r["done"] for r in rows)


def test_with_every_connection_busy_a_post_waits_and_its_wait_counts(tmp_path: Path) -> None:
    res, _ = _run(tmp_path, rate=40, seconds=0.25, connections=1, delay_s=0.2)   # 10 POSTs, one connection
    rows = sorted(res["requests"], key=lambda r: r["i"])
    assert all(r["status"] == 201 for r in rows)
    assert rows[-1]["sent"] - rows[-1]["due"] > 1.0      # queued behind nine 0.2 s answers
    assert all(abs(r["due"] - (res["start"] + r["i"] / 40)) < 1e-6 for r in rows)


def _answer(raw: bytes) -> rawhttp.Answer:
    async def go() -> rawhttp.Answer:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await rawhttp.read_answer(reader)
    return asyncio.run(go())


def test_answers_by_content_length_chunked_or_to_the_end() -> None:
    a = _answer(b"HTTP/1.1 422 Unprocessable Entity\r\nContent-Length: 5\r\n\r\nnope!extra")
    assert (a.status, a.body, a.close) == (422, b"nope!", False)
    a = _answer(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n")
    assert (a.status, a.body) == (201, b"abcde")
    a = _answer(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert (a.status, a.close) == (503, True)
    a = _answer(b"HTTP/1.0 200 OK\r\n\r\nall of it")
    assert (a.status, a.body, a.close) == (200, b"all of it", True)
    with pytest.raises(rawhttp.ProtocolError):
        _answer(b"SSH-2.0-OpenSSH\r\n\r\n")


def test_a_closed_connection_is_an_error_row_not_a_crash(tmp_path: Path) -> None:
    async def go() -> dict:
        async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.close()
        server = await asyncio.start_server(slam, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await submitter.run(f"http://127.0.0.1:{port}", "tok", 20, 0.2, "w-", tmp_path / "stop",
                                       start=time.time() + 0.1, connections=2)

    rows = asyncio.run(go())["requests"]
    assert len(rows) == 4 and all(r["status"] == 0 and r["error"] for r in rows)
