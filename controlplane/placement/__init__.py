"""Placement: pure functions of (workloads, fleet snapshot, policies) -> decisions with explanations."""

from controlplane.placement.cache import IndexCache
from controlplane.placement.engine import Placer, place, place_one
from controlplane.placement.results import Assignment, Decision, PlacementResult, placed_cost
from controlplane.placement.snapshot import FleetSnapshot

__all__ = ["Assignment", "Decision", "FleetSnapshot", "IndexCache", "PlacementResult", "Placer", "place", "place_one",
           "placed_cost"]
