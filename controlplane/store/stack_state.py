"""The infra StackStateStore protocol (get/put/delete/list of one JSON document per stack) on the DB, so
the local engine's state survives restarts and is shared by replicas."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from controlplane.store.db import Database
from controlplane.store.models import Stack
from infra.engines.base import StackBusy


class DbStackStateStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # Each call touches the state column alone: loading the row decoded its spec too (a 3,000-pool stack's is
    # as large as its state), and a write during a stack run decoded the whole old state only to replace it.
    def get(self, stack: str) -> dict[str, Any] | None:
        with self.db.session() as s:
            state = s.scalar(select(Stack.state).where(Stack.name == stack))
            return None if state is None else dict(state)

    def put(self, stack: str, state: dict[str, Any]) -> None:
        with self.db.session() as s:
            if not self._set(s, stack, state):
                s.add(Stack(name=stack, state=state))

    def delete(self, stack: str) -> None:
        # The row also holds the loop's bookkeeping for the stack; only the engine's state goes.
        with self.db.session() as s:
            self._set(s, stack, None)

    @staticmethod
    def _set(s: Session, stack: str, state: dict[str, Any] | None) -> bool:
        """One UPDATE (its row lock is the statement's own); False when the stack has no row yet."""
        res = s.execute(update(Stack).where(Stack.name == stack).values(state=state)
                        .execution_options(synchronize_session=False))
        return bool(res.rowcount)  # type: ignore[attr-defined]

    def list(self) -> list[str]:
        with self.db.session() as s:
            return list(s.scalars(select(Stack.name).where(Stack.state.is_not(None)).order_by(Stack.name)))

    def lock(self, stack: str, timeout_s: float = 30.0) -> contextlib.AbstractContextManager[None]:
        return _stack_lock(self.db, stack, timeout_s)


class _ProcessLocks:
    """Per-stack locks for SQLite, where one process is the leader and the only writer."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, stack: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(stack, threading.Lock())


_process_locks = _ProcessLocks()


@contextlib.contextmanager
def _stack_lock(db: Database, stack: str, timeout_s: float) -> Iterator[None]:
    deadline = time.monotonic() + timeout_s
    if db.dialect != "postgresql":
        lk = _process_locks.get(stack)
        if not lk.acquire(timeout=timeout_s):
            raise StackBusy(f"stack {stack}: another worker is running it")
        try:
            yield
        finally:
            lk.release()
        return
    # A session-level advisory lock on a connection held for the duration: released by PostgreSQL if
    # this process dies, so a killed replica never wedges a stack.
    with db.engine.connect() as conn:
        while not conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:n))"), {"n": stack}).scalar():
            conn.commit()
            if time.monotonic() >= deadline:
                raise StackBusy(f"stack {stack}: another replica is running it")
            time.sleep(0.05)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext(:n))"), {"n": stack})
            conn.commit()
