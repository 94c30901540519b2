"""What a mock cloud was asked, by whom and when: tests read it to prove things about the callers that
the resources alone cannot show (two replicas never working on one stack at the same time).

The caller is the SDK's application id in the User-Agent (``app/<id>``: botocore adds it from
``AWS_SDK_UA_APP_ID``), so the callers stay unmodified SDK clients."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

_APP = re.compile(r"\bapp/(\S+)")


@dataclass(frozen=True)
class Call:
    operation: str
    region: str
    caller: str
    start: float      # time.monotonic() of this process
    end: float


def caller_of(user_agent: str) -> str:
    m = _APP.search(user_agent or "")
    return m.group(1) if m else ""


@dataclass
class RequestLog:
    calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def entries(self) -> list[Call]:
        with self._lock:
            return list(self.calls)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
