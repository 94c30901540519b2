"""The list queries' plans on SQLite and PostgreSQL (migration 0006_api_indexes): a team's page in id order,
after a cursor, is an index range scan with no sort of the team's rows; the audit streams likewise."""

from __future__ import annotations

from alembic import command
from sqlalchemy import insert, text

from controlplane.store import audit
from controlplane.store import workloads as repo
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.migrate import alembic_config, current, head
from controlplane.store.models import AuditEvent, Workload
from tests.controlplane.store.plans import plans


def _fill(db: Database, n: int = 3000) -> None:
    now = utcnow()
    with db.session() as s:
        s.execute(insert(Workload), [
            {"name": f"w{i}", "team": f"t{i % 30}", "spec": {}, "state": "Pending", "created_at": now,
             "updated_at": now} for i in range(n)])
        s.execute(insert(AuditEvent), [
            {"actor": "a", "action": "submitted", "kind": "workload", "subject": f"w{i % 50}", "team": f"t{i % 30}",
             "details": {}, "at": now} for i in range(n)])
    with db.engine.begin() as c:
        c.execute(text("ANALYZE"))


def _plans(db: Database, run) -> list[str]:  # type: ignore[no-untyped-def]
    return plans(db, run)


def _ranged(plan: str, dialect: str) -> bool:
    """No scan of the whole table (SQLite: nor a sort of the matching rows; PostgreSQL's planner may still
    sort a handful of rows it found through an index, which costs nothing)."""
    if dialect == "sqlite":
        return "TEMP B-TREE" not in plan and not any(line.startswith("SCAN") for line in plan.splitlines())
    return "Seq Scan" not in plan


def _uses(db: Database, plan: str, index: str) -> bool:
    """SQLite must use the index; PostgreSQL's planner may prefer another range scan (the primary key) on
    a table this small, which ``_ranged`` already holds to no sort and no full scan."""
    return index in plan if db.dialect == "sqlite" else True


def test_team_pages_and_audit_streams_are_range_scans_without_sorting(db):
    _fill(db)
    [page] = _plans(db, lambda s: repo.list_(s, team="t1", limit=20, after_id=1500))
    assert _ranged(page, db.dialect) and _uses(db, page, "ix_workloads_team_id"), page
    [total] = _plans(db, lambda s: repo.count(s, team="t1"))
    assert _ranged(total, db.dialect) and _uses(db, total, "ix_workloads_team_state"), total
    [team_stream] = _plans(db, lambda s: audit.events(s, team="t2", after_id=1000, limit=20))
    assert _ranged(team_stream, db.dialect) and _uses(db, team_stream, "ix_audit_events_team_id"), team_stream
    [subject] = _plans(db, lambda s: audit.events(s, kind="workload", subject="w7", team="t7", limit=20))
    assert _ranged(subject, db.dialect) and _uses(db, subject, "ix_audit_subject_id"), subject


def test_migration_0006_downgrades_and_upgrades(db):
    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0003_tokens")
    assert current(db.engine) == "0003_tokens"
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    assert current(db.engine) == head()
