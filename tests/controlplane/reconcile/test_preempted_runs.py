"""A preempted run resumes through its checkpoint: the requeue ends its incarnation without counting a
retry, the old objects are collected, and the next incarnation is dispatched with the same
``spec.run.checkpoint`` location (over the run step's fake cluster, as in test_running.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from controlplane.dispatch.render import A_CHECKPOINT
from controlplane.model.manifest import parse_manifests
from controlplane.queues import parse_queue_text
from controlplane.reconcile import restarts
from controlplane.reconcile.admitting import release_victims
from controlplane.store import audit
from controlplane.store import workloads as repo
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import Assignment, WorkloadState
from tests.controlplane.reconcile.test_running import env, step  # noqa: F401

MANIFEST = """metadata: {name: job-a, team: research}
spec:
  gpus: {model: H100, count: 16, perNode: 8}
  template: {image: 'ghcr.io/x/y:1', command: [python, train.py]}
  run: {restartPolicy: OnFailure, maxRetries: 1, checkpoint: {uri: 's3://ckpt/job-a/'}}
"""
CONFIG = parse_queue_text("""
apiVersion: awan.dev/v1alpha1
kind: QueuePolicy
metadata: {name: t}
spec:
  flavours: [{name: h100, gpuModel: H100}]
  queues: [{name: research, teams: [research], quotas: [{flavour: h100, nominal: 16}]}]
  preemption: {gracePeriodSeconds: 0}
""")


def _place(db: Database, *, submit: bool = False) -> None:
    """What admission, placement and provisioning leave: admitted, nodes up, Starting."""
    with db.session() as s:
        if submit:
            w = parse_manifests(MANIFEST)[0]
            repo.submit(s, name=w.name, team=w.team, spec=w.to_manifest(), priority=0, gpus=16)
        row = repo.get(s, "job-a")
        assert row is not None
        row.state = WorkloadState.STARTING.value
        row.queue, row.flavour, row.admitted_at = "research", "h100", utcnow()
        row.assignments.append(Assignment(pool="job-a-p-0", provider="aws", region="us-east-1", zone="us-east-1a",
                                          instance_type="p5.48xlarge", nodes=2, gpus=16, gpu_model="H100",
                                          capacity_type="on-demand"))


def _row(db: Database) -> Any:
    with db.session() as s:
        r = repo.get(s, "job-a")
        assert r is not None
        s.expunge_all()
        return r


def _checkpoints(objects: dict[tuple[str, str], dict[str, Any]]) -> set[str]:
    """Every checkpoint location the objects give their pods (annotation and environment)."""
    out = set()
    for o in objects.values():
        text = json.dumps(o)
        if A_CHECKPOINT in text:
            out.add(o["metadata"]["annotations"][A_CHECKPOINT])
        for c in (((o.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers", []):
            out |= {e["value"] for e in c.get("env", []) if e.get("value", "").startswith("s3://")}
    return out


def test_a_preempted_run_resumes_from_its_checkpoint_and_it_is_not_a_retry(env) -> None:  # noqa: F811
    db, cluster, cs = env
    _place(db, submit=True)
    run = step(db, cs)
    run.tick()
    cluster.set_pods("Running")
    run.tick()
    assert _row(db).state == "Running" and cluster.incarnations() == {"0"}
    assert _checkpoints(cluster.objects) == {"s3://ckpt/job-a/"}

    with db.session() as s:     # chosen as a victim by an admission cycle (its grace period is over)
        r = repo.get(s, "job-a")
        assert r is not None
        r.preempted_for, r.preempt_requested_at = "product_p1", utcnow() - timedelta(seconds=5)
    assert release_victims(db, CONFIG, fenced=lambda: True, actor="test") == ["research_job-a"]
    r = _row(db)
    assert (r.state, r.preemptions, r.restarts, r.dispatched_at) == ("Pending", 1, 1, None)
    assert restarts.retries(r.restarts, r.preemptions) == 0
    assert "resumes from checkpoint s3://ckpt/job-a/" in r.message
    with db.session() as s:
        ev = [e for e in audit.events(s, subject="job-a", limit=50) if e.action == "requeued"]
        assert len(ev) == 1 and ev[0].details["checkpoint"] == "s3://ckpt/job-a/"
        assert ev[0].details["incarnation"] == 1
        assert audit.count(s, action="retry", subject="job-a") == 0

    run.tick()                   # no longer kept: the preempted incarnation's objects are collected
    assert cluster.objects == {} and cluster.pods == {}

    _place(db)                   # admitted and placed again: the next incarnation, same checkpoint
    run.tick()
    assert cluster.incarnations() == {"1"} and _checkpoints(cluster.objects) == {"s3://ckpt/job-a/"}
    assert _row(db).dispatched_at is not None

    cluster.set_pods("Failed", 3, "Error")     # maxRetries 1: the preemption used none of it
    run.tick()
    r = _row(db)
    assert (r.state, r.restarts) == ("Starting", 2) and "retry 1 of 1" in r.message
    run.tick()
    cluster.set_pods("Failed", 3, "Error")
    run.tick()
    r = _row(db)
    assert r.state == "Failed" and "after 1 retries" in r.message


def test_a_capacity_only_workload_is_requeued_without_a_new_incarnation(db: Database) -> None:
    with db.session() as s:
        w = parse_manifests("metadata: {name: cap, team: research}\n"
                            "spec: {gpus: {model: H100, count: 16, perNode: 8}}\n")[0]
        row, _ = repo.submit(s, name=w.name, team=w.team, spec=w.to_manifest(), priority=0, gpus=16)
        row.state, row.queue, row.flavour, row.admitted_at = "Running", "research", "h100", utcnow()
        row.preempted_for, row.preempt_requested_at = "product_p1", utcnow() - timedelta(seconds=5)
    assert release_victims(db, CONFIG, fenced=lambda: True, actor="test") == ["research_cap"]
    with db.session() as s:
        r = repo.get(s, "cap")
        assert r is not None and (r.state, r.preemptions, r.restarts) == ("Pending", 1, 0)
        assert "checkpoint" not in r.message


def test_a_lost_incarnation_after_a_preemption_counts_only_the_loss(db: Database) -> None:
    with db.session() as s:
        w = parse_manifests(MANIFEST)[0]
        row, _ = repo.submit(s, name=w.name, team=w.team, spec=w.to_manifest(), priority=0, gpus=16)
        row.restarts, row.preemptions, row.dispatched_at = 1, 1, utcnow()     # preempted once, running again
        assert restarts.end_incarnation(s, row, actor="test", why="nodes lost") is False   # retry 1 of 1
        assert (row.restarts, row.state) == (2, "Pending")
        row.dispatched_at = utcnow()
        assert restarts.end_incarnation(s, row, actor="test", why="nodes lost again") is True
        assert (row.state, row.restarts) == ("Failed", 2) and "all 1 retries" in row.message


def test_a_planned_move_is_not_a_retry_but_a_loss_after_it_is(db: Database) -> None:
    """Moving a run off a Capacity Block before its end (trigger block-ending) is the control plane's choice:
    with maxRetries 1, two planned moves leave the retry untouched; a real loss afterwards uses it, the
    next fails the workload."""
    from controlplane.reconcile import failover

    with db.session() as s:
        w = parse_manifests(MANIFEST)[0]
        row, _ = repo.submit(s, name=w.name, team=w.team, spec=w.to_manifest(), priority=0, gpus=16)
        for _ in range(2):
            row.state, row.dispatched_at = "Running", utcnow()
            failover.replace(s, row, actor="test", reason="block ends", trigger="block-ending", planned=True)
            assert row.state == "Pending" and row.dispatched_at is None
        assert (row.restarts, row.preemptions) == (2, 2) and restarts.retries(row.restarts, row.preemptions) == 0
        assert audit.count(s, action="retry", subject="job-a") == 0
        row.state, row.dispatched_at = "Running", utcnow()
        failover.replace(s, row, actor="test", reason="nodes gone", trigger="preempted")
        assert row.state == "Pending" and restarts.retries(row.restarts, row.preemptions) == 1
        row.state, row.dispatched_at = "Running", utcnow()
        failover.replace(s, row, actor="test", reason="nodes gone", trigger="preempted")
        assert row.state == "Failed" and "all 1 retries" in row.message
