"""Where the local engine keeps each stack's state: what it created, under which URN, with which inputs
and cloud ids, and what it was about to create when it last stopped (pending records).

``StackStateStore`` is the protocol; ``FileStateStore`` (one JSON file per stack, written atomically,
an flock per stack) is the default. The service provides a database-backed store of the same shape.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from infra.engines.base import StackBusy

STATE_VERSION = 1
DEFAULT_DIR_ENV = "AWAN_STATE_DIR"


@runtime_checkable
class StackStateStore(Protocol):
    def get(self, stack: str) -> dict[str, Any] | None: ...
    def put(self, stack: str, state: dict[str, Any]) -> None: ...
    def delete(self, stack: str) -> None: ...
    def list(self) -> list[str]: ...
    def lock(self, stack: str, timeout_s: float = 30.0) -> contextlib.AbstractContextManager[None]:
        """Hold the stack for one worker; raise StackBusy after ``timeout_s``."""
        ...


def empty_state(stack: str) -> dict[str, Any]:
    return {"version": STATE_VERSION, "stack": stack, "resources": {}, "outputs": {}, "serial": 0}


_SAFE = re.compile(r"[A-Za-z0-9._-]+")


def default_state_dir() -> Path:
    return Path(os.environ.get(DEFAULT_DIR_ENV) or Path.home() / ".awan" / "stacks")


class FileStateStore:
    """``<dir>/<stack>.json`` per stack. Writes go to a temp file, are fsynced, then renamed over the
    old file, so a process killed mid-write leaves the previous state intact."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.dir = Path(directory) if directory is not None else default_state_dir()

    def _path(self, stack: str, suffix: str = ".json") -> Path:
        if not _SAFE.fullmatch(stack):
            raise ValueError(f"stack {stack!r}: not a valid stack name")
        return self.dir / f"{stack}{suffix}"

    def get(self, stack: str) -> dict[str, Any] | None:
        p = self._path(stack)
        try:
            state: dict[str, Any] = json.loads(p.read_text())
            return state
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: stack state is not valid JSON ({e}); restore it or delete the stack") from None

    def put(self, stack: str, state: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        target = self._path(stack)
        # One compact dumps: json's C encoder (indent or dump() to a file fall back to the pure-Python
        # one, several times slower on a stack of thousands of resources).
        text = json.dumps(state, sort_keys=True, separators=(",", ":"))
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{stack}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def delete(self, stack: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(stack).unlink()

    def list(self) -> list[str]:
        if not self.dir.exists():
            return []
        return sorted(p.stem for p in self.dir.glob("*.json") if not p.name.startswith("."))

    @contextlib.contextmanager
    def lock(self, stack: str, timeout_s: float = 30.0) -> Iterator[None]:
        # flock is released by the kernel when the process dies, so a killed worker never wedges a stack.
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self._path(stack, ".lock"), "a+") as f:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StackBusy(f"stack {stack}: another worker is running it (lock {f.name})") from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
