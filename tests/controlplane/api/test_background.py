"""``AWAN_BACKGROUND_NICE`` (controlplane/priority.py): the work beside the API runs that many nice steps below
it. A parse worker lowers itself before its first task (the controller process: test_serve_background_nice).
An out-of-range value is refused naming the variable."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from controlplane.api.parsepool import ParsePool
from tests.controlplane.api.test_parsepool import MEMBER, large
from tests.controlplane.cli.served import assert_serve_refuses, nice, spawned_children

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and per-thread nice values")


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
    assert_serve_refuses("AWAN_BACKGROUND_NICE", value, tmp_path, monkeypatch)
