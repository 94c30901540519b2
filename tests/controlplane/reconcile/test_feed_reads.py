"""The change feed keeps the rows it has read above its cursor and asks the store only for newer ids and the
gaps below the highest one read (feed.py). A row whose id is below one already read (a transaction that
committed after a later one: PostgreSQL hands ids out at insert) must still be handed out, however many
such gaps there are, and a row done or passed by the cursor never again."""

from __future__ import annotations

from datetime import timedelta

from controlplane.reconcile import feed as feed_mod
from controlplane.reconcile.feed import ChangeFeed
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import ChangeRecord


def _write(db: Database, *ids: int, age_s: float = 0.0) -> None:
    with db.session() as s:
        for i in ids:
            s.add(ChangeRecord(id=i, at=utcnow() - timedelta(seconds=age_s), kind="workload", ref=i, key=f"w{i}"))


def test_a_change_committed_below_the_highest_read_is_handed_out(db: Database) -> None:
    feed = ChangeFeed(db, settle_s=3600.0)
    _write(db, 1005, 1007)
    first = feed.poll()
    assert first.workloads == {1005, 1007}
    feed.advance(first)
    assert not feed.poll()
    _write(db, 1006)            # committed late, between two rows already read
    _write(db, 1003)            # and one below every row read, above the cursor
    _write(db, 1010)
    late = feed.poll()
    assert late.workloads == {1003, 1006, 1010}
    assert feed.poll().ids == late.ids      # not advanced: handed out again
    feed.advance(late)
    assert not feed.poll()


def test_past_the_gap_limit_everything_above_the_cursor_is_read(db: Database, monkeypatch) -> None:
    monkeypatch.setattr(feed_mod, "MAX_GAPS", 2)
    feed = ChangeFeed(db, settle_s=3600.0)
    _write(db, *range(2000, 2020, 2))        # nine gaps between them
    b = feed.poll()
    feed.advance(b)
    assert b.workloads == set(range(2000, 2020, 2))
    _write(db, 2001, 2017)
    b = feed.poll()
    assert b.workloads == {2001, 2017}
    feed.advance(b)
    assert not feed.poll()


def test_the_cursor_passes_settled_rows_and_never_hands_them_out_again(db: Database) -> None:
    feed = ChangeFeed(db, settle_s=60.0)
    _write(db, 3001, 3002, age_s=120.0)       # settled
    _write(db, 3004)                          # not yet: the cursor stops before it
    b = feed.poll()
    assert b.workloads == {3001, 3002, 3004} and b.upto == 3002
    feed.advance(b)
    assert feed.cursor == 3002
    assert not feed.poll()
    _write(db, 3003, age_s=120.0)             # a gap below the unsettled row, above the cursor
    b = feed.poll()
    assert b.workloads == {3003} and b.upto == 3003
    feed.advance(b)
    assert feed.cursor == 3003 and not feed.poll()
    feed.reset(0)                             # a resync: read afresh from a cursor
    assert feed.poll().workloads == {3001, 3002, 3003, 3004}
