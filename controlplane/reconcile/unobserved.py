"""Since when each region (or whole provider) the loop watches has gone without a list answer.

A scope whose list call fails is "unknown" for a pass (observing.py): its workloads are held as they are.
Held is right for one pass, not for ever: a Provisioning workload there could wait in Provisioning for good
while the region's health endpoint keeps answering OK (only a DOWN health probe evacuates). This remembers
since when each such place has been unobservable, so that

* a Provisioning workload there keeps its short-of-nodes clock and fails over at the same bound as one
  whose pools visibly stay short (observing.apply_observation);
* a Running one is held (its nodes were confirmed: moving it on a monitoring failure would pay twice and
  kill a healthy run), its message saying since when, and ``awan_unobserved_since_timestamp_seconds`` showing it;
* placement leaves such a place out once it has been unobservable for that bound (``past``): a workload
  placed there could not be confirmed either.

Keys are (provider, region) for a region and (provider, None) for a provider listed whole, as
fleet.scope_of reads a scope key. Kept in the store like the short-of-nodes clocks (controlplane/store/clocks,
kind "unobserved", keyed by the scope key): observation ``load``s them in the transaction it applies in and
writes back what changed, so a restarted controller, or another replica taking the lead, continues them (a
held workload's message keeps its "since", and a Provisioning one there still fails over at the bound). The
controller loads them again when it begins a term, for placement's ``past`` before its first observation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from controlplane.reconcile.fleet import Observation, scope_key, scope_of

if TYPE_CHECKING:
    from controlplane.placement.snapshot import FleetSnapshot

Place = tuple[str, str | None]   # (provider, region); region None: the provider listed whole


@dataclass(frozen=True)
class Since:
    at: float          # clock() when first seen unobservable: wall-clock seconds since the epoch
    wall: datetime     # the same moment as a UTC time: for people, the gauge and the store


def _at(at: float) -> Since:
    return Since(at, datetime.fromtimestamp(at, UTC))


@dataclass
class Unobserved:
    """``clock``: wall-clock seconds since the epoch, UTC (a test's own clock in tests): a start read back
    from the store by another process must mean the same moment there."""

    clock: Callable[[], float] = time.time
    _since: dict[Place, Since] = field(default_factory=dict)
    _why: dict[Place, str] = field(default_factory=dict)

    def load(self, since: Mapping[str, datetime]) -> None:
        """The clocks as the store has them (scope key -> start), replacing this process's; the last list
        errors (not stored: the next observation says them again) are kept for the places still there."""
        self._since = {scope_of(k): Since(v.timestamp(), v) for k, v in since.items()}
        self._why = {p: w for p, w in self._why.items() if p in self._since}

    def stored(self) -> dict[str, datetime]:
        """The clocks as the store keeps them."""
        return {label(p): s.wall for p, s in self._since.items()}

    def update(self, obs: Observation) -> set[Place]:
        """Start the clocks of the scopes whose list call failed; stop those ``obs`` covers again.
        Returns the places forgotten (answered again)."""
        for key, reason in obs.failed.items():
            p = scope_of(key)
            self._note(p)
            self._why[p] = reason
        answered = {scope_of(k)[0] for k in obs.observed}
        gone = {p for p in self._since
                if (p[1] is None and p[0] in answered) or (p[1] is not None and obs.covers(p[0], p[1]))}
        for p in gone:
            del self._since[p]
            self._why.pop(p, None)
        return gone

    def _note(self, p: Place) -> Since:
        got = self._since.get(p)
        if got is None:
            got = self._since[p] = _at(self.clock())
        return got

    def of(self, provider: str, region: str) -> tuple[Place, Since]:
        """Since when ``provider``'s ``region`` (which ``obs`` did not cover) has been unobservable: its
        provider's clock if the provider is listed whole, else the region's (started now if it had not: a
        scope with no recent answer at all, rather than a failed one)."""
        whole = (provider, None)
        if whole in self._since:
            return whole, self._since[whole]
        return (provider, region), self._note((provider, region))

    def seconds(self, since: Since) -> float:
        return max(0.0, self.clock() - since.at)

    def why(self, p: Place) -> str:
        """The last list error of ``p``, or that no answer came at all."""
        return self._why.get(p, "no recent answer")

    def past(self, bound_s: float) -> set[Place]:
        """The places unobservable for at least ``bound_s``."""
        now = self.clock()
        return {p for p, s in self._since.items() if now - s.at >= bound_s}

    def since(self) -> dict[Place, Since]:
        return dict(self._since)


def label(p: Place) -> str:
    return scope_key(p[0], p[1])


def describe(places: Iterable[Place]) -> str:
    return ", ".join(sorted(label(p) for p in set(places)))


def leave_out(snap: FleetSnapshot, places: Iterable[Place]) -> FleetSnapshot:
    """``snap`` with every pool in ``places`` blocked (a provider's, for a provider listed whole): nodes made
    there could not be confirmed, so a workload placed there would only wait out the bound again."""
    from controlplane.placement.snapshot import pool_key

    where = set(places)
    if not where:
        return snap
    keys = [pool_key(p) for p in snap.pools if (p.provider, None) in where or (p.provider, p.region) in where]
    return snap.with_blocked(keys) if keys else snap
