"""The loop over fake clouds: Pending -> Placed -> Provisioning -> Running; idempotent passes; delete;
unplaceable stays Pending with its reason; engine failures back off and retry; drift is repaired."""

from __future__ import annotations

from controlplane.model.identity import workload_key
from controlplane.store import audit
from controlplane.store.models import Stack
from tests.controlplane.reconcile.fakes import FakeCloud, FakeEngine, FakePlacer
from tests.controlplane.reconcile.harness import drive, make_controller, states, submit


def test_lifecycle_to_running_and_deleted(db):
    cloud, placer = FakeCloud(), FakePlacer()
    c = make_controller(db, cloud, placer)
    submit(db, "train-a", gpus=16)
    submit(db, "train-b", gpus=8)
    drive(c)
    assert states(db) == {"train-a": "Running", "train-b": "Running"}
    assert len(cloud.nodes) == 3 and len(cloud.creates) == 3
    drive(c, passes=3)                               # level-triggered: more passes change nothing
    assert len(cloud.creates) == 3 and placer.decided == {"train-a": 1, "train-b": 1}
    with db.session() as s:
        from controlplane.store import workloads as repo

        repo.request_delete(s, repo.get(s, "train-a"))
    drive(c)
    assert states(db) == {"train-a": "Deleted", "train-b": "Running"}
    assert {n.workload for n in cloud.nodes.values()} == {workload_key("research", "train-b")}
    with db.session() as s:
        actions = [e.action for e in audit.events(s, subject="train-a")]
    assert actions == ["placed", "provisioning", "running", "deleted"]
    c.stop()


def test_unplaceable_stays_pending_with_reason_and_is_audited_once(db):
    cloud, placer = FakeCloud(), FakePlacer()
    c = make_controller(db, cloud, placer, retry_base_s=0.0)
    submit(db, "nope-x")
    drive(c, passes=3)
    assert states(db) == {"nope-x": "Pending"}
    assert placer.decided["nope-x"] >= 2             # retried
    with db.session() as s:
        assert audit.count(s, action="unplaceable", subject="nope-x") == 1
        from controlplane.store import workloads as repo

        assert "no capacity" in repo.get(s, "nope-x").message
    c.stop()


def test_engine_failure_backs_off_then_succeeds(db):
    cloud, placer = FakeCloud(), FakePlacer()
    engine = FakeEngine(cloud, fail_times=2)
    c = make_controller(db, cloud, placer, engine=engine)
    submit(db, "flaky")
    drive(c, passes=2)
    with db.session() as s:
        st = s.get(Stack, "awan-aws-us-east-1")
        assert st.status == "failed" and "injected" in st.message
    assert c.queue.failures("stack:awan-aws-us-east-1") >= 1
    import time

    for _ in range(50):                              # backoff is 0.01 s doubling; drive until it converges
        drive(c, passes=1)
        if states(db)["flaky"] == "Running":
            break
        time.sleep(0.02)
    assert states(db)["flaky"] == "Running" and engine.calls >= 3
    assert c.metrics.provider_errors.labels("aws", "RuntimeError")._value.get() == 2
    c.stop()


def test_drift_sends_running_back_and_repairs(db):
    cloud, placer = FakeCloud(), FakePlacer()
    c = make_controller(db, cloud, placer)
    submit(db, "drifty", gpus=16)
    drive(c)
    assert states(db)["drifty"] == "Running"
    del cloud.nodes[next(iter(cloud.nodes))]         # a node vanishes behind our back
    drive(c, passes=1)
    assert states(db)["drifty"] in ("Provisioning", "Running")
    drive(c, passes=2)
    assert states(db)["drifty"] == "Running" and len(cloud.nodes) == 2 and len(cloud.creates) == 3
    c.stop()


def test_unobserved_provider_is_not_mistaken_for_missing_nodes(db):
    cloud, placer = FakeCloud(), FakePlacer()
    c = make_controller(db, cloud, placer)
    submit(db, "steady")
    drive(c)
    c.providers["aws"].fail_list = True              # type: ignore[attr-defined]
    drive(c, passes=2)
    assert states(db)["steady"] == "Running"
    assert c.metrics.provider_errors.labels("aws", "ConnectionError")._value.get() >= 1
    c.stop()
