"""Fault injection shared by every mock cloud: region outage, throttling, latency, per-operation errors.

Each fake asks ``FaultBook.check(operation, region)`` before serving a call and renders the
answer in its own cloud's wire format. Capacity exhaustion and spot preemption are state changes,
done by the fakes through the ledger and their node stores.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Literal

from mockclouds.requestlog import describe

FaultKind = Literal["outage", "throttle", "latency", "error"]


@dataclass
class Fault:
    kind: FaultKind
    region: str | None = None        # None: every region (a provider-wide fault)
    operation: str | None = None     # None: every operation; else the cloud's own op name (RunInstances, insert)
    times: int | None = None         # None: until cleared
    status: int = 0                  # HTTP status to answer (0: the kind's default)
    code: str = ""                   # the cloud's error code for kind == "error"
    message: str = ""
    retry_after: float = 1.0         # throttle
    latency_ms: float = 0.0          # latency
    id: int = 0


@dataclass(frozen=True)
class FaultHit:
    kind: FaultKind
    status: int
    code: str
    message: str
    retry_after: float


_DEFAULT_STATUS = {"outage": 503, "throttle": 429, "error": 400}


@dataclass
class FaultBook:
    faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1), repr=False)

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            fault.id = next(self._ids)
            self.faults.append(fault)
        return fault

    def add_dict(self, body: dict) -> Fault:
        known = set(Fault.__dataclass_fields__) - {"id"}
        unknown = set(body) - known
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        if body.get("kind") not in ("outage", "throttle", "latency", "error"):
            raise ValueError("kind: must be one of outage, throttle, latency, error")
        return self.add(Fault(**body))

    def clear(self, fault_id: int | None = None) -> None:
        with self._lock:
            self.faults = [f for f in self.faults if fault_id is not None and f.id != fault_id]

    def list(self) -> list[dict]:
        with self._lock:
            return [asdict(f) for f in self.faults]

    def region_down(self, region: str) -> bool:
        with self._lock:
            return any(f.kind == "outage" and f.operation is None and f.region in (None, region)
                       for f in self.faults)

    def check(self, operation: str, region: str | None) -> FaultHit | None:
        """Apply latency faults (sleeping), then return the first error fault that matches, if any."""
        # Every mock checks its faults once it knows what a request does and where: the request log
        # takes its description from here, in the same terms as the faults.
        describe(operation, region)
        delay = 0.0
        hit: FaultHit | None = None
        with self._lock:
            for f in list(self.faults):
                if f.region is not None and region is not None and f.region != region:
                    continue
                if f.region is not None and region is None:
                    continue
                if f.operation is not None and f.operation != operation:
                    continue
                if f.kind == "latency":
                    delay = max(delay, f.latency_ms / 1000.0)
                    continue
                if hit is None:
                    hit = FaultHit(f.kind, f.status or _DEFAULT_STATUS[f.kind], f.code,
                                   f.message or f"injected {f.kind}", f.retry_after)
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            self.faults.remove(f)
        if delay:
            time.sleep(delay)
        return hit
