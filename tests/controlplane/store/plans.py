"""The query plans of what a piece of store code runs, for the plan tests (test_query_plans, test_list_scale)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from controlplane.store.db import Database


def plans(db: Database, run: Callable[[Session], Any], *, price_out_sorts: bool = False) -> list[str]:
    """The plan of every SELECT ``run(session)`` issues (the assignments' eager load left out).
    ``price_out_sorts``: on PostgreSQL, plan with sorts and sequential scans priced out. On a small table its
    planner may rightly prefer to sort a few hundred rows; priced out, a Sort or Seq Scan left in the plan
    means no index serves the query (what 100,000 rows would make it pay for)."""
    seen: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, stmt: str, params: Any, context: Any, many: bool) -> None:
        if stmt.lstrip().upper().startswith("SELECT") and "FROM assignments" not in stmt:
            seen.append((stmt, params))

    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        with db.session() as s:
            run(s)
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)
    out = []
    with db.engine.connect() as c:
        if price_out_sorts and db.dialect == "postgresql":
            c.exec_driver_sql("SET enable_sort = off")
            c.exec_driver_sql("SET enable_seqscan = off")
        for stmt, params in seen:
            prefix = "EXPLAIN QUERY PLAN " if db.dialect == "sqlite" else "EXPLAIN "
            rows = c.exec_driver_sql(prefix + stmt, params).all()
            out.append("\n".join(str(r[-1] if db.dialect == "sqlite" else r[0]) for r in rows))
        c.rollback()
    return out
