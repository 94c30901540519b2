"""The controller's placement step with time in it: workloads without ``spec.schedule`` are placed as one
batch by the engine exactly as before; each scheduled one is then decided by ``timing.decide`` on what the
batch left free. A workload that should wait stays Pending with the reason ("waits 2d 4h for cr-... at $X,
saves $Y") and is placed on a later pass, once the capacity it waits for has started."""

from __future__ import annotations

from collections.abc import Sequence

from controlplane.model.workload import GPUWorkload
from controlplane.placement.cache import IndexCache
from controlplane.placement.engine import place
from controlplane.placement.results import Decision, Explanation, PlacementResult
from controlplane.placement.snapshot import FleetSnapshot
from controlplane.policy.model import PolicySet
from controlplane.timeline.timing import TimedDecision, WaitPolicy, decide

WAITING = "waiting"        # Decision.unplaced_kind of a workload that waits for later capacity


def _waiting(td: TimedDecision) -> Decision:
    reasons = list(td.reasons)
    return Decision(workload=td.workload, placed=False, unplaced_kind=WAITING if td.action == "wait"
                    else "no-capacity", explain=lambda: Explanation(reasons))


def timed_place(workloads: Sequence[GPUWorkload], snapshot: FleetSnapshot, policies: PolicySet,
                policy: WaitPolicy | None = None, cache: IndexCache | None = None) -> PlacementResult:
    """``cache``: the caller's (the controller's) index cache, kept between passes (placement/cache.py)."""
    now_batch = [w for w in workloads if w.spec.schedule is None]
    timed = [w for w in workloads if w.spec.schedule is not None]
    result = place(now_batch, snapshot, policies, cache=cache)
    if not timed:
        return result
    taken = list(result.assignments())
    for w in sorted(timed, key=lambda w: -w.spec.priority):
        td = decide(w, snapshot.with_usage(taken), policies, policy=policy, cache=cache)
        if td.action == "run-now" and td.decision is not None:
            d = td.decision
            reasons = list(td.reasons)
            base = d.explanation()
            d._explanation = Explanation(reasons + [r for r in base.reasons if r not in reasons],
                                         base.runners_up, base.rejections)
            taken += d.assignments
            result.decisions.append(d)
        else:
            result.decisions.append(_waiting(td))
    return result
