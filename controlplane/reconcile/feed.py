"""The change feed's read side: what was written since this reader's cursor, and a PostgreSQL listener that
wakes the loop when a transaction that wrote some commits.

Ids are handed out when a row is inserted, not when its transaction commits: on PostgreSQL a reader may see
change 11 before a slower transaction commits change 10. So the cursor only passes rows older than
``settle_s`` (a transaction that has not committed a change by then is treated as gone; the slow full resync
covers the rare one that still commits later); newer rows are read again each poll and told apart by id.
The cursor lives in memory and moves only when the caller says the work a poll asked for is done
(``advance``): a pass that dies half way reads the same changes again, and a new process starts with a full
resync, not with a cursor.

The rows above the cursor are kept in memory once read (a change row is written once and never updated):
a poll asks the store only for the ids above the highest one read and for the gaps below it (ids handed out
to transactions not committed when last read). Without that every poll re-read every change of the last
``settle_s``: during a burst of 1,000 submissions/s, tens of thousands of rows per pass.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select

from controlplane.logs import get_logger
from controlplane.store.changes import CHANNEL
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import ChangeRecord

log = get_logger("awan.feed")
SETTLE_S = 30.0
MAX_GAPS = 32     # more ranges of ids missing below the highest read: read everything above the cursor


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
        # The change rows read above the cursor (id -> at, kind, ref, key), their ids in order, and those of
        # them not yet done (handed out again by every poll until ``advance`` says their work is committed).
        self._rows: dict[int, tuple[datetime, str, int | None, str]] = {}
        self._ids: list[int] = []
        self._todo: set[int] = set()

    def head(self) -> int:
        """Where a reader that has just read everything afresh starts: past every change old enough to be
        settled (newer ones are read again; doing one twice is harmless, every consumer re-reads the row)."""
        with self.db.session() as s:
            return int(s.scalar(select(func.max(ChangeRecord.id))
                                .where(ChangeRecord.at < utcnow() - timedelta(seconds=self.settle_s))) or 0)

    def reset(self, cursor: int) -> None:
        self.cursor = cursor
        self._rows, self._ids, self._todo = {}, [], set()

    def _gaps(self) -> list[tuple[int, int]] | None:
        """The ranges of ids between the cursor and the highest id read that no read has found (None: too
        many to ask for one by one)."""
        out: list[tuple[int, int]] = []
        last = self.cursor
        for i in self._ids:
            if i > last + 1:
                out.append((last + 1, i - 1))
                if len(out) > MAX_GAPS:
                    return None
            last = i
        return out

    def _read(self) -> None:
        """Read the change rows above the cursor not read yet into ``_rows``."""
        q = select(ChangeRecord.id, ChangeRecord.at, ChangeRecord.kind, ChangeRecord.ref, ChangeRecord.key)
        gaps = self._gaps() if self._ids else []
        if gaps is None:   # the rows already read are skipped below (a row never changes once written)
            q = q.where(ChangeRecord.id > self.cursor)
        else:
            top = self._ids[-1] if self._ids else self.cursor
            q = q.where(or_(ChangeRecord.id > top, *(and_(ChangeRecord.id >= lo, ChangeRecord.id <= hi)
                                                     for lo, hi in gaps)))
        with self.db.session() as s:
            rows = s.execute(q.order_by(ChangeRecord.id)).all()
        for cid, at, kind, ref, key in rows:
            if cid in self._rows or cid <= self.cursor:
                continue
            self._rows[cid] = (at, kind, ref, key)
            if not self._ids or cid > self._ids[-1]:
                self._ids.append(cid)
            else:   # a gap filled: a transaction that committed after a later one was read
                bisect.insort(self._ids, cid)
            self._todo.add(cid)

    def poll(self) -> Batch:
        """The changes after the cursor not yet done (the cursor does not move)."""
        b = Batch(upto=self.cursor)
        settled = utcnow() - timedelta(seconds=self.settle_s)
        self._read()
        # The cursor may pass a row only if every row before it is settled too.
        for cid in self._ids:
            if not self._rows[cid][0] < settled:
                break
            b.upto = cid
        for cid in sorted(self._todo):
            _, kind, ref, key = self._rows[cid]
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
        self._todo -= b.ids
        if b.upto > self.cursor:
            self.cursor = b.upto
            cut = bisect.bisect_right(self._ids, self.cursor)
            for cid in self._ids[:cut]:
                del self._rows[cid]
                self._todo.discard(cid)
            del self._ids[:cut]

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
