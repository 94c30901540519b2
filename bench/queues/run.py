"""``python -m bench --suite queues``: the admission engine at scale (issue 11).

- **decisions/s**: one admission cycle (``controlplane.queues.admit``) over 100 queues in 10 cohorts of
  10, two flavours, and 100,000 pending workloads (1-64 GPUs, five priorities) on an empty fleet: every
  pending workload gets a decision (admitted on a flavour, or waiting with reason and position), so the
  rate is pending / cycle time. Then the same cycle with the fleet full (everyone waits, quota and
  preemption searched): the steady state of a backlog.
- **15,000 admitted**: cycles over a backlog of ``--queues-loop-pending`` (default 20,000) drawn the same
  way, in which the previous cycle's admissions finish (their GPUs free again), until 15,000 workloads were
  admitted; the engine time it took. Kueue's published baseline is 15,000 workloads admitted in about
  351 s, on a real cluster with the workloads' pods run (so it holds more than admission: a reference,
  not a like-for-like peer; Kueue cannot run here, there is no Kubernetes cluster).
- **settle after a quota change**: from the full fleet with that backlog, every other queue's nominal
  quota is raised by a quarter (``settle_raise``), or in addition the others' cut by a quarter
  (``settle``); cycles run (victims released at once, as with no grace period; their preemptors go first
  next cycle, as in the loop) until one admits and preempts nothing (at most 30); cycles and engine time.
- **through the store**: ``controlplane.reconcile.admitting.admit_pending`` on SQLite with
  ``--queues-store-pending`` pending rows (default 100,000): read, decide, write (the first pass writes
  every waiting workload's position and reason), then a second pass (nothing changed: reads and decides).

Each figure is the median of ``--queues-runs`` runs (default 3); load average before and after.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.machine import machine_info, peak_rss_mib, pin_one_core, write_results
from controlplane.queues import Admitted, Flavour, Pending, Queue, QueueConfig, Quota, admit

KUEUE_15K_S = 351.0


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--queues-runs", type=int, default=None, help="runs per figure (default 3)")
    group.add_argument("--queues-pending", type=int, default=None, help="pending workloads (default 100,000)")
    group.add_argument("--queues-loop-pending", type=int, default=None,
                       help="backlog for the 15,000-admitted and settle figures (default 20,000)")
    group.add_argument("--queues-store-pending", type=int, default=None,
                       help="pending rows for the store figure (default 100,000; 0 to skip)")


def fleet(n_queues: int = 100, per_cohort: int = 10, scale: float = 1.0) -> QueueConfig:
    flavours = {"h100": Flavour("h100", "H100"), "b200": Flavour("b200", "B200")}
    queues = {}
    for i in range(n_queues):
        name = f"q{i:03d}"
        quotas = {"h100": Quota(int(64 * scale), 128, None), "b200": Quota(int(32 * scale), 64, 16)}
        queues[name] = Queue(name, (name,), f"c{i // per_cohort}", float(1 + i % 3), quotas)
    return QueueConfig(flavours, queues)


def backlog(cfg: QueueConfig, n: int, seed: int = 1) -> list[Pending]:
    rng = random.Random(seed)
    names = sorted(cfg.queues)
    return [Pending(f"w{i}", rng.choice(names), rng.choice([1, 1, 2, 4, 8, 8, 16, 64]),
                    rng.choice([("H100",), ("B200",), ("H100", "B200")]), priority=rng.choice([0, 0, 10, 50, 100]),
                    arrival=float(i)) for i in range(n)]


CPU: dict[str, float] = {}


def _timed(label: str, fn: Any, *args: Any) -> tuple[float, Any]:
    """Wall seconds of ``fn()``; its CPU seconds (this thread) are added to CPU[label], since other load
    on a shared machine shows in wall time only."""
    c0, t0 = time.thread_time(), time.perf_counter()
    out = fn(*args)
    took = time.perf_counter() - t0
    CPU[label] = CPU.get(label, 0.0) + time.thread_time() - c0
    return took, out


def one_run(n: int, n_loop: int) -> dict[str, float]:
    CPU.clear()
    cfg = fleet()
    pending = backlog(cfg, n)
    prio = {p.key: p.priority for p in pending}
    cold_s, cyc = _timed("cold", admit, cfg, [], pending, 0.0)
    held = [Admitted(a.key, a.queue, a.flavour, a.gpus, prio[a.key], 0.0, 0.0) for a in cyc.admitted]
    rest = [p for p in pending if p.key not in {a.key for a in cyc.admitted}]
    full_s, full = _timed("full", admit, cfg, held, rest, 3600.0)
    full_rate, full_rate_cpu = len(rest) / full_s, len(rest) / CPU["full"]
    # The loops below run a cycle per step over the whole backlog: a smaller one keeps the suite short.
    pending = pending[:n_loop]
    cyc = admit(cfg, [], pending, 0.0)
    held = [Admitted(a.key, a.queue, a.flavour, a.gpus, prio[a.key], 0.0, 0.0) for a in cyc.admitted]
    rest = [p for p in pending if p.key not in {a.key for a in cyc.admitted}]
    # 15,000 admitted: each cycle, the previous cycle's admissions finish.
    total, engine_s, cycles, waiting = 0, 0.0, 0, list(pending)
    running: list[Admitted] = []
    while total < 15_000 and waiting:
        dt, c = _timed("15k", admit, cfg, running, waiting, float(cycles))
        engine_s += dt
        cycles += 1
        total += len(c.admitted)
        done = {a.key for a in c.admitted}
        running = [Admitted(a.key, a.queue, a.flavour, a.gpus, prio[a.key], float(cycles), float(cycles))
                   for a in c.admitted]
        waiting = [p for p in waiting if p.key not in done]
    raise_s, raise_cycles = settle(cfg, held, rest, prio, cut=1.0, label="settle_raise")
    settle_s, settle_cycles = settle(cfg, held, rest, prio, cut=0.75, label="settle")
    return {"cold_cycle_cpu_s": CPU["cold"], "cold_decisions_per_cpu_s": n / CPU["cold"],
            "full_cycle_cpu_s": CPU["full"], "admit_15k_engine_cpu_s": CPU["15k"], "settle_cpu_s": CPU["settle"],
            "settle_raise_cpu_s": CPU["settle_raise"], "settle_raise_s": raise_s, "settle_raise_cycles": raise_cycles,
            "cold_cycle_s": cold_s, "cold_decisions_per_s": n / cold_s, "cold_admitted": len(cyc.admitted),
            "full_cycle_s": full_s, "full_decisions_per_s": full_rate, "full_decisions_per_cpu_s": full_rate_cpu,
            "full_preemptions": len(full.preemptions),
            "admit_15k_engine_s": engine_s, "admit_15k_cycles": cycles, "admit_15k_admitted": total,
            "settle_s": settle_s, "settle_cycles": settle_cycles}


def _pass(db: Any, cfg: QueueConfig) -> Any:
    from controlplane.reconcile.admitting import admit_pending

    return admit_pending(db, cfg, fenced=lambda: True, actor="bench")


def settle(cfg: QueueConfig, held: list[Admitted], rest: list[Pending], prio: dict[str, int], *, cut: float,
           label: str, cap: int = 30) -> tuple[float, int]:
    """Every other queue's nominal raised by a quarter, the others' multiplied by ``cut``; cycles (victims
    released at once) until one admits and preempts nothing, at most ``cap`` (then reported as ``cap``)."""
    changed = QueueConfig(cfg.flavours, {
        name: replace(q, quotas={f: replace(qt, nominal=int(qt.nominal * (cut if i % 2 else 1.25)))
                                 for f, qt in q.quotas.items()})
        for i, (name, q) in enumerate(sorted(cfg.queues.items()))})
    took, cycles, cur, waiting = 0.0, 0, list(held), list(rest)
    nominated: set[str] = set()
    while cycles < cap:
        waiting = [replace(p, nominated=p.key in nominated) for p in waiting]
        dt, c = _timed(label, admit, changed, cur, waiting, 7200.0 + cycles)
        took += dt
        cycles += 1
        if not c.admitted and not c.preemptions:
            break
        gone = {p.victim for p in c.preemptions}
        nominated = (nominated | {p.preemptor for p in c.preemptions}) - {a.key for a in c.admitted}
        requeued = [Pending(a.key, a.queue, a.gpus, (changed.flavours[a.flavour].gpu_model,),
                            priority=a.priority, arrival=1e9) for a in cur if a.key in gone]
        cur = [a for a in cur if a.key not in gone] + [
            Admitted(a.key, a.queue, a.flavour, a.gpus, prio[a.key], 0.0, 0.0) for a in c.admitted]
        admitted = {a.key for a in c.admitted}
        waiting = [p for p in waiting if p.key not in admitted] + requeued
    return took, cycles


def store_run(n: int) -> dict[str, float]:
    from sqlalchemy import insert

    from controlplane.store.db import Database
    from controlplane.store.migrate import upgrade
    from controlplane.store.models import Workload

    cfg = fleet()
    pending = backlog(cfg, n)
    with tempfile.TemporaryDirectory() as d:
        db = Database.from_url(f"sqlite:///{Path(d) / 'q.db'}")
        upgrade(db.engine)
        rows = [{"name": p.key, "team": p.queue, "priority": p.priority, "gpus": p.gpus, "state": "Pending",
                 "spec": {"apiVersion": "awan.dev/v1alpha1", "kind": "GPUWorkload",
                          "metadata": {"name": p.key, "team": p.queue},
                          "spec": {"gpus": {"model": list(p.models), "count": p.gpus}, "priority": p.priority}}}
                for p in pending]
        with db.session() as s:
            for i in range(0, len(rows), 5000):
                s.execute(insert(Workload), rows[i:i + 5000])
        first_s, res = _timed("store1", _pass, db, cfg)
        second_s, _ = _timed("store2", _pass, db, cfg)
        db.dispose()
    return {"store_first_pass_cpu_s": CPU["store1"], "store_second_pass_cpu_s": CPU["store2"],
            "store_first_pass_s": first_s, "store_first_decisions_per_s": n / first_s,
            "store_second_pass_s": second_s, "store_second_decisions_per_s": (n - len(res.admitted)) / second_s,
            "store_admitted": len(res.admitted)}


def main(args: argparse.Namespace) -> int:
    quick = bool(getattr(args, "quick", False))
    runs = args.queues_runs or (1 if quick else 3)
    n = args.queues_pending or (2_000 if quick else 100_000)
    n_loop = args.queues_loop_pending or (2_000 if quick else 20_000)
    n_store = args.queues_store_pending if args.queues_store_pending is not None else (1_000 if quick else 100_000)
    core = None if getattr(args, "no_pin", False) else pin_one_core()
    load_before = os.getloadavg()
    results = [one_run(n, n_loop) | (store_run(n_store) if n_store else {}) for _ in range(runs)]
    load_after = os.getloadavg()
    median = {k: statistics.median(r[k] for r in results) for k in results[0]}
    payload = {"suite": "queues", "machine": machine_info(core), "load_before": load_before, "load_after": load_after,
               "sizes": {"queues": 100, "cohorts": 10, "pending": n, "loop_pending": n_loop, "store_pending": n_store,
                         "runs": runs},
               "median": median, "runs": results, "peak_rss_mib": peak_rss_mib(),
               "peer": {"kueue_published_15k_admitted_s": KUEUE_15K_S}}
    path = write_results(args.results_dir, "queues", payload)
    print(f"queues: {n:,} pending, 100 queues, median of {runs} (load {load_before[0]:.2f} -> {load_after[0]:.2f})")
    for k, v in median.items():
        print(f"  {k:34s} {v:,.3f}")
    print(f"  Kueue (published): 15,000 admitted in ~{KUEUE_15K_S:.0f} s; ours (engine): "
          f"{median['admit_15k_engine_s']:.2f} s over {median['admit_15k_cycles']:.0f} cycles")
    print(f"results: {path}")
    return 0
