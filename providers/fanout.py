"""One question asked of many regions (or providers) at once: a capacity read or a health probe that walked
N regions one call after another waited N round trips, each paid again by every placing pass that read
capacity afresh (seconds on a real cloud, where a regional describe call takes 100-300 ms).

The clouds' read rate limits are per region (EC2's request tokens, OCI's regional endpoints) or per API and
project with room for this (GCE, ARM reads), so asking the regions of one provider at once stays within
them; at most ``AT_ONCE`` calls of one question are in the air. ``all_of`` asks one region's few different
reads together (AWS: 5 a region), so a provider's capacity read has at most ``AT_ONCE`` regions times those
in the air: a handful of calls per region, far under EC2's per-region describe bucket."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, overload

K = TypeVar("K")
T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")

# The engine's default bound of calls to one provider at once (AWAN_PROVIDER_CALL_CONCURRENCY) is also 8.
AT_ONCE = 8


def each(keys: Sequence[K], ask: Callable[[K], T], *, at_once: int = AT_ONCE,
         name: str = "awan-fanout") -> list[T | Exception]:
    """``ask(key)`` for every key, up to ``at_once`` at a time: each answer, or the exception that call raised,
    in the order of ``keys``. The caller decides what an exception means (a region left out, or raised),
    as it did when it asked one key after another. ``name``: the threads' name prefix (profiles, thread dumps)."""
    def one(key: K) -> T | Exception:
        try:
            return ask(key)
        except Exception as e:   # noqa: BLE001 - handed back to the caller, which typed it before
            return e

    if len(keys) <= 1 or at_once <= 1:
        return [one(k) for k in keys]
    # Each call runs in a copy of the caller's context (structlog's bound values, as asked sequentially).
    ctx = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=min(at_once, len(keys)), thread_name_prefix=name) as pool:
        return list(pool.map(lambda k: ctx.copy().run(one, k), keys))


@overload
def all_of(a: Callable[[], A], b: Callable[[], B], /) -> tuple[A, B]: ...
@overload
def all_of(a: Callable[[], A], b: Callable[[], B], c: Callable[[], C], /) -> tuple[A, B, C]: ...
def all_of(*asks: Callable[[], Any]) -> tuple[Any, ...]:
    """A few different questions of one place at once (a region's quota, offering and reservation reads, each
    a round trip that does not need another's answer): their answers, in order. If any raised, the first of
    them in the order given is raised, once every call has returned, as asking them one after another would
    have raised it (the later ones are asked all the same)."""
    got = each(asks, lambda ask: ask(), name="awan-fanout-all")
    for g in got:
        if isinstance(g, Exception):
            raise g
    return tuple(got)
