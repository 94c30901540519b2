"""``placed_of``: the Placed rows among workloads named by (team, key), what a stack run that applied marks
Provisioning. By (team, name) where the key is ``team_name``; a key shortened to a digest (team and name
together past 63 characters) is still found; rows of other states, other teams and other names are not."""

from __future__ import annotations

from controlplane.model.identity import workload_key
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.models import WorkloadState
from tests.controlplane.reconcile.harness import submit

LONG = "a-very-long-workload-name-that-with-its-team-is-past-the-limit"


def _set(db: Database, team: str, name: str, state: str) -> str:
    with db.session() as s:
        row = repo.get(s, name, team=team)
        assert row is not None
        row.state = state
        return row.key


def test_placed_rows_of_the_keys_given_and_no_other(db: Database) -> None:
    for team, name in [("research", "a"), ("research", "b"), ("research", "c"), ("beta", "a"),
                       ("research", LONG), ("research", "d")]:
        submit(db, name, team=team)
    keys = {(t, n): _set(db, t, n, WorkloadState.PLACED.value)
            for t, n in [("research", "a"), ("research", "b"), ("beta", "a"), ("research", LONG), ("research", "d")]}
    _set(db, "research", "b", WorkloadState.RUNNING.value)         # no longer Placed
    assert keys["research", LONG] == workload_key("research", LONG) != f"research_{LONG}"   # a digest
    with db.session() as s:
        got = repo.placed_of(s, [("research", keys["research", "a"]), ("research", keys["research", "b"]),
                                 ("research", workload_key("research", "c")),            # Pending
                                 ("research", keys["research", LONG])])
        assert [(w.team, w.name) for w in got] == [("research", "a"), ("research", LONG)]
        assert repo.placed_of(s, []) == []
