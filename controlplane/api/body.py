"""The request body as a dependency: read asynchronously (waiting on the network costs the event loop
nothing), so the endpoint that uses it can be a plain ``def`` that FastAPI runs in its thread pool."""

from __future__ import annotations

from fastapi import Request


async def request_body(request: Request) -> bytes:
    return await request.body()
