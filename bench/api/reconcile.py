"""Reconcile throughput: N pending workloads through the real Controller (the real placement engine over
a catalog ``FleetSnapshot``) with an engine that records stack runs without calling a cloud.

Why not the local engine against the mocks: at 10,000 workloads that is thousands of pools, and the
provisioning suite measures the engine (about a tenth of a second or more a pool); here the question is
the controller's own cost (claim, place, write decisions, plan stacks, hand stacks to workers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from infra.engines.base import ChangeSet, ResourceChange, UpResult
from infra.spec import StackSpec


class NoCloudEngine:
    """Every ``up`` succeeds at once with one create per pool; remembers what it was asked to hold."""

    name = "no-cloud"

    def __init__(self) -> None:
        self.ups = 0
        self.pools: dict[str, int] = {}

    def up(self, stack: StackSpec) -> UpResult:
        self.ups += 1
        self.pools[stack.name] = len(stack.pools)
        cs = ChangeSet(creates=[ResourceChange(f"urn:{p.pool}", "pool", p.pool, "create") for p in stack.pools])
        return UpResult(stack.name, cs, {"pools": {p.pool: [] for p in stack.pools}}, 0.0)

    def destroy(self, stack_name: str) -> UpResult:
        return UpResult(stack_name, ChangeSet(), {}, 0.0)


@dataclass(slots=True)
class ReconcileResult:
    workloads: int
    submit_s: float
    seconds: float
    ticks: int
    states: dict[str, int]
    stack_ups: int
    pools_held: int
    workloads_per_s: float
    fleet_gpus_scale: float


def _manifests(names: list[str]) -> str:
    return "\n---\n".join(
        f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {n}}}\n"
        f"spec: {{kind: inference, gpus: {{model: [H100, H200, A100, L4], count: {1 if i % 4 else 8}}}}}\n"
        for i, n in enumerate(names))


def reconcile_throughput(db_url: str, n: int, scale: float = 50.0, timeout_s: float = 600.0) -> ReconcileResult:
    from sqlalchemy import func, select

    from controlplane.api.workload_service import submit
    from controlplane.auth import create_token
    from controlplane.placement.snapshot import FleetSnapshot
    from controlplane.reconcile.controller import Controller, LoopConfig
    from controlplane.reconcile.leader import LeaderElector
    from controlplane.reconcile.policy_source import PolicySource
    from controlplane.store.db import Database
    from controlplane.store.migrate import upgrade
    from controlplane.store.models import Workload
    from providers.catalog import default_catalog

    db = Database.from_url(db_url)
    upgrade(db.engine)
    with db.session() as s:
        _, principal = create_token(s, "bench", "member")
    t0 = time.perf_counter()
    for start in range(0, n, 500):
        submit(db, principal, _manifests([f"rc-{i:06d}" for i in range(start, min(n, start + 500))]), "bench")
    submit_s = time.perf_counter() - t0
    snap = FleetSnapshot.from_catalog(default_catalog(), scale=scale)
    engine = NoCloudEngine()
    elector = LeaderElector(db, "bench-reconcile", ttl_s=600, renew_s=300)
    if not elector.step():
        raise RuntimeError("reconcile: could not take the leader lease")
    ctl = Controller(db, {}, engine, elector=elector, policies=PolicySource(db, []).current,
                     config=LoopConfig(stack_workers=4), snapshot=lambda: snap)

    def pending() -> int:
        with db.session() as s:
            return int(s.scalar(select(func.count()).select_from(Workload).where(Workload.state == "Pending")) or 0)

    ticks = 0
    t0 = time.perf_counter()
    try:
        while True:
            ctl.tick()
            ctl.wait_idle(timeout_s)
            ticks += 1
            if pending() == 0 or time.perf_counter() - t0 > timeout_s:
                break
        ctl.tick()          # one more pass: stacks for the last placements
        ctl.wait_idle(timeout_s)
        seconds = time.perf_counter() - t0
    finally:
        ctl._pool.shutdown(wait=True)
    with db.session() as s:
        states = {st: int(c) for st, c in s.execute(select(Workload.state, func.count()).group_by(Workload.state))}
    db.dispose()
    left = states.get("Pending", 0)
    return ReconcileResult(workloads=n, submit_s=round(submit_s, 3), seconds=round(seconds, 3), ticks=ticks + 1,
                           states=states, stack_ups=engine.ups, pools_held=sum(engine.pools.values()),
                           workloads_per_s=round((n - left) / seconds, 1) if seconds else 0.0,
                           fleet_gpus_scale=scale)


def describe(r: Any) -> str:
    return (f"reconcile: {r.workloads:,} workloads left Pending in {r.seconds:.2f} s over {r.ticks} passes "
            f"({r.workloads_per_s:,.1f} workloads/s); states {r.states}; {r.stack_ups} stack runs holding "
            f"{r.pools_held:,} pools")
