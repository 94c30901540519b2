"""Engine and session creation: SQLite (a file with WAL) by default, PostgreSQL with bounded pools."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool


def _sqlite_pragmas(busy_timeout_s: float):  # type: ignore[no-untyped-def]
    def on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        # WAL lets API readers proceed while the loop writes; busy_timeout waits for the writer lock.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()
    return on_connect


def _sqlite_engine(url: str, busy_timeout_s: float, **kw: Any) -> Engine:
    u = make_url(url)
    if u.database and u.database != ":memory:":
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    eng = create_engine(u, connect_args={"check_same_thread": False, "timeout": busy_timeout_s}, **kw)
    event.listen(eng, "connect", _sqlite_pragmas(busy_timeout_s))
    return eng


def make_engine(url: str, pool_size: int = 5, max_overflow: int = 5, pool_timeout: float = 10.0,
                busy_timeout_s: float = 10.0) -> Engine:
    """``busy_timeout_s`` (SQLite): how long a write waits for the database-wide writer lock."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout_s)
    # Bounded pool, pre-ping so a restarted PostgreSQL does not surface as errors on stale connections.
    return create_engine(u, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout,
                         pool_pre_ping=True, pool_recycle=1800)


class Database:
    """One engine and its session factory; ``session()`` is a unit of work (commit or roll back)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._factory = sessionmaker(engine, expire_on_commit=False)
        from controlplane.store import changes

        changes.install(self._factory)   # every write of a workload, stack or policy goes into the change feed

    @classmethod
    def from_url(cls, url: str, **pool: float) -> Database:
        return cls(make_engine(url, **pool))  # type: ignore[arg-type]

    def dedicated(self, connections: int = 1, busy_timeout_s: float = 10.0) -> Database:
        """A second, small engine on the same store, for work that must not queue behind the API's
        requests for a pooled connection (the leader lease's renewal). Dispose of it when done."""
        url = self.engine.url.render_as_string(hide_password=False)
        if self.dialect == "sqlite":   # a fresh connection each time: nothing to queue for
            return Database(_sqlite_engine(url, busy_timeout_s, poolclass=NullPool))
        return Database(make_engine(url, pool_size=connections, max_overflow=0, pool_timeout=busy_timeout_s))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        s = self._factory()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def dispose(self) -> None:
        self.engine.dispose()
