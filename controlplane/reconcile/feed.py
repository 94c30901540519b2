"""The change feed's read side: what was written since this reader's cursor, and a PostgreSQL listener that
wakes the loop when a transaction that wrote some commits.

Ids are handed out when a row is inserted, not when its transaction commits: on PostgreSQL a reader may see
change 11 before a slower transaction commits change 10. So the cursor only passes rows older than
``settle_s`` (a transaction that has not committed a change by then is treated as gone; the slow full resync
covers the rare one that still commits later); newer rows are read again each poll and told apart by id.
The cursor lives in memory and moves only when the caller says the work a poll asked for is done
(``advance``): a pass that dies half way reads the same changes again, and a new process starts with a full
resync, not with a cursor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, func, select

from controlplane.logs import get_logger
from controlplane.store.changes import CHANNEL
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import ChangeRecord

log = get_logger("awan.feed")
SETTLE_S = 30.0


@dataclass
class Batch:
    """What changed since the cursor: workload ids (``workloads``), keys of workloads written in bulk
    without an id (new, Pending), stacks and policies by name. ``upto``: the cursor once this is done."""

    workloads: set[int] = field(default_factory=set)
    bulk: set[str] = field(default_factory=set)
    stacks: set[str] = field(default_factory=set)
    policies: set[str] = field(default_factory=set)
    upto: int = 0
    ids: set[int] = field(default_factory=set)     # the change rows read (not yet past the cursor)

    def __bool__(self) -> bool:
        return bool(self.workloads or self.bulk or self.stacks or self.policies)


class ChangeFeed:
    def __init__(self, db: Database, settle_s: float = SETTLE_S) -> None:
        self.db, self.settle_s = db, settle_s
        self.cursor = 0
        self._seen: set[int] = set()     # ids above the cursor already handed out and done

    def head(self) -> int:
        """Where a reader that has just read everything afresh starts: past every change old enough to be
        settled (newer ones are read again; doing one twice is harmless, every consumer re-reads the row)."""
        with self.db.session() as s:
            return int(s.scalar(select(func.max(ChangeRecord.id))
                                .where(ChangeRecord.at < utcnow() - timedelta(seconds=self.settle_s))) or 0)

    def reset(self, cursor: int) -> None:
        self.cursor, self._seen = cursor, set()

    def poll(self) -> Batch:
        """The changes after the cursor not yet done (the cursor does not move)."""
        b = Batch(upto=self.cursor)
        settled = utcnow() - timedelta(seconds=self.settle_s)
        with self.db.session() as s:
            rows = s.execute(select(ChangeRecord.id, ChangeRecord.at, ChangeRecord.kind, ChangeRecord.ref,
                                    ChangeRecord.key).where(ChangeRecord.id > self.cursor)
                             .order_by(ChangeRecord.id)).all()
        contiguous = True
        for cid, at, kind, ref, key in rows:
            # The cursor may pass a row only if every row before it is settled too.
            contiguous = contiguous and at < settled
            if contiguous:
                b.upto = cid
            if cid in self._seen:
                continue
            b.ids.add(cid)
            if kind == "workload":
                if ref is not None:
                    b.workloads.add(int(ref))
                else:
                    b.bulk.add(key)
            elif kind == "stack":
                b.stacks.add(key)
            elif kind == "policy":
                b.policies.add(key)
        return b

    def advance(self, b: Batch) -> None:
        """``b``'s work is committed: never hand its changes out again."""
        self._seen |= b.ids
        if b.upto > self.cursor:
            self.cursor = b.upto
            self._seen = {i for i in self._seen if i > self.cursor}

    def prune(self, keep_s: float) -> int:
        """Delete changes older than ``keep_s`` (every reader has resynced since: a longer interval)."""
        with self.db.session() as s:
            res = s.execute(delete(ChangeRecord).where(ChangeRecord.at < utcnow() - timedelta(seconds=keep_s))
                            .execution_options(synchronize_session=False))
            return int(res.rowcount or 0)  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult


class Listener:
    """LISTEN on PostgreSQL in a thread of its own (one connection, outside the pool) and call ``wake`` on
    each notification. A lost connection is reopened; notifications lost meanwhile are covered by the
    loop's interval and its resync (the feed, not the notification, says what changed)."""

    def __init__(self, db: Database, wake: Callable[[], None], retry_s: float = 2.0) -> None:
        self.db, self.wake, self.retry_s = db, wake, retry_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.notified = 0

    def start(self) -> None:
        if self.db.dialect != "postgresql" or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="awan-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psycopg

        url = self.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    row = conn.execute("SELECT current_schema()").fetchone()
                    mine = row[0] if row else None
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=1.0):
                            if n.payload and n.payload != mine:
                                continue   # another installation's schema in the same database
                            self.notified += 1
                            self.wake()
            except Exception as e:   # reconnect; the loop's interval and resync cover the gap
                log.warning("change listener lost its connection", error=str(e))
                self._stop.wait(self.retry_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
