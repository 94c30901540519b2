"""A controller SIGKILLed again and again while it preempts (a real process, killed at random moments
between marking victims, their grace period, and requeueing them) loses nothing and preempts nothing
twice: every victim is marked once and requeued once, no more victims than the reclaim needs."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controlplane.model.manifest import parse_manifests
from controlplane.store import audit
from controlplane.store import policies as policy_store
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade

REPO = Path(__file__).resolve().parents[3]
POLICY = """
apiVersion: awan.dev/v1alpha1
kind: QueuePolicy
metadata: {name: crash}
spec:
  flavours: [{name: h100, gpuModel: H100}]
  queues:
    - {name: a, teams: [a], cohort: ml, quotas: [{flavour: h100, nominal: 40}]}
    - {name: b, teams: [b], cohort: ml, quotas: [{flavour: h100, nominal: 40}]}
  preemption: {gracePeriodSeconds: 0.5}
"""


def _submit(db: Database, name: str, team: str) -> None:
    w = parse_manifests("apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\n"
                        f"metadata: {{name: {name}, team: {team}}}\n"
                        "spec: {gpus: {model: H100, count: 8, perNode: 8}}\n")[0]
    with db.session() as s:
        repo.submit(s, name=w.name, team=w.team, spec=w.to_manifest(), priority=0, gpus=w.total_gpus)


def _start(url: str, log: Path) -> subprocess.Popen[str]:
    out = log.open("w")   # a file, not a pipe: a child that is never read from must not block on writing
    return subprocess.Popen([sys.executable, "-m", "tests.controlplane.reconcile.admit_child", url], cwd=REPO,
                            stdout=out, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def _passes(log: Path) -> int:
    return log.read_text().count("pass ") if log.exists() else 0


def _marked(db: Database) -> int:
    with db.session() as s:
        return sum(1 for w in repo.list_(s) if w.preempted_for is not None)


def _wait(cond, what: str, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def _running(db: Database, team: str) -> int:
    with db.session() as s:
        return sum(1 for w in repo.list_(s, team=team) if w.state == "Running")


@pytest.mark.slow
def test_sigkill_during_preemption_loses_nothing_and_preempts_nothing_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'awan.db'}"
    db = Database.from_url(url)
    upgrade(db.engine)
    with db.session() as s:
        policy_store.put_document(s, POLICY, "test")
    for i in range(10):                      # a borrows all of b's idle quota: 80 GPUs
        _submit(db, f"a{i}", "a")
    log = tmp_path / "child.log"
    child = _start(url, log)
    kills_mid_preemption = 0
    try:
        _wait(lambda: _running(db, "a") == 10, "a's ten workloads to run")
        rng = random.Random(5)
        for i in range(5):                   # b returns one workload at a time: each reclaims one victim
            _submit(db, f"b{i}", "b")
            if i % 2 == 0:                   # kill the moment its victim is marked, inside its grace period
                _wait(lambda: _marked(db) > 0, "a victim to be marked")
            else:                            # or at a random moment once the controller is passing
                _wait(lambda: _passes(log) > 0, "the controller's first pass")
                time.sleep(rng.uniform(0.0, 0.6))
            kills_mid_preemption += _marked(db) > 0
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            child = _start(url, log)         # a new controller on the same store
        _wait(lambda: _running(db, "b") == 5, "b's five workloads to run")
        _wait(lambda: _passes(log) > 20, "more passes, in which nothing may change")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert kills_mid_preemption >= 3, "the kills never landed inside a preemption: the test tests nothing"
    with db.session() as s:
        rows = {w.name: w for w in repo.list_(s)}
        assert len(rows) == 15, "a workload was lost"
        victims = [n for n, w in rows.items() if n.startswith("a") and w.state == "Pending"]
        assert len(victims) == 5 and _running(db, "a") == 5
        for n in victims:
            assert audit.count(s, action="preempted", subject=n) == 1
            assert audit.count(s, action="requeued", subject=n) == 1
            assert rows[n].preemptions == 1 and rows[n].preempted_for is None and rows[n].admitted_at is None
        assert audit.count(s, action="preempted") == 5, "more victims than the reclaim needed"
        assert all(rows[f"b{i}"].preemptions == 0 for i in range(5))
    db.dispose()
