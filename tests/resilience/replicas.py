"""Several ``awan serve`` replicas on one PostgreSQL database, SIGKILLed and restarted one at a time, and
the check the mocks' request logs allow: no two replicas changed one stack at the same time.

Used by tests/resilience/test_replicas_sigkill.py, test_replicas_report.py and by
``python -m tests.resilience.report --replicas 3 --sigkills 20``."""

from __future__ import annotations

import contextlib
import os
import random
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from controlplane.store import lease
from controlplane.store import work_leases as wl
from controlplane.store.db import Database
from mockclouds.launcher import MockClouds
from mockclouds.requestlog import Call
from tests.resilience import harness as h
from tests.resilience import identities

# Short leases so a SIGKILLed replica's stacks and leadership move within seconds, yet long enough that a
# replica starved of CPU for a few seconds (2 cores, many processes) keeps them: a leader that loses its
# lease before its first pass (probing five clouds) is done starts over, and the run stalls. Each replica
# runs two stacks at a time, so stacks are in the air at once on every replica.
REPLICA_ENV = {"AWAN_STACK_WORKERS": "2", "AWAN_PROVIDER_CONCURRENCY": "2", "AWAN_WORK_LEASE_TTL_S": "20",
               "AWAN_LEASE_TTL_S": "30", "AWAN_LEASE_RENEW_S": "3", "AWAN_RECONCILE_INTERVAL_S": "0.5",
               "AWAN_LOG_LEVEL": "INFO"}

# Three replicas importing at once on a loaded 2-core machine took over 180 s to answer /healthz (load 20).
READY_S = 900.0


# -- the database ------------------------------------------------------------------------------------------
@dataclass
class PgDatabase:
    """A database of its own (``awan_resil_<pid>_<hex>``) on the server of ``base``, dropped at the end;
    one schema in it per scenario."""

    base: str
    name: str = field(default_factory=lambda: f"awan_resil_{os.getpid()}_{uuid.uuid4().hex[:6]}")

    def _admin(self) -> str:
        return make_url(self.base).set(database="postgres").render_as_string(hide_password=False)

    def create(self) -> PgDatabase:
        eng = create_engine(self._admin(), isolation_level="AUTOCOMMIT")
        try:
            with eng.connect() as c:
                c.execute(text(f'CREATE DATABASE "{self.name}"'))
        finally:
            eng.dispose()
        return self

    def schema(self, schema: str) -> str:
        url = make_url(self.base).set(database=self.name)
        eng = create_engine(url)
        try:
            with eng.begin() as c:
                c.execute(text(f'CREATE SCHEMA "{schema}"'))
        finally:
            eng.dispose()
        return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)

    def drop(self) -> None:
        eng = create_engine(self._admin(), isolation_level="AUTOCOMMIT")
        try:
            with eng.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        finally:
            eng.dispose()

    def __enter__(self) -> PgDatabase:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.drop()


# -- the replicas ------------------------------------------------------------------------------------------
@dataclass
class GroupSpec:
    """Run a scenario on ``replicas`` replicas; a background thread SIGKILLs up to ``chaos`` of them."""

    kills: Kills
    replicas: int = 3
    chaos: int = 0


@dataclass
class Kills:
    """The SIGKILLs of one run: how many are left to spend, which replicas they hit, in what order."""

    left: int
    seed: int = 6
    done: list[str] = field(default_factory=list)     # "<replica> (<leader|stack lease holder|any>)"

    def __post_init__(self) -> None:
        self.rnd = random.Random(self.seed)
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


class ServiceGroup:
    """``replicas`` copies of ``awan serve`` on one database. Each calls the clouds under its own name,
    ``<replica>-i<incarnation>`` (a restart is a new caller in the request logs, so a call still in the air
    from the killed process is told apart from the restarted one's). ``chaos``: a thread that SIGKILLs a
    replica every few seconds while the group runs, up to that many times from ``kills``."""

    def __init__(self, clouds: MockClouds, db_url: str, workdir: Path, kills: Kills, replicas: int = 3,
                 env: dict[str, str] | None = None, chaos: int = 0, pace_s: tuple[float, float] = (20.0, 60.0)) -> None:
        self.clouds, self.db_url, self.workdir, self.kills = clouds, db_url, workdir, kills
        self.env = {**REPLICA_ENV, **(env or {})}
        self.names = [f"r{i}" for i in range(replicas)]
        self.incarnation = dict.fromkeys(self.names, 0)
        self.procs: dict[str, h.ServiceProc] = {}
        self.chaos, self.pace_s = chaos, pace_s
        self._calm = threading.Lock()      # held while the test itself talks to the API
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.chaos_error: BaseException | None = None

    def _proc(self, name: str) -> h.ServiceProc:
        self.incarnation[name] += 1
        caller = f"{name}-i{self.incarnation[name]}"
        config = identities.write_config(self.clouds, self.workdir / f"awan-{caller}.yaml", caller)
        port = self.procs[name].port if name in self.procs else h.free_port()   # the same URL after a restart
        return h.ServiceProc(self.db_url, config, self.workdir / f"{name}.log", replica=name, port=port,
                             env={**self.env, **identities.env(caller)})

    @property
    def url(self) -> str:
        """A replica that is up (any replica serves the API)."""
        for p in self.procs.values():
            if p.proc is not None and p.proc.poll() is None:
                return p.url
        raise RuntimeError("no replica is up")

    def start(self) -> ServiceGroup:
        try:
            for n in self.names:
                self.procs[n] = self._proc(n).start(wait=False)
            for p in self.procs.values():
                p.wait_ready(READY_S)
        except BaseException:
            for p in self.procs.values():      # none may outlive the test (and its dropped schema)
                p.stop()
            raise
        if self.chaos:
            self._thread = threading.Thread(target=self._chaos, name="replica-chaos", daemon=True)
            self._thread.start()
        return self

    @contextlib.contextmanager
    def calm(self) -> Iterator[None]:
        """No SIGKILL while the test talks to the API (a client would retry on another replica)."""
        with self._calm:
            yield

    def victim(self) -> tuple[str, str]:
        """The leader or a stack lease holder, chosen at random; any replica when neither is known."""
        db = Database.from_url(self.db_url)
        try:
            leader = (lease.holder(db, "reconciler") or ("", 0))[0]
            holders = sorted({hd for hd, _e in wl.held(db, wl.STACK).values()})
        finally:
            db.dispose()
        rnd = self.kills.rnd
        options = [(n, why) for n, why in ([(leader, "leader")] if leader else [])
                   + ([(rnd.choice(holders), "stack lease holder")] if holders else []) if n in self.procs]
        return rnd.choice(options) if options else (rnd.choice(self.names), "any")

    def sigkill_and_restart(self) -> ServiceGroup:
        """SIGKILL one replica (``victim``) and start it again, same replica id, same port."""
        name, why = self.victim()
        self.procs[name].kill()
        self.kills.done.append(f"{name} ({why})")
        self.procs[name] = self._proc(name).start(wait=False)
        self.procs[name].wait_ready(READY_S)
        return self

    def _chaos(self) -> None:
        rnd = random.Random(self.kills.rnd.random())
        try:
            for _ in range(self.chaos):
                if self._stop.wait(rnd.uniform(*self.pace_s)):
                    return
                with self._calm:
                    if self._stop.is_set() or not self.kills.take():
                        return
                    self.sigkill_and_restart()
        except BaseException as e:    # surfaced by stop(): a chaos thread must not fail silently
            self.chaos_error = e

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=300)
        for p in self.procs.values():
            p.stop()
        if self.chaos_error is not None:
            raise RuntimeError(f"the SIGKILL thread failed: {self.chaos_error!r}") from self.chaos_error


# -- the request logs --------------------------------------------------------------------------------------
def writes(clouds: MockClouds, cloud: str) -> list[Call]:
    ops = identities.WRITES[cloud]
    return [c for c in clouds.backend(cloud).requests.entries() if c.operation.startswith(ops)]


def overlapping(calls: list[Call]) -> list[tuple[Call, Call]]:
    """Calls in one region (one stack) by two different callers whose times intersect."""
    ordered = sorted(calls, key=lambda c: c.start)
    out = []
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            if b.start >= a.end:
                break
            if b.region == a.region and b.caller != a.caller:
                out.append((a, b))
    return out


@dataclass
class LogVerdict:
    writes: dict[str, int] = field(default_factory=dict)            # cloud -> stack-changing calls logged
    unnamed: dict[str, int] = field(default_factory=dict)           # cloud -> such calls of unknown caller
    overlaps: dict[str, list[tuple[Call, Call]]] = field(default_factory=dict)

    @property
    def overlap_count(self) -> int:
        return sum(len(v) for v in self.overlaps.values())


def check_logs(clouds: MockClouds) -> LogVerdict:
    v = LogVerdict()
    for cloud in clouds.servers:
        w = writes(clouds, cloud)
        v.writes[cloud] = len(w)
        v.unnamed[cloud] = sum(1 for c in w if not c.caller)
        v.overlaps[cloud] = overlapping([c for c in w if c.caller])
    return v
