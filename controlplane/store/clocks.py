"""The clocks the reconcile loop keeps over passes (table ``reconcile_clocks``): since when each Provisioning
workload has been short of nodes (``SHORT``, failover.ShortWatch) and each place has had no list answer
(``UNOBSERVED``, reconcile/unobserved.py).

They were kept in memory, so a restarted controller (or another replica taking the lead) started them again:
a workload stuck in a place that cannot be listed waited a whole bound more per restart, and a crash loop
held it for ever. Observation reads them at the start of the transaction it applies in and writes back
only what changed (clocks started, clocks ended) in the same transaction, after the same leader fence as its
other writes: one small read a pass, and a write only when a condition begins or ends.

A start is a wall-clock UTC time: a monotonic clock's readings mean nothing in another process. Replicas'
clocks may differ by a little (the leader lease allows for two seconds), which moves the bound by as much.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TypeVar

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from controlplane.store.models import ReconcileClock

SHORT = "short"              # key: a workload key
UNOBSERVED = "unobserved"    # key: a scope key (fleet.scope_key)
KINDS = (SHORT, UNOBSERVED)
T = TypeVar("T")
_CHUNK = 500                 # rows (or keys) a statement: well under SQLite's bound parameters


def read(s: Session) -> dict[str, dict[str, datetime]]:
    """kind -> key -> since, for every kind (empty when none runs)."""
    out: dict[str, dict[str, datetime]] = {k: {} for k in KINDS}
    for kind, key, since in s.execute(select(ReconcileClock.kind, ReconcileClock.key, ReconcileClock.since)):
        out.setdefault(kind, {})[key] = since
    return out


def write(s: Session, kind: str, before: Mapping[str, datetime], after: Mapping[str, datetime]) -> None:
    """Take ``kind``'s rows from ``before`` (what ``read`` gave in this transaction) to ``after``: clocks
    started are inserted, clocks stopped deleted. A running clock's start never moves, so nothing else is
    written. A row another writer inserted meanwhile is kept (the earlier start stands)."""
    gone = sorted(k for k in before if k not in after)
    new = [{"kind": kind, "key": k, "since": v} for k, v in sorted(after.items()) if k not in before]
    for keys in _chunks(gone):
        s.execute(delete(ReconcileClock).where(ReconcileClock.kind == kind, ReconcileClock.key.in_(keys))
                  .execution_options(synchronize_session=False))
    if new:
        ins = pg_insert(ReconcileClock) if s.get_bind().dialect.name == "postgresql" else sqlite_insert(ReconcileClock)
        for rows in _chunks(new):
            s.execute(ins.values(rows).on_conflict_do_nothing(index_elements=["kind", "key"]))


def _chunks(items: list[T]) -> Iterable[list[T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]
