"""``awan simulate``: replay a demand trace against contracts, Capacity Blocks and a provider mix through the
placement engine (controlplane.placement.engine.Placer), driven by a simulated clock.

Capacity is one FleetSnapshot whose pools never change order: on-demand/spot pools from the catalog (the
providers the scenario sells on-demand from, ``scale`` x the catalog's nominal free nodes), one reserved pool
per contract (the engine burns it down as a take-or-pay commitment) and one per Capacity Block, each dated.
The clock moves from event to event (an arrival, a run ending, a dated pool starting or ending). At each
start or end of dated capacity a new Placer is made for the snapshot at that time (so the candidate filter
admits exactly the pools in term) and the running workloads' rows are applied to it again. A workload on
capacity that ends is moved: put back in the queue with the hours it has left. A workload that cannot be
placed waits in the queue (first come, first served, with backfill) until capacity frees up, or fails once it
has waited longer than its ``maxWaitHours``.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from controlplane.model.workload import GPUWorkload
from controlplane.placement.cache import IndexCache
from controlplane.placement.engine import Placer
from controlplane.placement.snapshot import FleetSnapshot, pool_key, scaled_seed_nodes
from controlplane.placement.views import Take, WorkloadClass
from controlplane.policy.model import Commitment, PolicySet
from controlplane.timeline.scenario import BlockDoc, ContractDoc, Scenario, ScenarioError
from controlplane.timeline.trace import Arrival
from providers.catalog import CapacityType, Catalog, InstanceType
from providers.catalog.fabric import ultraserver_type
from providers.model import CapacityPool


@dataclass(slots=True)
class PoolUse:
    """Dated reserved capacity (a contract or a block) and what was used of it."""

    name: str
    kind: str                   # contract | block
    provider: str
    gpu_model: str
    gpus: int                   # GPUs it holds while in term
    start: datetime
    end: datetime
    price_per_gpu_hour: float
    take_or_pay: bool = True
    used_gpu_hours: float = 0.0


@dataclass(slots=True)
class Running:
    arrival: Arrival
    workload: GPUWorkload
    started: datetime
    ends: datetime
    takes: list[Take]
    serial: int


@dataclass(slots=True)
class Queued:
    arrival: Arrival
    workload: GPUWorkload
    hours_left: float
    since: datetime             # first arrival (waiting is counted from it)
    moved: bool = False


@dataclass(slots=True)
class SimResult:
    start: datetime
    end: datetime
    workloads: int = 0
    placed: int = 0
    finished: int = 0
    moved: int = 0
    failed_never: int = 0        # nothing in the fleet could ever hold it
    failed_wait: int = 0         # waited longer than its maxWaitHours
    still_queued: int = 0
    waits_h: list[float] = field(default_factory=list)
    on_demand_dollars: float = 0.0
    gpu_hours_by_provider: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    gpu_hours_by_capacity: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    weekly: list[dict[str, float]] = field(default_factory=list)     # GPU-hours per provider per week
    reserved: list[PoolUse] = field(default_factory=list)
    failed_examples: list[str] = field(default_factory=list)


def _instance_for(cat: Catalog, provider: str, gpu_model: str, region: str | None, itype: str | None,
                  what: str) -> tuple[InstanceType, str, str]:
    """(instance type, region, zone) of a contract: the named type/region or the biggest node of that GPU
    model the provider sells, in the first region (by name) that has it."""
    rows = sorted((o for o in cat.for_provider(provider)
                   if cat.instance_type(provider, o.instance_type).gpu_model == gpu_model
                   and (itype is None or o.instance_type == itype) and (region is None or o.region == region)),
                  key=lambda o: (-cat.instance_type(provider, o.instance_type).gpus, o.region, o.zone))
    if not rows:
        raise ScenarioError(f"{what}: {provider} sells no {itype or gpu_model}"
                            f"{' in ' + region if region else ''} in the catalog")
    o = rows[0]
    return cat.instance_type(provider, o.instance_type), o.region, o.zone


def build_fleet(s: Scenario, cat: Catalog) -> tuple[FleetSnapshot, PolicySet, list[PoolUse]]:
    doc = s.doc
    known = {p for (p, _) in cat.instance_types}
    for i, p in enumerate(doc.on_demand.providers):
        if p not in known:
            raise ScenarioError(f"onDemand.providers[{i}]: unknown provider {p!r} (known: {', '.join(sorted(known))})")
    pools: list[CapacityPool] = []
    for o in sorted(cat.offerings, key=lambda o: o.key):
        if o.provider not in doc.on_demand.providers or o.capacity_type == CapacityType.RESERVED:
            continue
        it = cat.instance_type(o.provider, o.instance_type)
        n = scaled_seed_nodes(it, doc.on_demand.scale)
        if n > 0:
            pools.append(CapacityPool(o.provider, o.region, o.zone, o.instance_type, o.capacity_type, n,
                                      ultraserver_type=ultraserver_type(it)))
    uses: list[PoolUse] = []
    commitments: list[Commitment] = []
    for i, c in enumerate(doc.contracts):
        uses.append(_contract_pool(cat, c, f"contracts[{i}]", pools, commitments))
    for i, b in enumerate(doc.blocks):
        uses.append(_block_pool(cat, b, f"blocks[{i}]", pools))
    snap = FleetSnapshot(cat, tuple(pools), taken_at=doc.start)
    return snap, PolicySet(commitments=tuple(commitments), sources=("(simulation)",)), uses


def _contract_pool(cat: Catalog, c: ContractDoc, what: str, pools: list[CapacityPool],
                   commitments: list[Commitment]) -> PoolUse:
    if c.provider not in {p for (p, _) in cat.instance_types}:
        raise ScenarioError(f"{what}.provider: unknown provider {c.provider!r}")
    it, region, zone = _instance_for(cat, c.provider, c.gpu_model, c.region, c.instance_type, what)
    nodes = c.gpus // it.gpus // it.nodes_per_domain * it.nodes_per_domain
    if nodes == 0:
        raise ScenarioError(f"{what}.gpus: {c.gpus} GPUs do not make one {it.name} "
                            f"({it.gpus * it.nodes_per_domain} GPUs)")
    pools.append(CapacityPool(c.provider, region, zone, it.name, CapacityType.RESERVED, nodes,
                              reservation_id=f"contract:{c.name}", price_per_hour=c.price_per_gpu_hour * it.gpus,
                              starts_at=c.start, ends_at=c.end,
                              ultraserver_type=ultraserver_type(it)))
    commitments.append(Commitment(c.name, c.provider, c.gpu_model, c.start, c.end, gpus=nodes * it.gpus,
                                  take_or_pay=c.take_or_pay, regions=(f"{c.provider}:{region}",),
                                  capacity_types=("reserved",), price_per_gpu_hour=c.price_per_gpu_hour))
    return PoolUse(c.name, "contract", c.provider, c.gpu_model, nodes * it.gpus, c.start, c.end,
                   c.price_per_gpu_hour, c.take_or_pay)


def _block_pool(cat: Catalog, b: BlockDoc, what: str, pools: list[CapacityPool]) -> PoolUse:
    it = cat.instance_types.get((b.provider, b.instance_type))
    if it is None:
        raise ScenarioError(f"{what}.instanceType: {b.provider} has no {b.instance_type!r} in the catalog")
    zones = sorted(o.zone for o in cat.for_provider(b.provider) if o.region == b.region)
    if not zones:
        raise ScenarioError(f"{what}.region: {b.provider} has no region {b.region!r} in the catalog")
    pools.append(CapacityPool(b.provider, b.region, b.zone or zones[0], b.instance_type, CapacityType.RESERVED,
                              b.nodes, reservation_id=f"block:{b.name}", price_per_hour=b.price_per_hour,
                              starts_at=b.start, ends_at=b.end,
                              ultraserver_type=ultraserver_type(it)))
    return PoolUse(b.name, "block", b.provider, it.gpu_model, b.nodes * it.gpus, b.start, b.end,
                   b.price_per_hour / it.gpus, True)


class _Specs:
    """One validated GPUWorkload per distinct demand; each arrival is a cheap copy with its own name."""

    def __init__(self) -> None:
        self.cache: dict[tuple[Any, ...], GPUWorkload] = {}

    def of(self, a: Arrival) -> GPUWorkload:
        key = (a.models, a.gpus, a.team)
        base = self.cache.get(key)
        if base is None:
            try:
                base = GPUWorkload.model_validate({"metadata": {"name": "w", "team": a.team}, "spec": {
                    "gpus": {"model": list(a.models), "count": a.gpus}, "kind": "batch"}})
            except ValueError as e:
                raise ScenarioError(f"trace workload {a.name}: {e}") from None
            self.cache[key] = base
        return base.model_copy(update={"metadata": base.metadata.model_copy(update={"name": a.name})})


class Simulation:
    def __init__(self, scenario: Scenario, catalog: Catalog, arrivals: Iterable[Arrival]) -> None:
        self.doc = scenario.doc
        self.snap, self.policies, self.uses = build_fleet(scenario, catalog)
        self.arrivals = arrivals
        # one index per capacity epoch's structure, rebased when only the clock moved (placement keeps none)
        self.cache = IndexCache()
        self.res = SimResult(self.doc.start, self.doc.end, reserved=self.uses)
        self.index_of = {pool_key(p): i for i, p in enumerate(self.snap.pools)}
        self.ends_of = {i: p.ends_at for i, p in enumerate(self.snap.pools) if p.ends_at is not None}
        self.use_of = {i: u for i, p in enumerate(self.snap.pools) for u in self.uses
                       if p.reservation_id in (f"contract:{u.name}", f"block:{u.name}")}
        self.running: dict[str, Running] = {}
        # the queue, first come first served per workload class (a class is everything placement reads)
        self.queues: dict[tuple[Any, ...], deque[Queued]] = {}
        # Free GPUs per GPU model in pools in term. A class is tried only when its models have at least its
        # GPUs free (necessary) and, after it failed, only once more of them are free than when it failed
        # (an approximation: fragmentation could let a fit appear at the same level; the class is tried
        # again at the next higher level or capacity boundary). Keeps a saturated year from retrying every
        # queued class at every run's end.
        self.free_gpus: dict[str, int] = defaultdict(int)
        self.failed_at: dict[tuple[Any, ...], int] = {}
        self.heap: list[tuple[datetime, int, str]] = []
        self.serial = 0
        self.specs = _Specs()
        self.placer = self._placer_at(self.doc.start)
        self._count_free()
        self.bounds: list[datetime] = []
        self.b = 0
        self.swept = self.doc.start

    # -- capacity epochs -----------------------------------------------------------------------------
    def _placer_at(self, t: datetime) -> Placer:
        return Placer(dataclasses.replace(self.snap, taken_at=t), self.policies, cache=self.cache)

    def _count_free(self) -> None:
        self.free_gpus.clear()
        free = self.placer.state.free
        for pv in self.placer.index.views:
            self.free_gpus[pv.it.gpu_model] += free[pv.idx] * pv.it.gpus
        self.failed_at.clear()

    def _enqueue(self, q: Queued, front: bool = False) -> None:
        dq = self.queues.setdefault(WorkloadClass.key_of(q.workload), deque())
        if front:
            dq.appendleft(q)
        else:
            dq.append(q)

    def _epoch(self, t: datetime) -> None:
        """Dated capacity started or ended at ``t``: a Placer for the fleet as it is now, with every running
        workload's rows applied to it; runs on capacity that ended are moved (re-queued)."""
        self.placer = self._placer_at(t)
        views = {pv.idx: pv for pv in self.placer.index.views}
        for name in list(self.running):
            r = self.running[name]
            if any(x.pv.idx not in views for x in r.takes):
                self._stop(r, t, revert=False)
                left = (r.ends - t).total_seconds() / 3600
                self._enqueue(Queued(r.arrival, r.workload, left, t, moved=True), front=True)
                self.res.moved += 1
                continue
            r.takes = [dataclasses.replace(x, pv=views[x.pv.idx]) for x in r.takes]
            self.placer.state.apply(r.takes, r.workload.team)
        self._count_free()

    # -- runs ----------------------------------------------------------------------------------------
    def _try(self, q: Queued, t: datetime, key: tuple[Any, ...]) -> bool:
        models = key[0]
        level = sum(self.free_gpus[m] for m in models)
        if level < q.workload.total_gpus or level <= self.failed_at.get(key, -1):
            return False
        d = self.placer.place_one(q.workload, explain=False)
        if not d.placed:
            self.failed_at[key] = level
            return False
        _, opts = self.placer.chosen.pop(q.workload.name)
        takes = [x for o in opts for x in o.takes]
        for x in takes:
            self.free_gpus[x.pv.it.gpu_model] -= x.nodes * x.pv.it.gpus
        ends = t + timedelta(hours=q.hours_left)
        self.serial += 1
        self.running[q.workload.name] = Running(q.arrival, q.workload, t, ends, takes, self.serial)
        heapq.heappush(self.heap, (ends, self.serial, q.workload.name))
        if not q.moved:
            self.res.placed += 1
            self.res.waits_h.append((t - q.since).total_seconds() / 3600)
        return True

    def _stop(self, r: Running, t: datetime, revert: bool = True) -> None:
        if revert:    # False when its rows were never applied to the current Placer (see _epoch)
            self.placer.state.revert(r.takes, r.workload.team)
        del self.running[r.workload.name]
        hours = max(0.0, (min(t, self.doc.end) - max(r.started, self.doc.start)).total_seconds() / 3600)
        for x in r.takes:
            gpus = x.nodes * x.pv.it.gpus
            self.free_gpus[x.pv.it.gpu_model] += gpus
            gh = gpus * hours
            self.res.gpu_hours_by_provider[x.pv.pool.provider] += gh
            self.res.gpu_hours_by_capacity[x.pv.capacity_type] += gh
            use = self.use_of.get(x.pv.idx)
            if use is not None:
                use.used_gpu_hours += gh
            else:
                self.res.on_demand_dollars += x.nodes * x.pv.price * hours
            self._weekly(x.pv.pool.provider, max(r.started, self.doc.start), min(t, self.doc.end), gpus)

    def _weekly(self, provider: str, a: datetime, b: datetime, gpus: int) -> None:
        week = timedelta(days=7)
        while a < b:
            i = int((a - self.doc.start) / week)
            while len(self.res.weekly) <= i:
                self.res.weekly.append(defaultdict(float))
            edge = min(b, self.doc.start + week * (i + 1))
            self.res.weekly[i][provider] += gpus * (edge - a).total_seconds() / 3600
            a = edge

    def _drain(self, t: datetime) -> None:
        """Place what the queue can now hold: per class, oldest first; a class whose head cannot be placed
        waits (the others may backfill past it). Workloads that waited past their maxWait fail."""
        for key in list(self.queues):
            dq = self.queues[key]
            while dq and self._expired(dq[0], t):
                self._fail_wait(dq.popleft())
            while dq and self._try(dq[0], t, key):
                dq.popleft()
            if not dq:
                del self.queues[key]

    @staticmethod
    def _expired(q: Queued, t: datetime) -> bool:
        return not q.moved and (t - q.since).total_seconds() / 3600 > q.arrival.max_wait_hours

    def _fail_wait(self, q: Queued) -> None:
        self.res.failed_wait += 1
        self._example(q.arrival, f"waited over {q.arrival.max_wait_hours:g} h")

    def _expire(self, t: datetime) -> None:
        """Drop queued workloads that waited longer than their maxWait (moved ones wait as long as it takes)."""
        for key in list(self.queues):
            keep: deque[Queued] = deque()
            for q in self.queues[key]:
                if self._expired(q, t):
                    self._fail_wait(q)
                else:
                    keep.append(q)
            if keep:
                self.queues[key] = keep
            else:
                del self.queues[key]

    def _example(self, a: Arrival, why: str) -> None:
        if len(self.res.failed_examples) < 10:
            self.res.failed_examples.append(f"{a.name} ({a.gpus}x {'/'.join(a.models)}): {why}")

    # -- the clock -----------------------------------------------------------------------------------
    def run(self) -> SimResult:
        start, end = self.doc.start, self.doc.end
        bounds = sorted({t for p in self.snap.pools for t in (p.starts_at, p.ends_at)
                         if t is not None and start < t < end})
        # "could it ever run": against every pool at once, dates ignored
        ever_snap = dataclasses.replace(self.snap, pools=tuple(dataclasses.replace(p, starts_at=None, ends_at=None)
                                                               for p in self.snap.pools))
        ever = Placer(ever_snap, self.policies)
        never: dict[tuple[Any, ...], bool] = {}
        self.bounds, self.b = bounds, 0
        for a in self.arrivals:
            if a.at >= end:
                break
            self._advance(a.at)
            self.res.workloads += 1
            w = self.specs.of(a)
            key = WorkloadClass.key_of(w)
            if key not in never:
                fits = ever.place_one(w, explain=False)
                if fits.placed:
                    ever.release(w.name)
                never[key] = not fits.placed
            if never[key]:
                self.res.failed_never += 1
                self._example(a, "no capacity in the fleet could ever hold it")
                continue
            q = Queued(a, w, a.hours, a.at)
            if key in self.queues or not self._try(q, a.at, key):
                self._enqueue(q)
        self._advance(end)
        self._expire(end)
        for r in list(self.running.values()):
            self._stop(r, end)
        self.res.still_queued = sum(len(dq) for dq in self.queues.values())
        return self.res

    def _advance(self, t: datetime) -> None:
        """Process every run ending and capacity boundary up to ``t``, in time order; the queue is swept
        for workloads waiting past their maxWait once per simulated hour."""
        bounds, b = self.bounds, self.b
        while True:
            next_end = self.heap[0][0] if self.heap else None
            next_bound = bounds[b] if b < len(bounds) else None
            at = min(x for x in (next_end, next_bound, t) if x is not None)
            if self.queues and at - self.swept >= timedelta(hours=1):
                self._expire(at)
                self.swept = at
            if next_bound is not None and next_bound <= t and (next_end is None or next_bound <= next_end):
                self._epoch(next_bound)
                b += 1
                self._drain(next_bound)
                continue
            if next_end is not None and next_end <= t:
                ends, serial, name = heapq.heappop(self.heap)
                r = self.running.get(name)
                if r is not None and r.serial == serial:
                    self._stop(r, ends)
                    self.res.finished += 1
                    self._drain(ends)
                continue
            break
        self.b = b


def percentile(xs: list[float], p: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def summarize(res: SimResult) -> dict[str, Any]:
    """The report: cost, contract and block utilisation and waste, waiting, share per provider, failures."""
    start, end = res.start, res.end
    reserved_rows = []
    reserved_cost = 0.0
    for u in res.reserved:
        a, b = max(u.start, start), min(u.end, end)
        hours = max(0.0, (b - a).total_seconds() / 3600)
        avail = u.gpus * hours
        paid = avail * u.price_per_gpu_hour if u.take_or_pay else u.used_gpu_hours * u.price_per_gpu_hour
        reserved_cost += paid
        waste = max(0.0, avail - u.used_gpu_hours)
        reserved_rows.append({
            "name": u.name, "kind": u.kind, "provider": u.provider, "gpuModel": u.gpu_model, "gpus": u.gpus,
            "start": u.start.isoformat(), "end": u.end.isoformat(), "committedGpuHours": round(avail, 2),
            "usedGpuHours": round(u.used_gpu_hours, 2),
            "utilisation": round(u.used_gpu_hours / avail, 4) if avail else None,
            "wasteGpuHours": round(waste, 2),
            "wasteDollars": round(waste * u.price_per_gpu_hour, 2) if u.take_or_pay else 0.0,
            "cost": round(paid, 2)})
    total_gh = sum(res.gpu_hours_by_provider.values())
    waits = [w for w in res.waits_h if w > 1e-9]
    return {
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "workloads": res.workloads, "placed": res.placed, "finished": res.finished, "moved": res.moved,
        "failed": {"neverFits": res.failed_never, "waitedTooLong": res.failed_wait,
                   "stillQueuedAtEnd": res.still_queued, "examples": list(res.failed_examples)},
        "cost": {"total": round(reserved_cost + res.on_demand_dollars, 2),
                 "reserved": round(reserved_cost, 2), "onDemand": round(res.on_demand_dollars, 2)},
        "waiting": {"waited": len(waits), "meanHours": round(sum(res.waits_h) / len(res.waits_h), 3)
                    if res.waits_h else 0.0,
                    "p50Hours": round(percentile(res.waits_h, 50), 3),
                    "p95Hours": round(percentile(res.waits_h, 95), 3),
                    "maxHours": round(max(res.waits_h, default=0.0), 3)},
        "gpuHours": round(total_gh, 2),
        "providers": {p: {"gpuHours": round(gh, 2), "share": round(gh / total_gh, 4) if total_gh else 0.0}
                      for p, gh in sorted(res.gpu_hours_by_provider.items())},
        "capacityTypes": {k: round(v, 2) for k, v in sorted(res.gpu_hours_by_capacity.items())},
        "reserved": reserved_rows,
        "weekly": [{p: round(v, 1) for p, v in sorted(w.items())} for w in res.weekly],
    }
