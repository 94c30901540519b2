"""The reconcile loop's clocks in the store (controlplane/store/clocks, migration 0014_reconcile_clocks): written
as the difference of two reads' worth (started clocks inserted, stopped ones deleted, nothing else), an earlier
start kept against a late insert of the same clock, and the migration down and up again on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import inspect

from controlplane.store import clocks
from controlplane.store.db import Database
from controlplane.store.migrate import alembic_config, current, head

T0 = datetime(2026, 12, 1, 2, 0, 0, 123456, tzinfo=UTC)


def _read(db: Database) -> dict[str, dict[str, datetime]]:
    with db.session() as s:
        return clocks.read(s)


def _write(db: Database, kind: str, after: dict[str, datetime]) -> None:
    with db.session() as s:
        clocks.write(s, kind, clocks.read(s)[kind], after)


def test_clocks_start_and_stop_by_kind(db: Database) -> None:
    assert _read(db) == {clocks.SHORT: {}, clocks.UNOBSERVED: {}}
    _write(db, clocks.SHORT, {"t_a": T0, "t_b": T0 + timedelta(seconds=1)})
    _write(db, clocks.UNOBSERVED, {"gcp/europe-west4": T0, "lambda": T0})
    assert _read(db) == {clocks.SHORT: {"t_a": T0, "t_b": T0 + timedelta(seconds=1)},
                         clocks.UNOBSERVED: {"gcp/europe-west4": T0, "lambda": T0}}   # to the microsecond, UTC
    _write(db, clocks.SHORT, {"t_b": T0 + timedelta(seconds=1), "t_c": T0 + timedelta(seconds=2)})
    got = _read(db)
    assert got[clocks.SHORT] == {"t_b": T0 + timedelta(seconds=1), "t_c": T0 + timedelta(seconds=2)}
    assert got[clocks.UNOBSERVED] == {"gcp/europe-west4": T0, "lambda": T0}   # the other kind untouched
    _write(db, clocks.UNOBSERVED, {})
    assert _read(db)[clocks.UNOBSERVED] == {}


def test_a_clock_inserted_meanwhile_keeps_its_earlier_start(db: Database) -> None:
    with db.session() as s:
        before = clocks.read(s)[clocks.SHORT]   # read before the other writer's insert commits
    _write(db, clocks.SHORT, {"t_a": T0})
    with db.session() as s:
        clocks.write(s, clocks.SHORT, before, {"t_a": T0 + timedelta(seconds=30)})   # no error, no overwrite
    assert _read(db)[clocks.SHORT] == {"t_a": T0}


def test_many_clocks_are_written_in_chunks(db: Database) -> None:
    many = {f"t_{i}": T0 + timedelta(seconds=i) for i in range(1234)}
    _write(db, clocks.SHORT, many)
    assert _read(db)[clocks.SHORT] == many
    _write(db, clocks.SHORT, {"t_7": many["t_7"]})
    assert _read(db)[clocks.SHORT] == {"t_7": many["t_7"]}


def test_migration_0014_downgrades_and_upgrades(db: Database) -> None:
    def tables() -> set[str]:
        return set(inspect(db.engine).get_table_names())

    assert "reconcile_clocks" in tables() and current(db.engine) == head()
    _write(db, clocks.SHORT, {"t_a": T0})
    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0013_list_indexes")
    assert current(db.engine) == "0013_list_indexes" and "reconcile_clocks" not in tables()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    assert current(db.engine) == head() and "reconcile_clocks" in tables()
    assert _read(db) == {clocks.SHORT: {}, clocks.UNOBSERVED: {}}   # a downgrade forgets them: they start again
