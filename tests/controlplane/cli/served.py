"""A real `awan serve` in a subprocess, for the tests that start one (test_serve_controller_process,
test_serve_workers): a free port, whether a pid still runs, and the served process with its JSON log events
and a bounded wait on a condition."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from typer.testing import CliRunner

from controlplane.auth import create_token
from controlplane.cli.main import app
from controlplane.settings import Settings
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade

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

    def children(self) -> list[int]:
        """The service's processes other than its own: the controller process and any API workers."""
        return [int(str(e["pid"])) for e in self.named("api worker serving")
                + self.named("controller process reconciling") + self.named("runner process running stacks")]


S = TypeVar("S", bound=Served)


@contextlib.contextmanager
def serving(kind: type[S], tmp_path: Path, ready: Callable[[S], bool], what: str, args: tuple[str, ...] = (),
            db_url: str | None = None, **env: str) -> Iterator[S]:
    """``awan serve --mock`` on a fresh SQLite store (or ``db_url``, migrated here) with a member token, JSON
    logs read into ``events``; yielded once ``ready`` holds. ``env``: AWAN_* variables beside the suites' own
    (a 5 s grace). Killed afterwards, with every child process it logged."""
    url = db_url or f"sqlite:///{tmp_path}/awan.db"
    db = Database.from_url(url)
    upgrade(db.engine)
    with db.session() as s:
        token, _ = create_token(s, "research", "member")
    port = free_port()
    full = dict(os.environ, AWAN_LOG_FORMAT="json", AWAN_SHUTDOWN_GRACE_S="5", **env)
    for default in ("AWAN_CONTROLLER_PROCESS", "AWAN_BACKGROUND_NICE"):   # the suites assume their defaults
        if default not in env:
            full.pop(default, None)
    proc = subprocess.Popen([str(Path(sys.executable).with_name("awan")), "serve", "--mock", "--db", url,
                             "--port", str(port), *args], cwd=tmp_path, env=full, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out = kind(proc, f"http://127.0.0.1:{port}", db, token)

    def read() -> None:
        for line in proc.stdout or ():
            if line.startswith("{"):
                out.events.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        out.wait(lambda: ready(out) or proc.poll() is not None, what)
        assert proc.poll() is None, out.events[-8:]
        yield out
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(60)
        for pid in out.children():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        reader.join(10)
        db.dispose()


def counter(exposition: str, family: str) -> float:
    """The total of a counter family in a /metrics exposition (0 when absent)."""
    for f in text_string_to_metric_families(exposition):
        if f.name == family:
            return sum(s.value for s in f.samples if s.name == f"{family}_total")
    return 0.0


def nice(pid: int, tid: int | None = None) -> int:
    """The nice value of a thread (the process's main thread when ``tid`` is None): /proc stat field 19."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    return int(Path(path).read_text().rsplit(")", 1)[1].split()[16])


def thread_nices(pid: int) -> list[int]:
    """The nice value of every thread of ``pid`` (Linux: each thread has its own)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):    # a thread ended meanwhile
            out.append(nice(pid, int(task.name)))
    return out


def spawned_children(pid: int) -> list[int]:
    """The running ``multiprocessing`` spawn children of ``pid`` (not its resource tracker)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (d / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if ppid == pid and b"spawn_main" in cmdline and alive(int(d.name)):
            out.append(int(d.name))
    return out


def assert_serve_refuses(variable: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad value of a setting: the settings refuse it, and `awan serve` stops with a non-zero exit naming the
    variable, with no traceback (run in-process: nothing is served)."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["serve", "--mock", "--db", f"sqlite:///{tmp_path}/a.db"])
    assert r.exit_code != 0
    assert variable in r.output and "Traceback" not in r.output, r.output
