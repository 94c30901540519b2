"""What a mock cloud was asked, by whom and when: tests read it to prove things about the callers that
the resources alone cannot show (two replicas never working on one stack at the same time).

Who called, as the cloud itself could tell, with the callers left unmodified SDK clients:
- the SDK's application id in the User-Agent (``app/<id>``): botocore adds it from ``AWS_SDK_UA_APP_ID``,
  azure-core from ``AZURE_HTTP_USER_AGENT``, the OCI SDK from ``OCI_SDK_APPEND_USER_AGENT``;
- else the identity in the bearer token (``<token>~<name>``, see ``named_token``): the Kubernetes client
  and the Google clients have no User-Agent setting, so a caller there is told apart by its credential,
  as a real cloud tells service accounts apart (the GCP mock issues such tokens to service accounts).

What was asked: the operation and region each mock names when it checks its faults (``describe``), so
every mock logs in the same terms its fault injection uses.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from werkzeug.datastructures import Headers

_APP = re.compile(r"\bapp/(\S+)")
_NAMED = "~"


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


def named_token(token: str, name: str) -> str:
    """``token`` presented under the identity ``name`` (the mocks accept both forms)."""
    return f"{token}{_NAMED}{name}"


def split_token(presented: str) -> tuple[str, str]:
    """(the token, the caller's name or "") of a bearer token as presented."""
    token, _, name = presented.partition(_NAMED)
    return token, name


def caller_of_request(headers: Headers) -> str:
    """The caller of one request: the User-Agent's ``app/<id>``, else the name in its bearer token."""
    by_agent = caller_of(headers.get("User-Agent", ""))
    if by_agent:
        return by_agent
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    return split_token(token.strip())[1] if scheme.lower() == "bearer" else ""


@dataclass
class _Serving:
    caller: str
    start: float
    operation: str = ""
    region: str = ""


# The request the current server thread is answering (werkzeug serves each request on its own thread).
_current = threading.local()


def describe(operation: str, region: str | None) -> None:
    """Name what the request being served does (the first description wins: a request is one call)."""
    s: _Serving | None = getattr(_current, "serving", None)
    if s is not None and not s.operation:
        s.operation, s.region = operation, region or ""


@dataclass
class RequestLog:
    calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    @contextmanager
    def serving(self, caller: str) -> Iterator[None]:
        """Log the request answered inside: its caller, what ``describe`` named, its start and end.
        A request nothing described (control endpoints, routing errors) is not a cloud call and is left out."""
        outer: _Serving | None = getattr(_current, "serving", None)
        s = _Serving(caller, time.monotonic())
        _current.serving = s
        try:
            yield
        finally:
            _current.serving = outer
            if s.operation:
                self.add(Call(s.operation, s.region, s.caller, s.start, time.monotonic()))

    def entries(self) -> list[Call]:
        with self._lock:
            return list(self.calls)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
