"""A real `awan serve` in a subprocess, for the tests that start one (test_serve_controller_process,
test_serve_workers): a free port, whether a pid still runs, and the served process with its JSON log events
and a bounded wait on a condition."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from controlplane.store.db import Database

BOUND_S = 600.0      # mock clouds, several interpreters' imports and a first pass, on a busy machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@dataclass
class Served:
    proc: subprocess.Popen[str]
    url: str
    db: Database
    token: str
    events: list[dict[str, object]] = field(default_factory=list)

    def wait(self, cond: Callable[[], bool], what: str, bound_s: float = BOUND_S) -> None:
        end = time.monotonic() + bound_s
        while not cond():
            assert time.monotonic() < end, f"timed out waiting for {what}: {self.events[-8:]}"
            time.sleep(0.3)

    def named(self, event: str) -> list[dict[str, object]]:
        return [e for e in self.events if e.get("event") == event]


def counter(exposition: str, family: str) -> float:
    """The total of a counter family in a /metrics exposition (0 when absent)."""
    for f in text_string_to_metric_families(exposition):
        if f.name == family:
            return sum(s.value for s in f.samples if s.name == f"{family}_total")
    return 0.0
