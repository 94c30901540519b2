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

Speed (issue 3 asks for >= 10,000 single-node decisions per second on one core, explanation included): what
does not change while placing is worked out once per index (candidates.py: class candidates found by a
plain-tuple key, each group's packing plan) and what repeats is kept with it: a group's one-pool option as a
first replica scores it (``Group.solo``), the class-wide part of a placed decision's rejections
(explain.RejectionTails), CEL results per the fields a rule reads (celkeys.py). All of it is a function of the
index's snapshot structure and policies only, so it lives and dies with the index (tests:
test_placement_caches.py runs a warm engine beside a cold one on the general packing path). The package keeps
no index between calls: a caller that places repeatedly holds an ``IndexCache`` (cache.py) and passes it.

Modules, each importing only those before it (test_placement_imports.py checks there is no cycle): views
(the shared data), results, snapshot, celkeys; rules; scoring; candidates (the index); cache; state; gangs
(packing); explain; placer; batch; engine (this front).
"""

from __future__ import annotations

from collections.abc import Sequence

from controlplane.model.workload import GPUWorkload
from controlplane.placement.batch import solve
from controlplane.placement.cache import IndexCache
from controlplane.placement.placer import Placer
from controlplane.placement.results import Assignment, Decision, PlacementResult
from controlplane.placement.snapshot import FleetSnapshot
from controlplane.policy.model import PolicySet

__all__ = ["IndexCache", "Placer", "place", "place_one"]


def place_one(workload: GPUWorkload, snapshot: FleetSnapshot, policies: PolicySet,
              existing: Sequence[Assignment] = (), explain: bool = True, cache: IndexCache | None = None) -> Decision:
    return Placer(snapshot, policies, existing, cache=cache).place_one(workload, explain=explain)


def place(workloads: Sequence[GPUWorkload], snapshot: FleetSnapshot, policies: PolicySet,
          existing: Sequence[Assignment] = (), improve: bool = True, cache: IndexCache | None = None
          ) -> PlacementResult:
    return solve(Placer(snapshot, policies, existing, cache=cache), workloads, improve=improve)
