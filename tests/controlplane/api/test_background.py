"""``AWAN_BACKGROUND_NICE`` (controlplane/api/background.py): the work beside the API runs that many nice steps
below it. On Linux the nice value is per thread: a process started from a lowered thread is lowered, the
thread that started it is not, and a parse worker lowers itself before its first task. An out-of-range value
is refused naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from controlplane.api.background import _Lowered
from controlplane.api.parsepool import ParsePool
from controlplane.cli.main import app
from controlplane.settings import Settings
from tests.controlplane.api.test_parsepool import MEMBER, large
from tests.controlplane.cli.served import nice, spawned_children

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and per-thread nice values")


@linux
def test_a_process_started_from_a_lowered_thread_is_lowered_and_the_caller_is_not() -> None:
    me = os.getpid()
    base, tid = nice(me, threading.get_native_id()), threading.get_native_id()
    procs: list[subprocess.Popen[bytes]] = []
    started = _Lowered(lambda: procs.append(subprocess.Popen(["sleep", "60"])), 3)
    try:
        assert nice(procs[0].pid) == min(19, base + 3)
        assert nice(me, tid) == base
        assert nice(me) == nice(me, threading.main_thread().native_id) == base
    finally:
        procs[0].kill()
        procs[0].wait()
        started.release()


def test_a_failing_start_is_raised_to_the_caller() -> None:
    def boom() -> None:
        raise OSError("no such thing")

    with pytest.raises(OSError, match="no such thing"):
        _Lowered(boom, 3)


@linux
def test_the_parse_worker_runs_below_the_api_process() -> None:
    base = nice(os.getpid())
    pool = ParsePool(1, nice=4)
    try:
        assert len(pool.prepare(MEMBER, large(), "request body")) == 1000
        workers = spawned_children(os.getpid())
        assert workers
        assert {nice(w) for w in workers} == {min(19, base + 4)}
        assert nice(os.getpid()) == base
    finally:
        pool.close()


@pytest.mark.parametrize("value", ["-1", "20", "ten"])
def test_an_out_of_range_value_is_refused_naming_the_variable(value: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWAN_BACKGROUND_NICE", value)
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["serve", "--mock", "--db", f"sqlite:///{tmp_path}/a.db"])
    assert r.exit_code != 0
    assert "AWAN_BACKGROUND_NICE" in r.output and "Traceback" not in r.output, r.output
