"""``Placer``: the stateful core of the engine (engine.py has the module-level entry points).

It holds the capacity still free while decisions are made, so a stream of decisions (the bench, the
service) costs no snapshot copies. See engine.py for the objective and for what is worked out once per index.
"""

from __future__ import annotations

from bisect import bisect
from collections.abc import Callable, Sequence
from types import MappingProxyType

from controlplane.model.workload import GPUWorkload, WorkloadKind
from controlplane.placement.cache import IndexCache, index_for
from controlplane.placement.candidates import SnapshotIndex
from controlplane.placement.explain import (
    describe_option,
    placed_rejections,
    placed_rule_counts,
    runner_up,
    unplaced_reasons,
    unplaced_rule_counts,
)
from controlplane.placement.gangs import caps_failure, fill_plain, pack, share_after, shortfall
from controlplane.placement.results import Assignment, Decision, Explanation, RuleSummary
from controlplane.placement.scoring import option_score
from controlplane.placement.snapshot import FleetSnapshot
from controlplane.placement.state import FleetState
from controlplane.placement.views import (
    ClassCandidates,
    Failure,
    Group,
    Option,
    PoolView,
    Rank,
    Take,
    WorkloadClass,
)
from controlplane.policy.model import PolicySet
from providers.catalog.fabric import ultraserver_type

_KIND_RANK = MappingProxyType({"budget": 4, "cap": 3, "no-quota": 2, "no-capacity": 1})


class Placer:
    def __init__(self, snapshot: FleetSnapshot, policies: PolicySet, existing: Sequence[Assignment] = (),
                 cache: IndexCache | None = None) -> None:
        # the index comes from the caller's cache when it keeps one (cache.py): nothing here outlives the caller
        self.index: SnapshotIndex = index_for(snapshot, policies, cache)
        self.policies = policies
        self.state = FleetState(self.index, existing)
        self.chosen: dict[str, tuple[WorkloadClass, list[Option]]] = {}
        # Workloads whose choice may change when others take capacity: a provider share cap refused one of
        # their options (the cap relaxes as the fleet grows), or a max skew narrowed their providers (the
        # skew's minimum moves when a provider fills). Any other placed workload would choose the same again
        # unless capacity was given back meanwhile (batch.py skips re-placing it).
        self.volatile: set[str] = set()
        self._capped = False

    # -- one decision --------------------------------------------------------------------------------
    def _choose(self, wc: WorkloadClass, cc: ClassCandidates, used: dict[str, set[str]], keep: int,
                spreads: bool, only: set[str] | None = None) -> tuple[list[Option], dict[str, Failure], int]:
        """Options best first (at most ``keep``), failures per provider/region, groups looked at.

        Groups come best upper bound first; the search stops once ``keep`` options are in hand and no
        unseen group can beat the last. The list holds the ``keep`` best by ``_rank`` (ranks are unique: one
        group per provider, region and type), kept sorted as options arrive; an option that cannot enter it
        is dropped before its rows are built."""
        opts: list[Option] = []
        ranks: list[Rank] = []
        fails: dict[str, Failure] = {}
        seen = 0
        ps, state, loc, ref = self.policies, self.state, cc.locality, cc.ref_price_per_gpu_hour
        free, budget, cap = state.free, cc.budget, ps.provider_share
        rank: Rank | None
        got: Option | Failure | None
        for g in cc.groups:
            if len(opts) >= keep and g.upper_bound < opts[-1].score - 1e-12:
                break
            if only is not None and g.provider not in only:
                continue        # max skew: this provider already holds its share of the replicas
            seen += 1
            if g.plan is not None:
                # fixed pool order, no quota: packing reads free nodes only (gangs.fill_plain)
                one: PoolView | None = None
                filled: list[tuple[PoolView, int]] | None = None
                if g.first_fit is not None:
                    for idx, low, pv in g.first_fit:
                        if free[idx] >= low:
                            one = pv
                            break
                else:
                    filled = fill_plain(g, free)
                    if filled is not None and len(filled) == 1 and filled[0][1] == g.need_nodes:
                        one = filled[0][0]
                if one is None and filled is None:
                    got = Failure("no-capacity", shortfall(g, wc, state, g.fixed_order or g.pools, quota=False))
                else:
                    if one is not None and not used:
                        # One pool, first replica: the option is a function of the pool alone, built once.
                        solo = g.solo.get(one.idx)
                        if solo is None:
                            o = self._plain_option(wc, cc, g, [(one, g.need_nodes)], used, spreads)
                            solo = g.solo[one.idx] = (o, _rank(o))
                        o, rank = solo
                    else:
                        if filled is None:
                            assert one is not None
                            filled = [(one, g.need_nodes)]
                        o = self._plain_option(wc, cc, g, filled, used, spreads)
                        rank = None
                    # caps_failure only when a budget or the cap may bite (it also words the failure)
                    if budget is not None or (cap is not None and not g.cap_exempt
                                              and share_after(cap, state, g.provider, o.gpus) > cap.max_share + 1e-9):
                        got = caps_failure(g.provider, o.gpus, o.listed, wc.team, state, ps, budget, g.cap_exempt)
                    else:
                        got = None
                    if got is None:
                        if rank is None:
                            rank = _rank(o)
                        if len(opts) >= keep and rank > ranks[-1]:
                            continue    # ranks below the kept options: would be dropped at once
                        got = o
            else:
                got = pack(g, wc, state, ps)
                if isinstance(got, Option):
                    got.score, got.term_values = option_score(
                        wc, ps, ref, loc, [t.pv for t in got.takes], got.gpus, got.marginal, got.listed,
                        used, spreads)
                    got.spreads = spreads
                    rank = _rank(got)
            if isinstance(got, Failure):
                if got.kind == "cap":
                    self._capped = True
                old = fails.get(g.key)
                if old is None or _KIND_RANK[got.kind] > _KIND_RANK[old.kind]:
                    fails[g.key] = got
                continue
            assert got is not None and rank is not None
            at = bisect(ranks, rank)
            ranks.insert(at, rank)
            opts.insert(at, got)
            if len(opts) > keep:
                del opts[keep:], ranks[keep:]
        return opts, fails, seen

    def _within_skew(self, cc: ClassCandidates, per_provider: dict[str, int], max_skew: int) -> set[str]:
        """Providers where one more replica keeps ``count - min count <= max_skew`` (Kubernetes topology
        spread over providers). The minimum is over eligible providers: those with a group that has the free
        nodes for a replica now (a provider that cannot take one does not hold the others back)."""
        free = self.state.free
        eligible = {g.provider for g in cc.groups if sum(free[pv.idx] for pv in g.pools) >= g.need_nodes}
        if not eligible:
            return set()
        low = min(per_provider.get(p, 0) for p in eligible)
        return {p for p in eligible if per_provider.get(p, 0) + 1 - low <= max_skew}

    def _plain_option(self, wc: WorkloadClass, cc: ClassCandidates, g: Group, filled: list[tuple[PoolView, int]],
                      used: dict[str, set[str]], spreads: bool) -> Option:
        """pack()'s option for pools without commitments (marginal = listed; committed = reserved nodes),
        scored."""
        gpn = g.it.gpus
        if len(filled) == 1:
            pv, n = filled[0]
            gpus, listed, committed = n * gpn, n * pv.price, (n if pv.reserved else 0) * gpn
        else:
            gpus = sum(n for _, n in filled) * gpn
            listed = sum(n * pv.price for pv, n in filled)
            committed = sum(n for pv, n in filled if pv.reserved) * gpn
        # no commitment covers these pools, so nothing is saved: committed is 0 (reserved or not)
        score, terms = option_score(wc, self.policies, cc.ref_price_per_gpu_hour, cc.locality,
                                    [pv for pv, _ in filled], gpus, listed, listed, used, spreads)
        takes = [Take(pv, n, 0, "", n * pv.price, n * pv.price) for pv, n in filled]
        return Option(g, takes, gpus, listed, listed, committed, score, terms, spreads)

    def place_one(self, w: GPUWorkload, explain: bool = True) -> Decision:
        """Decide for one workload and keep its capacity taken (all replicas or nothing).

        With ``explain`` the decision keeps what its explanation is made of (the runners-up, the failure
        per provider/region, how far the search went); the text is built when first read (Decision)."""
        cc = self.index.lookup(w)
        wc = cc.wc
        assert wc is not None
        d = Decision(workload=w.name, placed=False, priority=wc.priority, asked_gpus=wc.count * wc.replicas)
        self._capped = False
        if not cc.groups:
            d.unplaced_kind = "nothing-matches"
            d.explain = lambda: Explanation(unplaced_reasons("nothing-matches", {}, cc.rejections, stages=cc.stages),
                                            [], dict(cc.rejections))
            if explain:
                d.summarize = lambda: (Explanation(unplaced_reasons("nothing-matches", {}, cc.rejections,
                                                                    stages=cc.stages)),
                                       unplaced_rule_counts(cc, {}))
            return d
        used: dict[str, set[str]] = {}
        chosen: list[Option] = []
        keep = 4 if explain else 1
        spreads = wc.replicas > 1 and wc.kind == WorkloadKind.INFERENCE.value     # wc.spreads
        first: tuple[list[Option], dict[str, Failure], int] | None = None
        skew = self.policies.spread_max_skew if spreads else None
        per_provider: dict[str, int] = {}
        for r in range(wc.replicas):
            only = self._within_skew(cc, per_provider, skew) if skew is not None and r else None
            if only is not None:
                self._capped = True
            opts, fails, seen = self._choose(wc, cc, used, keep, spreads, only)
            if only is not None and not opts:     # no option keeps within the skew: placed anyway
                opts, fails, seen = self._choose(wc, cc, used, keep, spreads)
            if not opts:
                for o in chosen:
                    self.state.revert(o.takes, wc.team)
                kind = max((f.kind for f in fails.values()), key=_KIND_RANK.__getitem__, default="no-capacity")
                d.unplaced_kind = kind
                d.explain = _unplaced_explainer(kind, fails, cc, r if wc.replicas > 1 else None, explain)
                if explain:
                    d.summarize = _unplaced_summary(kind, fails, cc, r if wc.replicas > 1 else None)
                if self._capped:
                    self.volatile.add(w.name)
                else:
                    self.volatile.discard(w.name)
                return d
            best = opts[0]
            self.state.apply(best.takes, wc.team)
            used.setdefault(best.group.provider, set()).add(best.group.region)
            per_provider[best.group.provider] = per_provider.get(best.group.provider, 0) + 1
            chosen.append(best)
            if r == 0:
                first = (opts, fails, seen)
        self.chosen[w.name] = (wc, chosen)
        if self._capped:
            self.volatile.add(w.name)
        else:
            self.volatile.discard(w.name)
        d.placed = True
        d.score = sum(o.score for o in chosen) / len(chosen)
        d.assignments = [
            Assignment(workload=w.name, provider=t.pv.pool.provider, region=t.pv.pool.region, zone=t.pv.pool.zone,
                       instance_type=t.pv.it.name, nodes=t.nodes, gpus=t.nodes * t.pv.it.gpus,
                       gpu_model=t.pv.it.gpu_model, capacity_type=t.pv.pool.capacity_type,
                       reservation=t.pv.pool.reservation_id, price_per_hour=t.marginal, replica_group=r,
                       commitment=t.commitment if t.covered else "", list_price_per_hour=t.listed, team=wc.team,
                       ultraserver_type=ultraserver_type(t.pv.it),
                       reservation_kind=t.pv.pool.reservation_kind)
            for r, o in enumerate(chosen) for t in o.takes]
        assert first is not None
        d.explain = _placed_explainer(wc, cc, chosen, first, explain)
        if explain:
            d.summarize = _placed_summary(wc, cc, chosen, first)
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


def _rank(o: Option) -> Rank:
    """Best first: score, then the cheaper, then fewer nodes (2 x H100 on one a3-highgpu-2g over two
    a3-highgpu-1g at the same price: the exact fit), then by name (deterministic)."""
    return (-o.score, o.marginal, o.group.need_nodes, *o.group.rank_tail)


def _placed_explainer(wc: WorkloadClass, cc: ClassCandidates, chosen: list[Option],
                      first: tuple[list[Option], dict[str, Failure], int], full: bool) -> Callable[[], Explanation]:
    def build() -> Explanation:
        why = _placed_reasons(wc, chosen, first, full)
        if full:
            opts, fails, seen = first
            why.rejections = placed_rejections(cc, opts[0], opts, fails, seen)
        return why
    return build


def _placed_summary(wc: WorkloadClass, cc: ClassCandidates, chosen: list[Option],
                    first: tuple[list[Option], dict[str, Failure], int]) -> Callable[[], RuleSummary]:
    """The explanation without the rejections map, and the rejections counted by rule (Decision.summarize)."""
    def build() -> RuleSummary:
        opts, fails, seen = first
        return _placed_reasons(wc, chosen, first, True), placed_rule_counts(cc, opts[0], opts, fails, seen)
    return build


def _placed_reasons(wc: WorkloadClass, chosen: list[Option], first: tuple[list[Option], dict[str, Failure], int],
                    full: bool) -> Explanation:
    """Reasons and (``full``) runners-up of a placed decision."""
    reasons = [describe_option(o, wc, r if len(chosen) > 1 else None) for r, o in enumerate(chosen)]
    surplus = sum(o.gpus for o in chosen) - wc.count * len(chosen)
    if surplus > 0:
        cost = sum(o.marginal * (o.gpus - wc.count) / o.gpus for o in chosen if o.gpus)
        reasons.append(f"surplus: {surplus} GPU(s) beyond the {wc.count * len(chosen)} asked, ${cost:,.2f}/h "
                       "(no exact fit won; policy surplusGpus: forbid refuses this)")
    if not full:
        return Explanation(reasons)
    return Explanation(reasons, [runner_up(o) for o in first[0][1:4]])


def _unplaced_summary(kind: str, fails: dict[str, Failure], cc: ClassCandidates, replica: int | None
                      ) -> Callable[[], RuleSummary]:
    """_unplaced_explainer's explanation without the rejections map, and that map counted by rule."""
    def build() -> RuleSummary:
        return (Explanation(unplaced_reasons(kind, fails, cc.rejections, replica=replica)),
                unplaced_rule_counts(cc, fails))
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
