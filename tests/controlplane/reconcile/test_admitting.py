"""The admission gate in the reconcile loop, over a real store: only admitted workloads are placed; the
rest wait with a reason and a position; reclaim preempts through the loop (release and re-provision),
audited on both sides."""

from __future__ import annotations

from controlplane.queues import QueueConfig, parse_queue_text
from controlplane.reconcile.admitting import admit_pending
from controlplane.reconcile.controller import Controller
from controlplane.store import audit
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from tests.controlplane.reconcile.fakes import FakeCloud, FakePlacer
from tests.controlplane.reconcile.harness import drive, make_controller, states, submit

POLICY = """
apiVersion: awan.dev/v1alpha1
kind: QueuePolicy
metadata: {name: t}
spec:
  flavours: [{name: h100, gpuModel: H100}]
  queues:
    - {name: research, teams: [research], cohort: ml, quotas: [{flavour: h100, nominal: 16}]}
    - {name: product, teams: [product], cohort: ml, quotas: [{flavour: h100, nominal: 16}]}
  preemption: {gracePeriodSeconds: 0}
"""


def controller(db: Database, cfg: QueueConfig) -> tuple[Controller, FakePlacer]:
    placer = FakePlacer()
    c = make_controller(db, FakeCloud(), placer)
    c.queues = lambda: cfg
    return c, placer


def rows(db: Database) -> dict[str, object]:
    with db.session() as s:
        return {w.name: w for w in repo.list_(s, include_deleted=True)}


def test_only_admitted_workloads_are_placed_and_the_rest_wait_with_a_position(db: Database) -> None:
    cfg = parse_queue_text(POLICY.replace("cohort: ml, ", ""))
    c, placer = controller(db, cfg)
    for n in ("r1", "r2", "r3"):
        submit(db, n, "research", 16)
    submit(db, "x1", "nobody", 8)
    drive(c, 3)
    st = states(db)
    assert st["r1"] == "Running" and st["r2"] == st["r3"] == "Pending" and st["x1"] == "Pending"
    assert set(placer.decided) == {"r1"}          # the gate holds the others back from placement
    with db.session() as s:
        r2, r3, x1 = (repo.get(s, n) for n in ("r2", "r3", "x1"))
        assert r2 is not None and r3 is not None and x1 is not None
        assert (r2.wait_reason, r2.queue_position, r3.queue_position) == ("quota", 1, 2)
        assert r2.message.startswith("waiting (quota): #1 in queue research")
        assert x1.wait_reason == "policy" and "no queue" in x1.message
        assert audit.count(s, action="admitted", subject="r1") == 1


def test_without_queue_documents_nothing_is_gated(db: Database) -> None:
    c, placer = controller(db, QueueConfig())
    submit(db, "a", "anyone", 16)
    drive(c, 2)
    assert states(db)["a"] == "Running"


def test_reclaim_preempts_through_the_loop_and_requeues_the_victim(db: Database) -> None:
    c, placer = controller(db, parse_queue_text(POLICY))
    submit(db, "r1", "research", 16)
    submit(db, "r2", "research", 16)            # borrows product's idle quota
    drive(c, 3)
    assert states(db)["r2"] == "Running"
    submit(db, "p1", "product", 16)             # product returns: takes its nominal back
    drive(c, 4)
    st = states(db)
    assert st["p1"] == "Running"
    victim = "r2" if st["r2"] == "Pending" else "r1"
    assert st[victim] == "Pending" and st[{"r1": "r2", "r2": "r1"}[victim]] == "Running"
    with db.session() as s:
        v = repo.get(s, victim)
        assert v is not None and v.assignments == [] and v.admitted_at is None and v.preemptions == 1
        assert v.preempted_for is None
        assert audit.count(s, action="preempted", subject=victim) == 1
        assert audit.count(s, action="preempting", subject="p1") == 1
        assert audit.count(s, action="requeued", subject=victim) == 1
        ev = [e for e in audit.events(s, subject=victim, limit=100) if e.action == "preempted"][0]
        assert ev.team == "research" and ev.details["preemptorTeam"] == "product"
        assert ev.details["reason"] == "ReclaimNominal"
    drive(c, 3)                                  # settles: nothing is preempted again
    with db.session() as s:
        assert audit.count(s, action="preempted") == 1
    assert states(db)[victim] == "Pending"


def test_workloads_running_before_queues_existed_are_adopted_and_count(db: Database) -> None:
    c, placer = controller(db, QueueConfig())
    submit(db, "old", "research", 16)
    drive(c, 2)
    assert states(db)["old"] == "Running"
    c.queues = lambda: parse_queue_text(POLICY.replace("cohort: ml, ", ""))
    submit(db, "new", "research", 8)
    drive(c, 2)
    with db.session() as s:
        old, new = repo.get(s, "old"), repo.get(s, "new")
        assert old is not None and new is not None
        assert (old.queue, old.flavour, old.state) == ("research", "h100", "Running")
        assert new.state == "Pending" and new.wait_reason == "quota"   # research's 16 are held by "old"
        assert audit.count(s, action="admitted", subject="old") == 1


def _submit_together(db: Database, *items: tuple[str, int]) -> None:
    """One request of several workloads, through the API's batched path (one timestamp for all)."""
    ws = [repo.NewWorkload(name=n, team="research", spec={"spec": {"gpus": {"model": ["H100"], "count": g}}},
                           priority=0, gpus=g) for n, g in items]
    with db.session() as s:
        repo.write_submit(s, repo.plan_submit(s, ws))


def test_workloads_submitted_together_are_admitted_in_the_order_given_not_by_name(db: Database) -> None:
    # Regression (issue 11): a batched submit stamps every row with one created_at, and ties went by key,
    # so "alpha" jumped ahead of "zeta" and took the room "zeta" had first claim to.
    cfg = parse_queue_text(POLICY.replace("cohort: ml, ", ""))
    _submit_together(db, ("zeta", 16), ("alpha", 8))
    res = admit_pending(db, cfg, fenced=lambda: True, actor="test")
    assert res.admitted == ["research_zeta"]
    with db.session() as s:
        alpha = repo.get(s, "alpha")
        assert alpha is not None and (alpha.wait_reason, alpha.queue_position) == ("quota", 1)


def test_a_name_submitted_again_after_delete_queues_as_a_new_arrival(db: Database) -> None:
    cfg = parse_queue_text(POLICY.replace("cohort: ml, ", ""))
    _submit_together(db, ("old", 8))
    with db.session() as s:
        row = repo.get(s, "old")
        assert row is not None
        row.state = "Deleted"                  # the tombstone the loop leaves once it is torn down
    _submit_together(db, ("mid", 16))
    _submit_together(db, ("old", 16))          # reuses the tombstone: it must not keep its first arrival
    res = admit_pending(db, cfg, fenced=lambda: True, actor="test")
    assert res.admitted == ["research_mid"]


FAIR = """
apiVersion: awan.dev/v1alpha1
kind: QueuePolicy
metadata: {name: t}
spec:
  flavours: [{name: h100, gpuModel: H100}]
  queues:
    - {name: research, teams: [research], cohort: ml, quotas: [{flavour: h100, nominal: 0}]}
    - {name: product, teams: [product], cohort: ml, quotas: [{flavour: h100, nominal: 0}]}
    - {name: lender, teams: [lender], cohort: ml, quotas: [{flavour: h100, nominal: 32}]}
  preemption: {gracePeriodSeconds: 0, fairSharing: {preemptionStrategies: [LessThanOrEqualToFinalShare]}}
"""


def test_fair_share_preemption_through_the_loop_is_audited_on_both_sides(db: Database) -> None:
    c, placer = controller(db, parse_queue_text(FAIR))
    for i in range(4):
        submit(db, f"r{i}", "research", 8)      # research borrows all 32 of the idle lender's GPUs
    drive(c, 3)
    assert [states(db)[f"r{i}"] for i in range(4)] == ["Running"] * 4
    submit(db, "p1", "product", 8)              # product, below its share, takes 8 of them
    drive(c, 4)
    st = states(db)
    assert st["p1"] == "Running" and sorted(st[f"r{i}"] for i in range(4)) == ["Pending"] + ["Running"] * 3
    victim = next(f"r{i}" for i in range(4) if st[f"r{i}"] == "Pending")
    with db.session() as s:
        ev = [e for e in audit.events(s, subject=victim, limit=100) if e.action == "preempted"]
        assert len(ev) == 1 and ev[0].details["reason"] == "FairShare" and ev[0].details["preemptorQueue"] == "product"
        assert audit.count(s, action="preempting", subject="p1") == 1
    drive(c, 3)                                  # product asks for no more: nothing else is preempted
    with db.session() as s:
        assert audit.count(s, action="preempted") == 1
