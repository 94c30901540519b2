"""The store on SQLite and PostgreSQL: migrations, row claims with lock tokens, the StackStateStore
protocol, and name reuse after deletion."""

from __future__ import annotations

import pytest

from controlplane.store import workloads as repo
from controlplane.store.migrate import current, head, upgrade
from controlplane.store.models import Stack, WorkloadState
from controlplane.store.stack_state import DbStackStateStore
from infra.engines.base import StackBusy
from infra.engines.state import StackStateStore


def _add(db, name, team="t", priority=0):  # type: ignore[no-untyped-def]
    with db.session() as s:
        return repo.submit(s, name=name, team=team, spec={"n": name}, priority=priority, gpus=8)


def test_migrations_are_idempotent(db):
    upgrade(db.engine)
    assert current(db.engine) == head()


def test_claim_specs_locks_rows_priority_first_until_released_and_reads_the_spec(db):
    for i, p in enumerate([0, 50, 10, 50]):
        _add(db, f"w{i}", priority=p)
    with db.session() as s:
        tok, rows = repo.claim_specs(s, [WorkloadState.PENDING.value], ttl_s=60, limit=3, order_by_priority=True)
    assert [(r.key, r.spec) for r in rows] == [("t_w1", {"n": "w1"}), ("t_w3", {"n": "w3"}), ("t_w2", {"n": "w2"})]
    with db.session() as s:
        assert [r.key for r in repo.locked_rows(s, tok)] == ["t_w1", "t_w2", "t_w3"]   # id order
        _, again = repo.claim_specs(s, [WorkloadState.PENDING.value], ttl_s=60)
    assert [r.key for r in again] == ["t_w0"]                          # only the one left unlocked
    with db.session() as s:
        repo.release(s, tok)
    with db.session() as s:
        _, back = repo.claim_specs(s, [WorkloadState.PENDING.value], ttl_s=-1)   # expired at once
    assert [r.key for r in back] == ["t_w1", "t_w2", "t_w3"]             # id order without priority
    with db.session() as s:
        _, expired = repo.claim_specs(s, [WorkloadState.PENDING.value], ttl_s=60)
    assert len(expired) == 3                                        # an expired lock can be taken over


def test_name_conflict_and_reuse_after_delete(db):
    _add(db, "same")
    with db.session() as s, pytest.raises(repo.ConflictError):
        repo.submit(s, name="same", team="t", spec={"other": 1}, priority=0, gpus=8)
    with db.session() as s:
        row = repo.get(s, "same")
        assert repo.request_delete(s, row) and not repo.request_delete(s, row)
        row.state = WorkloadState.DELETED.value
    with db.session() as s:
        row, created = repo.submit(s, name="same", team="t", spec={"again": 1}, priority=0, gpus=8)
        assert created and row.state == "Pending" and row.team == "t" and row.generation == 3


def test_names_are_unique_per_team_not_across_teams(db):
    """Issue 13 (low): another team's name no longer answers 409 (no probing, no squatting)."""
    (a, new_a), (b, new_b) = _add(db, "train", team="alpha"), _add(db, "train", team="beta")
    assert new_a and new_b and a.id != b.id and a.key != b.key
    with db.session() as s:
        assert repo.get(s, "train", "alpha").team == "alpha" and repo.get(s, "train", "beta").team == "beta"
        with pytest.raises(repo.AmbiguousName):
            repo.get(s, "train")


def test_stack_state_store_protocol(db):
    st = DbStackStateStore(db)
    assert isinstance(st, StackStateStore)
    assert st.get("awan-aws-us-east-1") is None and st.list() == []
    st.put("awan-aws-us-east-1", {"resources": {"a": 1}, "serial": 1})
    st.put("awan-aws-us-east-1", {"resources": {"a": 2}, "serial": 2})
    assert st.get("awan-aws-us-east-1") == {"resources": {"a": 2}, "serial": 2}
    assert st.list() == ["awan-aws-us-east-1"]
    with st.lock("awan-aws-us-east-1"):
        if db.dialect == "postgresql":   # another connection cannot take it
            with pytest.raises(StackBusy), st.lock("awan-aws-us-east-1", timeout_s=0.2):
                pass
    st.delete("awan-aws-us-east-1")
    assert st.get("awan-aws-us-east-1") is None and st.list() == []


def test_stack_state_writes_touch_the_state_alone(db):
    """The engine's state shares the stack's row with the loop's bookkeeping (spec, hash, status): a put or a
    delete of the state, written as one UPDATE of its column, leaves the rest as the loop wrote it."""
    st = DbStackStateStore(db)
    with db.session() as s:
        s.add(Stack(name="awan-gcp-us-central1", spec={"pools": ["p"] * 3}, spec_hash="h1", status="ok",
                    attempts=2))
    st.put("awan-gcp-us-central1", {"resources": {"a": 1}})
    st.put("awan-gcp-us-central1", {"resources": {"a": 2}})
    assert st.get("awan-gcp-us-central1") == {"resources": {"a": 2}}
    st.delete("awan-gcp-us-central1")
    with db.session() as s:
        row = s.get(Stack, "awan-gcp-us-central1")
        assert row is not None and row.state is None
        assert (row.spec, row.spec_hash, row.status, row.attempts) == ({"pools": ["p"] * 3}, "h1", "ok", 2)
    assert st.list() == []
    st.put("awan-gcp-us-central1", {"resources": {}})
    assert st.list() == ["awan-gcp-us-central1"]
