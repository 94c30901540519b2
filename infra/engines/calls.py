"""How many cloud calls of one provider the local engine makes at once.

A stack's resources that do not depend on each other are applied at the same time (as Pulumi does:
``pulumi up --parallel``, 16 by default), so a 2-second create does not serialise a stack. What bounds
the calls is the provider's API rate limit, which is per account, not per stack: the bound is held per
provider for the whole engine (every stack run of the process shares it), set by
``AWAN_PROVIDER_CALL_CONCURRENCY``: ``8`` (every provider), or ``8,aws=16,oci=4`` (per provider).
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from infra.engines.base import EngineError

ENV = "AWAN_PROVIDER_CALL_CONCURRENCY"
DEFAULT = 8

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CallBounds:
    default: int = DEFAULT
    per_provider: Mapping[str, int] = field(default_factory=dict)

    def of(self, provider: str) -> int:
        return self.per_provider.get(provider, self.default)


def parse_bounds(text: str | None) -> CallBounds:
    """``"8"`` or ``"8,aws=16,oci=4"`` (a bare number is every provider's; ``provider=n`` overrides).
    A bad value is an error naming the setting, never a silent default."""
    if text is None or not text.strip():
        return CallBounds()
    default, per = DEFAULT, {}
    for part in (p.strip() for p in text.split(",")):
        name, _, num = part.rpartition("=")
        try:
            n = int(num)
        except ValueError:
            n = 0
        if n < 1 or (part.count("=") > 1) or (part.count("=") == 1 and not name.strip()):
            raise EngineError(f"{ENV}: {part!r} is not a positive whole number or provider=number "
                              f"(e.g. 8 or 8,aws=16,oci=4)")
        if name:
            per[name.strip()] = n
        else:
            default = n
    return CallBounds(default, per)


def bounds_from_env(env: Mapping[str, str] | None = None) -> CallBounds:
    return parse_bounds((os.environ if env is None else env).get(ENV))


class Withdrawn(Exception):  # noqa: N818 - an outcome: the call was never made
    """A call handed to the pool but stopped before it reached the cloud (``CallPool.stop``)."""


class CallLimits:
    """One semaphore per provider, shared by every stack run of one engine (one per process in the
    service): the provider's calls in flight from this replica never exceed its bound."""

    def __init__(self, bounds: CallBounds) -> None:
        self.bounds = bounds
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}

    def slots(self, provider: str) -> threading.BoundedSemaphore:
        with self._lock:
            if provider not in self._slots:
                self._slots[provider] = threading.BoundedSemaphore(self.bounds.of(provider))
            return self._slots[provider]

    def pool(self, provider: str) -> CallPool:
        return CallPool(self.slots(provider), self.bounds.of(provider), provider)


class CallPool:
    """The cloud calls of one stack run, on up to ``bound`` threads, each holding one of the provider's
    slots while it runs. The caller's context variables travel with each call (logging, tracing)."""

    def __init__(self, slots: threading.BoundedSemaphore, bound: int, provider: str) -> None:
        self.bound = bound
        self._slots = slots
        self._stopped = threading.Event()
        self._ex = ThreadPoolExecutor(max_workers=bound, thread_name_prefix=f"awan-{provider}-call")

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        ctx = contextvars.copy_context()

        def call() -> T:
            with self._slots:
                # A call may wait here for a slot another stack holds: it must not start after a stop.
                if self._stopped.is_set():
                    raise Withdrawn()
                return fn()

        return self._ex.submit(ctx.run, call)

    def stop(self) -> None:
        """No call not yet started will reach the cloud (it ends in ``Withdrawn`` or is cancelled)."""
        self._stopped.set()

    def close(self) -> None:
        """Wait for the calls under way (a cloud call cannot be taken back; its outcome is recorded by
        the caller) and drop those not started."""
        self._ex.shutdown(wait=True, cancel_futures=True)
