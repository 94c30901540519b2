"""ChildLoop.stop (controlplane/reconcile/child.py) with a child that outlives its grace: it is killed, and the work
leases it held are freed by its holder name as soon as stop returns, not after their TTL (600 s here); a lease
another holder has is untouched. The child is a stand-in (``_outliving_child``) whose stack run never ends and
which never answers the parent's stop, as a run stuck in a cloud call would."""

from __future__ import annotations

import signal
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from typing import Any

import pytest

from controlplane.reconcile import child
from controlplane.reconcile.child import ChildLoop
from controlplane.store import work_leases as wl
from controlplane.store.db import Database

STACK = "awan-aws-us-east-1"


def _outliving_child(conn: Connection, settings: dict[str, Any], config: object, parent_pid: int, ready: EventType,
                     runner: bool = False) -> None:
    """Takes a stack lease and its "runner" lease for 600 s, then neither drains nor answers (SIGTERM ignored)."""
    child._die_with(parent_pid)          # a test process that dies takes this one with it
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    holder = str(settings["replica_id"])
    db = Database.from_url(str(settings["db_url"]))
    wl.claim(db, wl.STACK, [STACK], holder, 600.0, 1)
    wl.claim(db, wl.RUNNER, [holder], holder, 600.0, 1)
    ready.set()
    while True:
        time.sleep(1.0)


def _wait_for(cond: Any, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_a_child_killed_after_its_grace_has_its_work_leases_freed_when_stop_returns(
        db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # the parent's waits for an answer and for the exit: shorter than 5 s, and long enough for a killed child to be
    # reaped on a loaded machine (stop frees the leases only once it knows the child exited)
    monkeypatch.setattr(child, "ANSWER_S", 2.0)
    wl.claim(db, wl.STACK, ["awan-aws-us-east-2"], "svc.runner1.live", 600.0, 1)
    loop = ChildLoop({"db_url": db_url, "replica_id": "svc"}, None, runner=0, target=_outliving_child)
    loop.start()
    try:
        _wait_for(lambda: STACK in wl.held(db, wl.STACK))
        assert wl.held(db, wl.STACK)[STACK][0].startswith("svc.runner0.")
    except BaseException:
        loop.stop(grace_s=0.0)
        raise
    assert loop.stop(grace_s=0.5) is False          # not drained: killed
    assert wl.held(db, wl.STACK) == {"awan-aws-us-east-2": ("svc.runner1.live", 1)}
    assert wl.held(db, wl.RUNNER) == {}
    assert wl.claim(db, wl.STACK, [STACK], "svc.runner0.next", 600.0, 1) == {STACK: 2}   # free now, a new epoch
