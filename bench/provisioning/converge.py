"""One size of the provisioning benchmark: N pools through the local engine (first up, no-op up, destroy),
and the same programs under Pulumi's mock runtime alone (the peer: registration without cloud calls)."""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from infra.engines.local import LocalEngine
from infra.engines.mockruntime import run_program
from infra.engines.state import FileStateStore
from infra.programs import program_for
from infra.spec import NodePoolSpec, StackSpec, desired_stacks
from providers.base import Provider


@dataclass(slots=True)
class Phase:
    seconds: float
    counts: dict[str, int]
    not_applied: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SizeResult:
    pools: int
    stacks: int
    resources: int                  # what the programs declare (network, cluster, pools, instances)
    registration_only_s: float      # the peer: the programs under the mock runtime, no cloud calls
    first_up: Phase
    second_up: Phase
    destroy: Phase
    cloud_nodes_after_up: int       # nodes the adapters list with this run's stack tags
    cloud_nodes_after_destroy: int

    @property
    def noop_ok(self) -> bool:
        c = self.second_up.counts
        return c.get("create", 0) == c.get("update", 0) == c.get("delete", 0) == 0 and not self.second_up.errors

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["noop_ok"] = self.noop_ok
        d["per_pool_ms"] = {k: round(1000 * v / self.pools, 3) for k, v in (
            ("registration_only", self.registration_only_s), ("first_up", self.first_up.seconds),
            ("second_up", self.second_up.seconds), ("destroy", self.destroy.seconds))}
        up = self.first_up.seconds
        d["cloud_apply_share_first_up"] = round(max(0.0, up - self.registration_only_s) / up, 4) if up else None
        return d


def _phase(stacks: list[StackSpec], act: Callable[[StackSpec], Any]) -> Phase:
    counts: Counter[str] = Counter()
    errors: list[str] = []
    not_applied = 0
    t0 = time.perf_counter()
    for s in stacks:
        try:
            r = act(s)
        except Exception as e:  # noqa: BLE001 - one failed stack is a figure to report, not a crash
            errors.append(f"{s.name}: {type(e).__name__}: {e}")
            continue
        counts.update(r.counts)
        not_applied += len(r.not_applied)
    return Phase(round(time.perf_counter() - t0, 4), dict(counts), not_applied, errors)


def _our_nodes(providers: dict[str, Provider], stacks: list[StackSpec]) -> int:
    names = {s.name for s in stacks} | {s.name.lower() for s in stacks}
    n = 0
    for p in providers.values():
        for node in p.list_nodes():
            tag = node.labels.get("awan:stack") or node.labels.get("awan-stack")
            if tag in names and node.state.value not in ("terminated", "preempted"):
                n += 1
    return n


def converge(pools: list[NodePoolSpec], providers: dict[str, Provider], stack_config: dict[str, dict[str, str]]) -> SizeResult:
    """Measure one size. State goes to JSON files in a fresh temporary directory (the engine's default
    store, fsync per write included), so sizes do not see each other's stacks."""
    stacks = desired_stacks(pools, config=stack_config)
    t0 = time.perf_counter()
    resources = sum(len(run_program(program_for(s), s.name).resources) for s in stacks)
    registration = round(time.perf_counter() - t0, 4)
    with tempfile.TemporaryDirectory(prefix="awan-bench-state-") as state_dir:
        engine = LocalEngine(providers.__getitem__, store=FileStateStore(state_dir), why="benchmark")
        first = _phase(stacks, engine.up)
        second = _phase(stacks, engine.up)
        after_up = _our_nodes(providers, stacks)
        destroy = _phase(stacks, lambda s: engine.destroy(s.name))
        after_destroy = _our_nodes(providers, stacks)
    return SizeResult(pools=len(pools), stacks=len(stacks), resources=resources, registration_only_s=registration,
                      first_up=first, second_up=second, destroy=destroy, cloud_nodes_after_up=after_up,
                      cloud_nodes_after_destroy=after_destroy)
