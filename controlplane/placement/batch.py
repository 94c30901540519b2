"""Batch placement under contention: better than greedy in arrival order.

1. Order: priority first (higher first; a lower priority never takes capacity a higher one could use),
   then scarcity (fewer candidate groups first: they have fewer places to go), then size (larger gangs first,
   as in first-fit-decreasing bin packing), then name for determinism.
2. Greedy pass in that order with the scoring of placer.Placer.
3. Local improvement: each placed workload, lowest priority first, is lifted out and re-placed against the
   capacity now free; the move is kept only if its marginal $/hour drops. Then unplaced workloads are tried
   again, since moves may have freed the capacity they need. A workload that already pays its class's
   least possible price (``ClassCandidates.price_floor``) cannot drop and is not tried, nor, until a move
   has given capacity back, one whose choice nothing can have changed (``Placer.volatile``: with less
   capacity free than when it was placed, and its own given back, it would choose the same option; nothing
   else it reads can improve). A trial is made
   without its explanation, and only a move that is kept is made again with it (the same choice: the
   explanation only keeps more runners-up).

The objective being improved is ``placed_cost`` for the set of placed workloads (see results.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from controlplane.model.workload import GPUWorkload
from controlplane.placement.placer import Placer
from controlplane.placement.results import Decision, PlacementResult


def batch_order(placer: Placer, workloads: Sequence[GPUWorkload]) -> list[GPUWorkload]:
    def key(w: GPUWorkload) -> tuple[int, int, int, str]:
        cc = placer.index.lookup(w)     # by the class's plain-tuple key: no WorkloadClass made per workload
        return (-w.spec.priority, len(cc.groups), -w.total_gpus, w.name)
    return sorted(workloads, key=key)


def solve(placer: Placer, workloads: Sequence[GPUWorkload], improve: bool = True) -> PlacementResult:
    order = batch_order(placer, workloads)
    decisions: dict[str, Decision] = {}
    for w in order:
        decisions[w.name] = placer.place_one(w)
    if improve:
        moved = False
        for w in reversed(order):
            d = decisions[w.name]
            if not d.placed:
                continue
            old_cost = d.price_per_hour
            wc, old_opts = placer.chosen[w.name]
            if old_cost <= placer.index.candidates(wc).price_floor * wc.replicas + 1e-9:
                continue
            if not moved and w.name not in placer.volatile:
                continue
            placer.release(w.name)
            nd = placer.place_one(w, explain=False)
            if nd.placed and nd.price_per_hour < old_cost - 1e-9:
                placer.release(w.name)
                decisions[w.name] = placer.place_one(w)
                moved = True
                continue
            # keep the old placement: undo the trial and take the old rows back exactly
            if nd.placed:
                placer.release(w.name)
            for o in old_opts:
                placer.state.apply(o.takes, wc.team)
            placer.chosen[w.name] = (wc, old_opts)
        for w in order:
            if not moved and w.name not in placer.volatile:
                continue        # less capacity than when it was refused, and nothing else it reads improved
            if not decisions[w.name].placed and placer.place_one(w, explain=False).placed:
                placer.release(w.name)
                decisions[w.name] = placer.place_one(w)
    result = PlacementResult([decisions[w.name] for w in workloads])
    result.commitments = placer.state.burn_down()
    result.provider_gpus = dict(sorted(placer.state.provider_gpus.items()))
    return result
