"""The workload list at scale (migration 0013_list_indexes): a page and its total, with or without a team and
a state filter, read an index range in id order (no scan of the table, no sort of the matching rows); the
total is exact up to a bound and estimated above it; keyset pages walk every row once while rows are added."""

from __future__ import annotations

from alembic import command
from sqlalchemy import insert, inspect, text

from controlplane.store import workloads as repo
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.migrate import alembic_config, current, head
from controlplane.store.models import Workload
from tests.controlplane.store.plans import plans

_STATES = ("Pending", "Running", "Succeeded", "Deleted", "Placed", "Failed")


def _fill(db: Database, n: int, start: int = 0) -> None:
    now = utcnow()
    with db.session() as s:
        s.execute(insert(Workload), [
            {"name": f"w{i}", "team": f"t{i % 20}", "spec": {}, "state": _STATES[(i // 20) % len(_STATES)],
             "created_at": now, "updated_at": now} for i in range(start, start + n)])


def _analyze(db: Database) -> None:
    with db.engine.begin() as c:
        c.execute(text("ANALYZE"))


def _plans(db: Database, run) -> list[str]:  # type: ignore[no-untyped-def]
    return plans(db, run, price_out_sorts=True)


def _no_scan_no_sort(plan: str, dialect: str, *, table_walk_ok: bool = False) -> bool:
    """SQLite: no SCAN of the table (unless ``table_walk_ok``: the primary key in order, stopped by the
    LIMIT) and no temporary B-tree (a sort of every matching row); PostgreSQL: no Seq Scan, no Sort."""
    if dialect == "sqlite":
        scans = [ln for ln in plan.splitlines() if ln.startswith("SCAN") and not ln.startswith("SCAN anon")]
        return "TEMP B-TREE" not in plan and (table_walk_ok or not scans)
    # Nor, when filtered, a walk of the primary key in id order that filters every row on the way.
    return "Seq Scan" not in plan and "Sort" not in plan and (table_walk_ok or "workloads_pkey" not in plan)


def _fill_sparse(db: Database, n: int = 12_000) -> None:
    """200 teams, and 1 row in 60 Running: filters that match few rows, so that a walk of the primary key
    filtering every row is no plan a planner would choose if an index served the filter (a filter that
    matches every other row is rightly read that way)."""
    now = utcnow()
    with db.session() as s:
        s.execute(insert(Workload), [
            {"name": f"w{i}", "team": f"t{i % 200}", "spec": {}, "created_at": now, "updated_at": now,
             "state": "Running" if (i // 200) % 60 == 1 else "Deleted" if (i // 200) % 10 == 3 else "Pending"}
            for i in range(n)])


def test_pages_and_totals_read_an_index_range_whatever_the_filters(db):
    _fill_sparse(db)
    _analyze(db)
    cases = {"team": dict(team="t3"), "team and state": dict(team="t3", states=["Running"]),
             "state": dict(states=["Running"]), "nothing": {}}
    for what, kw in cases.items():
        plans = _plans(db, lambda s, kw=kw: (repo.list_(s, limit=50, after_id=3000, light=True, **kw),
                                             repo.total(s, exact_up_to=100, **kw)))
        assert len(plans) >= 2, plans   # the page, the bounded count (and the last id when estimated)
        for plan in plans:
            assert _no_scan_no_sort(plan, db.dialect, table_walk_ok=what == "nothing"), (what, plan)


def test_total_is_exact_up_to_the_bound_and_estimated_above(db):
    _fill(db, 2400)
    with db.session() as s:
        exact = repo.total(s, team="t1", states=["Running"])
        assert exact == repo.Total(repo.count(s, team="t1", states=["Running"]), True) and exact.value == 20
        assert repo.total(s, team="t1", exact_up_to=100).exact is True     # 100 not Deleted, of 120
        big = repo.total(s, exact_up_to=100)
        true = repo.count(s)
        assert big.exact is False and big.value > 100 and abs(big.value - true) <= true * 0.1, (big, true)
        none = repo.total(s, team="nobody", exact_up_to=100)
        assert none == repo.Total(0, True)


def test_keyset_pages_walk_every_row_once_while_rows_are_added(db):
    _fill(db, 900)
    with db.session() as s:
        before = {w.name for w in repo.list_(s, team="t4", states=["Pending"], limit=10_000)}
    seen: list[str] = []
    after, added = 0, 900
    while True:
        with db.session() as s:
            page = repo.list_(s, team="t4", states=["Pending"], limit=7, after_id=after, light=True)
        seen += [w.name for w in page]
        if len(page) < 7:
            break
        after = page[-1].id
        if added < 1500:      # new rows between pages, some of them matching
            _fill(db, 60, start=added)
            added += 60
    assert len(seen) == len(set(seen)), "a row was listed twice"
    assert before <= set(seen), "a row stored before the first page was skipped"
    with db.session() as s:
        assert set(seen) == {w.name for w in repo.list_(s, team="t4", states=["Pending"], limit=10_000)}


def test_migration_0013_downgrades_and_upgrades(db):
    def indexes() -> set[str]:
        return {i["name"] for i in inspect(db.engine).get_indexes("workloads")}

    new = {"ix_workloads_team_id_state", "ix_workloads_state_id", "ix_workloads_team_state_id"}
    assert new <= indexes()
    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0012_change_feed")
    assert current(db.engine) == "0012_change_feed"
    got = indexes()
    assert not new & got and {"ix_workloads_team_id", "ix_workloads_team_state"} <= got
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    assert current(db.engine) == head() and new <= indexes()
