"""What changes while placing: free nodes, quota left, GPUs per provider and team, commitment burn-down.

Mutable, owned by one Placer; ``apply``/``revert`` make a workload's rows all-or-nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from controlplane.placement.candidates import SnapshotIndex
from controlplane.placement.results import Assignment
from controlplane.placement.views import PoolView, Take


class FleetState:
    def __init__(self, index: SnapshotIndex, existing: Iterable[Assignment] = ()) -> None:
        snap, ps = index.snapshot, index.policies
        self.index = index
        self.free = [p.available_nodes for p in snap.pools]
        self.quota_left = [q.headroom for q in snap.quotas]
        self.provider_gpus: dict[str, int] = {}
        self.total_gpus = 0
        self.team_gpus: dict[str, int] = {}
        self.team_dollars: dict[str, float] = {}
        self.commit_left: dict[str, float] = {}          # GPUs (or $/hour) not yet used, per contract
        self.commit_size: dict[str, float] = {}
        self.commit_unit: dict[str, str] = {}
        for c in ps.commitments:
            size = float(c.gpus) if c.gpus is not None else float(c.dollars_per_hour or 0.0)
            self.commit_left[c.name] = self.commit_size[c.name] = size
            self.commit_unit[c.name] = "gpus" if c.gpus is not None else "dollarsPerHour"
        for a in existing:
            self._count(a.provider, a.team, a.gpus, a.list_price_per_hour or a.price_per_hour, 1)
            if a.commitment in self.commit_left:
                use = a.gpus if self.commit_unit[a.commitment] == "gpus" else a.list_price_per_hour
                self.commit_left[a.commitment] -= use

    @staticmethod
    def quotas_of(pv: PoolView) -> tuple[tuple[int, float], ...]:
        """(quota idx, units per node) of the quotas a pool draws on (computed with the index)."""
        return pv.quotas

    def _count(self, provider: str, team: str, gpus: int, dollars: float, sign: int) -> None:
        self.provider_gpus[provider] = self.provider_gpus.get(provider, 0) + sign * gpus
        self.total_gpus += sign * gpus
        self.team_gpus[team] = self.team_gpus.get(team, 0) + sign * gpus
        self.team_dollars[team] = self.team_dollars.get(team, 0.0) + sign * dollars

    def apply(self, takes: list[Take], team: str, sign: int = 1) -> None:
        for t in takes:
            self.free[t.pv.idx] -= sign * t.nodes
            for qi, units in t.pv.quotas:
                self.quota_left[qi] -= sign * units * t.nodes
            if t.commitment:
                use = t.covered * t.pv.it.gpus if self.commit_unit[t.commitment] == "gpus" \
                    else t.covered * t.pv.price
                self.commit_left[t.commitment] -= sign * use
            self._count(t.pv.pool.provider, team, t.nodes * t.pv.it.gpus, t.listed, sign)

    def revert(self, takes: list[Take], team: str) -> None:
        self.apply(takes, team, sign=-1)

    def burn_down(self) -> dict[str, dict[str, float | str]]:
        return {name: {"unit": self.commit_unit[name], "committed": self.commit_size[name],
                       "used": round(self.commit_size[name] - left, 4),
                       "left": round(max(0.0, left), 4)}
                for name, left in sorted(self.commit_left.items())}
