"""The placement engine: one core, two modes.

- ``place_one``: the controller's steady state, one workload against the snapshot;
- ``place``: a batch of pending workloads under contention (see batch.py for the order and the
  improvement pass).

``Placer`` is the stateful core both use: it holds the capacity still free while decisions are made, so a
stream of decisions (the bench, the service) costs no snapshot copies. The snapshot is the capacity truth:
``existing`` assignments count for caps, team budgets and commitment burn-down but are *not* subtracted
from capacity (a live report already excludes running nodes; use ``FleetSnapshot.with_usage`` for catalog
snapshots).

Objective of a decision: the highest score (placement/scoring.py); of a batch: place workloads in priority
order (a higher priority is never displaced by a lower one) and minimise the total marginal $/hour of what is
placed (``placed_cost``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from controlplane.model.workload import GPUWorkload
from controlplane.placement.candidates import ClassCandidates, SnapshotIndex, WorkloadClass, index_for
from controlplane.placement.explain import describe_option, runner_up, unplaced_reasons
from controlplane.placement.gangs import Failure, Option, pack
from controlplane.placement.results import Assignment, Decision, Explanation, PlacementResult
from controlplane.placement.scoring import option_score
from controlplane.placement.snapshot import FleetSnapshot
from controlplane.placement.state import FleetState
from controlplane.policy.model import PolicySet

_KIND_RANK = {"budget": 4, "cap": 3, "no-quota": 2, "no-capacity": 1}


class Placer:
    def __init__(self, snapshot: FleetSnapshot, policies: PolicySet, existing: Sequence[Assignment] = ()) -> None:
        self.index: SnapshotIndex = index_for(snapshot, policies)
        self.policies = policies
        self.state = FleetState(self.index, existing)
        self.chosen: dict[str, tuple[WorkloadClass, list[Option]]] = {}

    # -- one decision --------------------------------------------------------------------------------
    def _choose(self, wc: WorkloadClass, cc: ClassCandidates, used: dict[str, set[str]], keep: int
                ) -> tuple[list[Option], dict[str, Failure], int]:
        """Options best first (at most ``keep``), failures per provider/region, groups looked at."""
        opts: list[Option] = []
        fails: dict[str, Failure] = {}
        seen = 0
        ps, state, loc, ref = self.policies, self.state, cc.locality, cc.ref_price_per_gpu_hour
        for g in cc.groups:
            if len(opts) >= keep and g.upper_bound < opts[-1].score - 1e-12:
                break
            seen += 1
            got = pack(g, wc, state, ps)
            if isinstance(got, Failure):
                old = fails.get(g.key)
                if old is None or _KIND_RANK[got.kind] > _KIND_RANK[old.kind]:
                    fails[g.key] = got
                continue
            got.score, got.terms = option_score(wc, ps, ref, loc, got.takes, got.gpus,
                                                got.marginal, got.committed_gpus, used)
            opts.append(got)
            if len(opts) > 1:
                opts.sort(key=_rank)
                del opts[keep:]
        return opts, fails, seen

    def place_one(self, w: GPUWorkload, explain: bool = True) -> Decision:
        """Decide for one workload and keep its capacity taken (all replicas or nothing).

        With ``explain`` the decision keeps what its explanation is made of (the runners-up, the failure
        per provider/region, how far the search went); the text is built when first read (Decision)."""
        wc = WorkloadClass.of(w)
        cc = self.index.candidates(wc)
        d = Decision(workload=w.name, placed=False, priority=wc.priority)
        if not cc.groups:
            d.unplaced_kind = "nothing-matches"
            d.explain = lambda: Explanation(unplaced_reasons("nothing-matches", {}, cc.rejections), [],
                                            dict(cc.rejections))
            return d
        used: dict[str, set[str]] = {}
        chosen: list[Option] = []
        keep = 4 if explain else 1
        first: tuple[list[Option], dict[str, Failure], int] | None = None
        for r in range(wc.replicas):
            opts, fails, seen = self._choose(wc, cc, used, keep)
            if not opts:
                for o in chosen:
                    self.state.revert(o.takes, wc.team)
                kind = max((f.kind for f in fails.values()), key=_KIND_RANK.__getitem__, default="no-capacity")
                d.unplaced_kind = kind
                d.explain = _unplaced_explainer(kind, fails, cc, r if wc.replicas > 1 else None, explain)
                return d
            best = opts[0]
            self.state.apply(best.takes, wc.team)
            used.setdefault(best.group.provider, set()).add(best.group.region)
            chosen.append(best)
            if r == 0:
                first = (opts, fails, seen)
        self.chosen[w.name] = (wc, chosen)
        d.placed = True
        d.score = sum(o.score for o in chosen) / len(chosen)
        d.assignments = [
            Assignment(workload=w.name, provider=t.pv.pool.provider, region=t.pv.pool.region, zone=t.pv.pool.zone,
                       instance_type=t.pv.it.name, nodes=t.nodes, gpus=t.nodes * t.pv.it.gpus,
                       gpu_model=t.pv.it.gpu_model, capacity_type=t.pv.pool.capacity_type,
                       reservation=t.pv.pool.reservation_id, price_per_hour=t.marginal, replica_group=r,
                       commitment=t.commitment if t.covered else "", list_price_per_hour=t.listed, team=wc.team)
            for r, o in enumerate(chosen) for t in o.takes]
        assert first is not None
        d.explain = _placed_explainer(wc, cc, chosen, first, explain)
        return d

    def release(self, name: str) -> bool:
        """Give back the capacity of a workload this placer placed (for re-placement)."""
        got = self.chosen.pop(name, None)
        if got is None:
            return False
        wc, chosen = got
        for o in chosen:
            self.state.revert(o.takes, wc.team)
        return True


def _rank(o: Option) -> tuple:
    return (-o.score, o.marginal, o.group.provider, o.group.region, o.group.it.name)


def _placed_explainer(wc: WorkloadClass, cc: ClassCandidates, chosen: list[Option],
                      first: tuple[list[Option], dict[str, Failure], int], full: bool) -> Callable[[], Explanation]:
    def build() -> Explanation:
        reasons = [describe_option(o, wc, r if len(chosen) > 1 else None) for r, o in enumerate(chosen)]
        if not full:
            return Explanation(reasons)
        opts, fails, seen = first
        return Explanation(reasons, [runner_up(o) for o in opts[1:4]], _rejections(cc, opts[0], opts, fails, seen))
    return build


def _unplaced_explainer(kind: str, fails: dict[str, Failure], cc: ClassCandidates, replica: int | None,
                        full: bool) -> Callable[[], Explanation]:
    def build() -> Explanation:
        rejections: dict[str, str] = {}
        if full:
            rejections = dict(cc.rejections)
            rejections.update({k: f.message for k, f in fails.items()})
        return Explanation(unplaced_reasons(kind, fails, cc.rejections, replica=replica), [], rejections)
    return build


def _rejections(cc: ClassCandidates, best: Option, opts: list[Option], fails: dict[str, Failure],
                seen: int) -> dict[str, str]:
    out = dict(cc.rejections)
    win = best.group.key
    for k, f in fails.items():
        if k != win:
            out[k] = f.message
    for o in opts[1:]:
        if o.group.key != win and o.group.key not in out:
            out[o.group.key] = f"outscored: {o.score:.3f} < winner {best.score:.3f} ({win})"
    tail = f" < winner {best.score:.3f} ({win})"
    for g in cc.groups[seen:]:
        if g.key != win and g.key not in out:
            out[g.key] = f"outscored: at most {g.upper_bound:.3f}{tail}"
    return out


def place_one(workload: GPUWorkload, snapshot: FleetSnapshot, policies: PolicySet,
              existing: Sequence[Assignment] = (), explain: bool = True) -> Decision:
    return Placer(snapshot, policies, existing).place_one(workload, explain=explain)


def place(workloads: Sequence[GPUWorkload], snapshot: FleetSnapshot, policies: PolicySet,
          existing: Sequence[Assignment] = (), improve: bool = True) -> PlacementResult:
    from controlplane.placement.batch import solve
    return solve(Placer(snapshot, policies, existing), workloads, improve=improve)
