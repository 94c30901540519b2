"""Edge-triggered passes: what each step of a pass must look at, from the change feed and the timers, so a
pass over a fleet where nothing changed reads the feed (one indexed query) and the stacks table, not every
workload.

- The index (informer.py) is moved by the feed; the stack plan is made from it every pass (its timers,
  backoffs and the stack resync, are level-checked there as before).
- Observation of the clouds stays periodic (a cloud cannot notify), every ``observe_s``. What it is
  compared with in the store is only the workloads whose nodes changed since the last observation, those
  the feed named since, those waiting on nodes (Placed, Provisioning: the short-watch bound is a timer) and
  those that were unsettled (holding nodes they should not): the rest are read from the store only when
  the set of clouds that answered changes, or at a full resync.
- Usage (the GPU step function) is recorded when a workload changed; deletions are finished when one is
  being deleted; dispatch runs when a workload has a template or something changed.
- Every ``resync_s`` a full pass re-lists everything and runs every step over every row: the safety net for
  a change the feed could not have said (a write outside the ORM, a transaction that committed late).

Work a change asks for is dropped from the pending sets only once the step that does it has committed; a
pass that dies half way leaves them for the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from controlplane.reconcile.feed import ChangeFeed
from controlplane.reconcile.fleet import Observation
from controlplane.reconcile.informer import WorkloadIndex
from controlplane.store.db import Database
from controlplane.store.models import WorkloadState
from providers.model import LABEL_STACK, TAG_STACK, Node

WAITING = (WorkloadState.PLACED.value, WorkloadState.PROVISIONING.value)
Fingerprint = frozenset[tuple[str, str, str, str, str, str, str]]


def fingerprints(obs: Observation) -> dict[str, Fingerprint]:
    """Per workload key, what observation can see of its nodes (state, pool, place, owning stack)."""
    acc: dict[str, set[tuple[str, str, str, str, str, str, str]]] = {}
    for n in obs.nodes:
        acc.setdefault(n.workload, set()).add(_print(n))
    return {k: frozenset(v) for k, v in acc.items()}


def _print(n: Node) -> tuple[str, str, str, str, str, str, str]:
    return (n.provider, n.id, str(n.state), n.pool, n.region, n.labels.get(TAG_STACK, ""),
            n.labels.get(LABEL_STACK, ""))


@dataclass
class PassStats:
    """What the last pass looked at (tests and the benchmark read it)."""

    full: bool = False
    refreshed: set[int] = field(default_factory=set)       # workload ids re-read from the store
    observed: set[int] | None = None                       # workload ids compared with the clouds (None: all)


class EdgeLoop:
    def __init__(self, db: Database, *, resync_s: float, observe_s: float,
                 config: dict[str, dict[str, str]] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db, self.resync_s, self.observe_s, self.clock = db, resync_s, observe_s, clock
        self.feed = ChangeFeed(db)
        self.index = WorkloadIndex(config)
        self.stats = PassStats()
        self._last_full: float | None = None
        self._last_obs: float | None = None
        self._prints: dict[str, Fingerprint] | None = None
        self._answered: frozenset[str] | None = None
        self._obs_pending: set[int] = set()
        self._unsettled: set[int] = set()
        self.usage_dirty = True
        self.runs_dirty = True
        self.full = False

    # -- the feed ------------------------------------------------------------------------------------
    def begin(self) -> None:
        """Start a pass: a full one (re-list everything) when the resync is due."""
        self.stats = PassStats()
        self.full = self._last_full is None or self.clock() - self._last_full >= self.resync_s
        if self.full:
            self._relist()
        self.stats.full = self.full
        self.sync()

    def force_resync(self) -> None:
        """The next pass is a full one (a new leader term, a test, the benchmark's peer)."""
        self._last_full = None

    def _relist(self) -> None:
        cursor = self.feed.head()   # read before the list: a change during it is read (again) after
        with self.db.session() as s:
            self.index.relist(s)
        self.feed.reset(cursor)
        self._prints = None          # the next observation compares every row
        self.usage_dirty = self.runs_dirty = True
        self._last_full = self.clock()

    def sync(self) -> None:
        """Bring the index up to what the feed says was written since its cursor."""
        b = self.feed.poll()
        if b.workloads:
            with self.db.session() as s:
                self.index.refresh(s, b.workloads)
            self.stats.refreshed |= b.workloads
        if b.workloads or b.bulk:
            self._obs_pending |= b.workloads
            self.usage_dirty = self.runs_dirty = True
        self.feed.advance(b)    # the index holds it now; each step's own pending set holds its work

    # -- observation ---------------------------------------------------------------------------------
    def observe_due(self) -> bool:
        return self.observe_s <= 0 or self._last_obs is None or self.clock() - self._last_obs >= self.observe_s

    def to_compare(self, obs: Observation) -> tuple[set[int] | None, dict[str, Fingerprint]]:
        """The workload ids this observation must be compared with (None: every one), and its fingerprints
        (handed back to ``observed`` once the comparison is committed)."""
        prints = fingerprints(obs)
        if self.full or self._prints is None or self._answered != frozenset(obs.observed):
            self.stats.observed = None
            return None, prints
        keys = {k for k in prints.keys() | self._prints.keys() if prints.get(k) != self._prints.get(k)}
        ids = {i for k in keys if (i := self.index.id_of(k)) is not None}
        ids |= self._obs_pending | self._unsettled | self.index.ids(WAITING)
        self.stats.observed = ids
        return ids, prints

    def observed(self, obs: Observation, prints: dict[str, Fingerprint], compared: set[int] | None,
                 unsettled: set[str]) -> None:
        """The comparison is committed: remember what was seen, drop the work it did."""
        self._prints, self._answered, self._last_obs = prints, frozenset(obs.observed), self.clock()
        if compared is None:
            self._obs_pending.clear()
            self._unsettled = set()
        else:
            self._obs_pending -= compared
            self._unsettled -= compared
        self._unsettled |= {i for k in unsettled if (i := self.index.id_of(k)) is not None}

    def deletions_due(self) -> bool:
        return self.full or self.index.any_in((WorkloadState.DELETING.value,))

    def runs_due(self) -> bool:
        return self.full or self.runs_dirty or self.index.any_run()
