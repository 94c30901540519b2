"""A burst of one-GPU inference workloads against mock clouds whose pools hold fewer nodes than their quota
headroom says (EC2/GCE publish no free capacity): the red team's scenario of issue 12, in one process.

The real Controller (real placement, the local engine through the real adapters over HTTP to the mocks, a
SQLite store) is driven pass by pass until every workload is Running or the bound is over. Reported: the
passes and seconds to all Running, failovers (workloads moved) per workload, stock-outs met, and nodes live
in the clouds against nodes assigned in the store. ``learn=False`` runs the loop with the block list only
(capacity_estimates off), the behaviour before, for comparison in the same run.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PROVIDERS = ("aws", "gcp")


@dataclass
class BurstResult:
    workloads: int
    learn: bool
    hidden_nodes_per_pool: int
    pools_with_stock: int
    seconds: float
    passes: int
    states: dict[str, int]
    failovers: int
    stock_outs: int
    nodes_assigned: int
    nodes_live: int
    all_running: bool
    slow_start: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def failovers_per_workload(self) -> float:
        return round(self.failovers / self.workloads, 2) if self.workloads else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failovers_per_workload": self.failovers_per_workload}


def manifests(n: int, prefix: str = "burst") -> str:
    where = ", ".join(f"'{p}:*'" for p in PROVIDERS)
    return "\n---\n".join(
        f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {prefix}-{i:05d}}}\n"
        f"spec: {{kind: inference, gpus: {{model: [H100, A100, L4], count: 1}}, capacityType: [on-demand], "
        f"location: {{regions: [{where}]}}}}\n" for i in range(n))


def run_burst(clouds: Any, workdir: Path, n: int, per_pool: int, *, learn: bool = True,
              timeout_s: float = 1200.0, stack_workers: int = 8, max_passes: int = 10_000,
              progress: Any = None, slow_start: int | None = None) -> BurstResult:
    """``clouds``: started MockClouds (reset here); every pool of ``PROVIDERS`` gets ``per_pool`` nodes.
    ``slow_start``: the loop's capacity slow start (None: the service default, ``LoopConfig``'s)."""
    from sqlalchemy import func, select

    from controlplane.api.workload_service import submit
    from controlplane.auth import create_token
    from controlplane.reconcile.controller import Controller, LoopConfig
    from controlplane.reconcile.leader import LeaderElector
    from controlplane.reconcile.policy_source import PolicySource
    from controlplane.store.db import Database
    from controlplane.store.migrate import upgrade
    from controlplane.store.models import ACTIVE_STATES, Assignment, AuditEvent, CapacityEstimate, Workload
    from controlplane.store.stack_state import DbStackStateStore
    from infra.engines.select import select_engine
    from providers.registry import build_providers

    clouds.reset()
    pools = sum(clouds.backend(p).ledger.set_free(per_pool) for p in PROVIDERS)
    workdir.mkdir(parents=True, exist_ok=True)
    db = Database.from_url(f"sqlite:///{workdir / ('burst-learn.db' if learn else 'burst-blocklist.db')}")
    upgrade(db.engine)
    cfg = clouds.config()
    providers = build_providers(cfg, only=list(PROVIDERS))
    engine = select_engine("local", config=cfg, store=DbStackStateStore(db))
    with db.session() as s:
        _, principal = create_token(s, "burst", "member")
    for start in range(0, n, 500):
        submit(db, principal, manifests(min(500, n - start), f"burst{start // 500}"), "burst")
    elector = LeaderElector(db, "burst", ttl_s=3600, renew_s=1200)
    if not elector.step():
        raise RuntimeError("burst: could not take the leader lease")
    start = LoopConfig().capacity_slow_start if slow_start is None else slow_start
    ctl = Controller(db, providers, engine, elector=elector, policies=PolicySource(db, []).current,
                     config=LoopConfig(stack_workers=stack_workers, provider_concurrency=stack_workers,
                                       retry_base_s=0.2, retry_max_s=5.0, learn_capacity=learn,
                                       capacity_slow_start=start if learn else 0, short_bound_s=3600))

    def counts() -> dict[str, int]:
        with db.session() as s:
            return {st: int(c) for st, c in s.execute(select(Workload.state, func.count()).group_by(Workload.state))}

    passes = 0
    t0 = time.perf_counter()
    try:
        while passes < max_passes and time.perf_counter() - t0 < timeout_s:
            t_pass = time.perf_counter()
            ctl.tick()
            t_tick = time.perf_counter()
            ctl.wait_idle(timeout_s)
            passes += 1
            now = counts()
            if progress is not None:   # per pass: the step itself, then the stack runs it started
                progress(f"pass {passes}: {t_tick - t_pass:.1f} s step + {time.perf_counter() - t_tick:.1f} s "
                         f"stacks, at {time.perf_counter() - t0:.0f} s: {now}")
            if now.get("Running", 0) == n:
                break
        seconds = time.perf_counter() - t0
        # Leftovers of moved workloads go with their stack's next run: give the loop its passes to finish.
        for _ in range(3):
            ctl.tick()
            ctl.wait_idle(timeout_s)
    finally:
        ctl._pool.shutdown(wait=True)
        ctl.share.stop()
    states = counts()
    with db.session() as s:
        failovers = int(s.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.action == "failover")) or 0)
        stock_outs = int(s.scalar(select(func.sum(CapacityEstimate.stock_outs))) or 0)
        assigned = int(s.scalar(select(func.sum(Assignment.nodes)).join(Workload, Workload.id == Assignment.workload_id)
                                .where(Workload.state.in_([st.value for st in ACTIVE_STATES]))) or 0)
        notes = sorted({w.message for w in s.scalars(select(Workload).where(Workload.state == "Pending"))})[:5]
    live = sum(len(p.list_nodes()) for p in providers.values())
    for p in providers.values():
        close = getattr(p, "close", None)
        if callable(close):
            close()
    db.dispose()
    return BurstResult(workloads=n, learn=learn, hidden_nodes_per_pool=per_pool, pools_with_stock=pools,
                       seconds=round(seconds, 1), passes=passes, states=states, failovers=failovers,
                       stock_outs=stock_outs, nodes_assigned=assigned, nodes_live=live,
                       all_running=states.get("Running", 0) == n, slow_start=start if learn else 0, notes=notes)


def describe(r: BurstResult) -> str:
    how = "capacity learned" if r.learn else "block list only"
    return (f"burst ({how}): {r.workloads} one-GPU workloads, {r.hidden_nodes_per_pool} nodes hidden per pool "
            f"({r.pools_with_stock} pools): {'all Running' if r.all_running else 'NOT all Running'} after "
            f"{r.seconds:.1f} s, {r.passes} passes; {r.failovers} failovers ({r.failovers_per_workload} per "
            f"workload), {r.stock_outs} stock-outs learned; nodes assigned {r.nodes_assigned} / live "
            f"{r.nodes_live}; slow start {r.slow_start or 'off'}; states {r.states}")
