"""The index cache a caller owns: placement itself keeps nothing between calls.

A ``SnapshotIndex`` (candidates.py) is the costly part of placing against a snapshot: pool views, candidate
lists per workload class, CEL results. It depends on the snapshot's structure and the policies only, so a
caller that places again and again (the controller's loop, the bench's stream, a service) keeps one
``IndexCache`` and hands it to every ``Placer``/``place``/``place_one``: the same snapshot gets the same index,
and a snapshot that differs only in free capacity (a refresh) gets the last index rebased onto it. A caller
that passes no cache gets a fresh index: the same decisions, only slower.

Policy sets are matched by identity: they are immutable, and the loop reloads them only when a policy
document changes; comparing them field by field on every call would cost more than it saves.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.placement.candidates import SnapshotIndex, StructureKey, structure_key
from controlplane.placement.snapshot import FleetSnapshot
from controlplane.policy.model import PolicySet


@dataclass(slots=True)
class _Entry:
    policies: PolicySet
    key: StructureKey
    index: SnapshotIndex


class IndexCache:
    """The last index per policy set (at most ``size`` policy sets, least recently used dropped)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._entries: list[_Entry] = []      # most recently used last
        self.built = 0                        # indexes built from scratch (tests read it)
        self.rebased = 0                      # indexes rebased onto a refreshed snapshot

    def index(self, snapshot: FleetSnapshot, policies: PolicySet) -> SnapshotIndex:
        entries = self._entries
        for i, e in enumerate(entries):
            if e.policies is policies:
                if e.index.snapshot is snapshot:
                    entries.append(entries.pop(i))
                    return e.index
                if _same_structure(e.index.snapshot, snapshot):
                    e.index = e.index.rebased(snapshot)
                    self.rebased += 1
                    entries.append(entries.pop(i))
                    return e.index
                key = structure_key(snapshot, policies)
                if e.key == key:
                    e.index = e.index.rebased(snapshot)
                    self.rebased += 1
                else:
                    e.key, e.index = key, SnapshotIndex(snapshot, policies)
                    self.built += 1
                entries.append(entries.pop(i))
                return e.index
        entries.append(_Entry(policies, structure_key(snapshot, policies), SnapshotIndex(snapshot, policies)))
        self.built += 1
        if len(entries) > self.size:
            del entries[0]
        return entries[-1].index

    def clear(self) -> None:
        self._entries.clear()


def _same_structure(old: FleetSnapshot, new: FleetSnapshot) -> bool:
    """Whether ``new`` has ``old``'s structure key without computing it: the same structure object (a
    snapshot derived by ``with_usage`` shares its parent's) and the same moment (which commitments and
    pool terms are active depends on ``taken_at``, the rest of the key on the structure and the policies)."""
    got = old.__dict__.get("structure")
    return got is not None and new.__dict__.get("structure") is got and old.taken_at == new.taken_at


def index_for(snapshot: FleetSnapshot, policies: PolicySet, cache: IndexCache | None = None) -> SnapshotIndex:
    """The index of ``snapshot`` under ``policies``: from ``cache`` when the caller keeps one, else new."""
    if cache is None:
        return SnapshotIndex(snapshot, policies)
    return cache.index(snapshot, policies)
