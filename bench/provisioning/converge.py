"""One size of the provisioning benchmark: N pools through the local engine (first up, no-op up, destroy),
and the same programs under Pulumi's mock runtime alone (the peer: registration without cloud calls).

Each phase records wall time and the process's CPU time (``time.process_time``: every thread, so the
in-process mock clouds' work is in it too); on a shared machine the CPU figure is the steadier one.
With ``workers > 1`` the stacks of a phase run on that many threads, as the controller runs them
(``stack_workers``); programs still register one at a time (the Pulumi runtime is process-global).
The engine renders programs in a worker process (``infra.engines.mockruntime_worker``): its CPU time
is added to each phase's, and it is started before the first phase so that its start is in none."""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from infra.engines import mockruntime_worker
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
    cpu_seconds: float = 0.0


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
    registration_only_cpu_s: float = 0.0
    workers: int = 1

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
        d["per_pool_cpu_ms"] = {k: round(1000 * v / self.pools, 3) for k, v in (
            ("registration_only", self.registration_only_cpu_s), ("first_up", self.first_up.cpu_seconds),
            ("second_up", self.second_up.cpu_seconds), ("destroy", self.destroy.cpu_seconds))}
        up = self.first_up.cpu_seconds
        reg = self.registration_only_cpu_s
        d["cloud_apply_share_first_up"] = round(max(0.0, up - reg) / up, 4) if up else None
        return d


def _phase(stacks: list[StackSpec], act: Callable[[StackSpec], Any], workers: int = 1) -> Phase:
    counts: Counter[str] = Counter()
    errors: list[str] = []
    not_applied = 0

    def one(s: StackSpec) -> Any:
        try:
            return act(s)
        except Exception as e:  # noqa: BLE001 - one failed stack is a figure to report, not a crash
            return e

    c0, t0 = time.process_time() + mockruntime_worker.cpu_seconds(), time.perf_counter()
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench-stack") as pool:
            results = list(pool.map(one, stacks))
    else:
        results = [one(s) for s in stacks]
    wall, cpu = time.perf_counter() - t0, time.process_time() + mockruntime_worker.cpu_seconds() - c0
    for s, r in zip(stacks, results, strict=True):
        if isinstance(r, Exception):
            errors.append(f"{s.name}: {type(r).__name__}: {r}")
            continue
        counts.update(r.counts)
        not_applied += len(r.not_applied)
    return Phase(round(wall, 4), dict(counts), not_applied, errors, round(cpu, 4))


def _our_nodes(providers: dict[str, Provider], stacks: list[StackSpec]) -> int:
    names = {s.name for s in stacks} | {s.name.lower() for s in stacks}
    n = 0
    for p in providers.values():
        for node in p.list_nodes():
            tag = node.labels.get("awan:stack") or node.labels.get("awan-stack")
            if tag in names and node.state.value not in ("terminated", "preempted"):
                n += 1
    return n


def converge(pools: list[NodePoolSpec], providers: dict[str, Provider], stack_config: dict[str, dict[str, str]],
             workers: int = 1) -> SizeResult:
    """Measure one size. State goes to JSON files in a fresh temporary directory (the engine's default
    store, fsync per write included), so sizes do not see each other's stacks."""
    stacks = desired_stacks(pools, config=stack_config)
    c0, t0 = time.process_time(), time.perf_counter()
    resources = sum(len(run_program(program_for(s), s.name).resources) for s in stacks)
    registration, registration_cpu = round(time.perf_counter() - t0, 4), round(time.process_time() - c0, 4)
    mockruntime_worker.start()
    with tempfile.TemporaryDirectory(prefix="awan-bench-state-") as state_dir:
        engine = LocalEngine(providers.__getitem__, store=FileStateStore(state_dir), why="benchmark")
        first = _phase(stacks, engine.up, workers)
        second = _phase(stacks, engine.up, workers)
        after_up = _our_nodes(providers, stacks)
        destroy = _phase(stacks, lambda s: engine.destroy(s.name), workers)
        after_destroy = _our_nodes(providers, stacks)
    return SizeResult(pools=len(pools), stacks=len(stacks), resources=resources, registration_only_s=registration,
                      first_up=first, second_up=second, destroy=destroy, cloud_nodes_after_up=after_up,
                      cloud_nodes_after_destroy=after_destroy, registration_only_cpu_s=registration_cpu,
                      workers=workers)
