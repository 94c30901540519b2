"""Step 4: run what the workloads say (spec.template) on their nodes, follow it to the end, release the
capacity after the policy's idle timeout, and remove every object no current run owns.

One pass: read the rows (one short transaction), list what each cluster holds of Awan's by label, create
what is missing (create-or-get by deterministic name: a pass killed after creating and before recording
creates nothing twice; the next pass finds the objects and records them), read where each run is, then
write the transitions in one fenced transaction, each only if its row did not move meanwhile.

Shared (PostgreSQL, ``share`` given): every replica takes its fair share of the followed runs each round
with a dispatch lease a workload (creating its objects, starting its gang, following its pods) and of the
clusters to collect garbage in with a sweep lease a cluster; each change is written only while its
workload's lease is still ours (checked in the write's transaction). Releasing capacity after the idle
timeout (clearing assignments: the placer's ledger) stays with the leader, fenced by its term.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from controlplane.dispatch import gang
from controlplane.dispatch import status as st
from controlplane.dispatch.clusters import ClusterSet
from controlplane.dispatch.kube import Cluster, ClusterError, Owned
from controlplane.dispatch.render import (
    L_GROUP,
    L_INCARNATION,
    L_WORKLOAD,
    MANAGED_BY,
    MANAGER,
    Plan,
    Slot,
    label_value,
    render,
)
from controlplane.logs import get_logger
from controlplane.model.template import RestartPolicy
from controlplane.model.workload import GPUWorkload, TopologyDomain, WorkloadKind
from controlplane.reconcile.restarts import is_run
from controlplane.reconcile.sharing import WorkShare
from controlplane.store import audit, work_leases
from controlplane.store import workloads as repo
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import RunLog, Stack, Workload, WorkloadState
from providers.nodelabels import NVLINK_DOMAIN

log = get_logger("awan.running")
SELECTOR = f"{MANAGED_BY}={MANAGER}"
LOG_TAIL_LINES = 500
LOG_TAIL_BYTES = 64 * 1024
_FOLLOWED = (WorkloadState.STARTING.value, WorkloadState.RUNNING.value)
_FINISHED = (WorkloadState.SUCCEEDED.value, WorkloadState.FAILED.value)
_TERMINAL_REASONS = frozenset({"DeadlineExceeded"})   # a run past its deadline is not run again


@dataclass
class RowView:
    id: int
    key: str
    name: str
    team: str
    state: str
    restarts: int
    dispatched: bool
    message: str
    spec: dict[str, Any]
    slots: list[Slot]
    finished_at: datetime | None
    released_at: datetime | None
    has_assignments: bool
    preemptions: int = 0      # incarnations preemptions started: not retries

    @property
    def retries(self) -> int:
        """As ``restarts.retries``: the incarnations after the first, less the ones preemptions started."""
        return max(0, self.restarts - self.preemptions)


@dataclass
class Change:
    """What one pass decided for one row (applied only if the row is still where it was read)."""

    row: RowView
    state: str | None = None
    message: str | None = None
    dispatched: bool = False
    restart: bool = False
    exit_code: int | None = None
    reason: str = ""
    finished: bool = False
    release: bool = False
    event: tuple[str, dict[str, Any]] | None = None
    logs: list[tuple[int, str, str]] = field(default_factory=list)   # (rank, pod, text)


def _view(r: Workload) -> RowView:
    slots = [Slot(a.provider, a.region, a.pool, a.nodes, a.gpus // max(1, a.nodes), a.replica_group)
             for a in r.assignments]
    return RowView(r.id, r.key, r.name, r.team, r.state, r.restarts or 0, r.dispatched_at is not None,
                   r.message or "", r.spec, slots, r.finished_at, r.released_at, bool(r.assignments),
                   r.preemptions or 0)


def _kept(v: RowView) -> bool:
    """Whether the objects of ``v``'s current incarnation stay (running, or finished and not released)."""
    if not is_run(v.spec):
        return False
    return v.state in _FOLLOWED or (v.state in _FINISHED and v.released_at is None)


class RunStep:
    def __init__(self, db: Database, clusters: ClusterSet, *, actor: str, fenced: Callable[[], bool],
                 idle_timeout_s: Callable[[], float], clock: Callable[[], datetime] = utcnow,
                 sweep_every: int = 30, share: WorkShare | None = None, every_s: float = 2.0) -> None:
        self.db, self.clusters, self.actor, self.fenced = db, clusters, actor, fenced
        self.share, self.every_s = share, every_s   # shared: round leases, given back for ``every_s``
        self.idle_timeout_s, self.clock = idle_timeout_s, clock
        self._touched: set[tuple[str, str]] = set()
        self._passes = 0
        self._ran = False
        self.sweep_every = sweep_every

    # -- read ----------------------------------------------------------------------------------------
    def _rows(self) -> list[RowView]:
        with self.db.session() as s:
            states = [*_FOLLOWED, *_FINISHED]
            return [_view(r) for r in repo.list_(s, states=states, limit=1_000_000, light=True)]

    def _where(self, rows: list[RowView]) -> set[tuple[str, str]]:
        """The regions whose clusters are looked at: those of the runs and any dispatched to by this
        process; on the first pass and every ``sweep_every`` passes also those of every stack (a region
        Awan ever provisioned in may hold objects of a workload since re-placed or deleted, left by a
        controller that was killed)."""
        where = {s.cluster for v in rows for s in v.slots if is_run(v.spec)} | self._touched
        self._passes += 1
        self._ran = self._ran or any(is_run(v.spec) for v in rows)
        # The first pass always sweeps (a killed predecessor may have left objects); later ones only once
        # this process has seen runs: a fleet of capacity reservations costs the clusters nothing.
        if self._passes > 1 and (not self._ran or (self._passes - 1) % self.sweep_every):
            return where
        self._touched = {s.cluster for v in rows for s in v.slots if is_run(v.spec)}
        with self.db.session() as s:
            for spec in s.scalars(select(Stack.spec)):
                if spec and spec.get("provider") and spec.get("region"):
                    where.add((str(spec["provider"]), str(spec["region"])))
        return where

    def _owned(self, rows: list[RowView]) -> dict[str, tuple[Cluster, Owned]]:
        return self._list(self.clusters.for_regions(self._where(rows)))

    def _list(self, clusters: list[Cluster]) -> dict[str, tuple[Cluster, Owned]]:
        out: dict[str, tuple[Cluster, Owned]] = {}
        for c in clusters:
            try:
                out[c.name] = (c, c.owned(SELECTOR))
            except ClusterError as e:
                log.warning("cluster did not answer", cluster=c.name, error=str(e))
        return out

    # -- one pass ------------------------------------------------------------------------------------
    def tick(self) -> None:
        if self.share is not None:
            self._shared_tick(self.share)
            return
        if not self.fenced():
            return
        rows = self._rows()
        owned = self._owned(rows)
        changes: list[Change] = []
        for v in rows:
            if not is_run(v.spec):
                continue
            ch = self._follow(v, owned) if v.state in _FOLLOWED else self._maybe_release(v)
            if ch is not None:
                changes.append(ch)
        self._apply(changes)
        self._collect(owned)

    def _shared_tick(self, share: WorkShare) -> None:
        """One round of this replica's share: the runs it took, the clusters it sweeps; the leader also
        releases idle capacity. Every claim is given back at the end with a backoff of a round."""
        rows = self._rows()
        followed = [v for v in rows if is_run(v.spec) and v.state in _FOLLOWED]
        runs = share.take(work_leases.DISPATCH, [v.key for v in followed])
        sweeps: dict[str, int] = {}
        try:
            by_name = {c.name: c for c in self.clusters.for_regions(self._where(rows))}
            sweeps = share.take(work_leases.SWEEP, sorted(by_name))
            mine = [v for v in followed if v.key in runs]
            need = {c.name: c for c in self.clusters.for_regions({s.cluster for v in mine for s in v.slots})}
            need.update({n: by_name[n] for n in sweeps})
            owned = self._list([need[n] for n in sorted(need)])
            changes = [ch for v in mine if (ch := self._follow(v, owned)) is not None]
            self._apply(changes, runs=runs)
            if self.fenced():   # the leader's: capacity released is the placer's business
                self._apply([ch for v in rows if is_run(v.spec) and v.state not in _FOLLOWED
                             and (ch := self._maybe_release(v)) is not None])
            self._collect({n: owned[n] for n in sweeps if n in owned})
            if self._passes % (10 * self.sweep_every) == 1 and self.fenced():
                # Finished runs' dispatch leases, free for an hour: the rows would only grow otherwise.
                work_leases.prune(self.db, work_leases.DISPATCH, idle_s=3600.0)
        finally:
            share.give_back(work_leases.DISPATCH, runs, self.every_s)
            share.give_back(work_leases.SWEEP, sweeps, self.every_s)

    def _follow(self, v: RowView, owned: dict[str, tuple[Cluster, Owned]]) -> Change | None:
        w = GPUWorkload.model_validate(v.spec)
        namespaces: dict[tuple[str, str], str] = {}
        clusters: dict[tuple[str, str], Cluster] = {}
        for s in v.slots:
            cfg = self.clusters.config_for(s.provider, s.region)
            if cfg is None:
                msg = (f"no Kubernetes cluster configured for {s.provider}/{s.region}: add a `clusters` entry "
                       "to the configuration")
                return Change(v, message=msg, event=("dispatch-blocked", {"why": msg})) if v.message != msg else None
            namespaces[s.cluster] = cfg.namespace
            self._touched.add(s.cluster)
            client = self.clusters.for_region(s.provider, s.region)
            assert client is not None
            clusters[s.cluster] = client
        plan = render(w, v.key, v.restarts, v.slots, namespaces)
        if plan.error:
            return Change(v, state=WorkloadState.FAILED.value, message=plan.error, reason="Unrunnable", finished=True,
                          event=("failed", {"reason": "Unrunnable", "why": plan.error}))
        parts: list[st.RunStatus] = []
        holds: list[str] = []
        created: list[str] = []
        pods_by_cluster: dict[str, list[st.PodView]] = {}
        for unit in plan.units:
            client = clusters[unit.cluster]
            seen = owned.get(client.name)
            if seen is None:
                return None             # that cluster did not answer this pass: nothing can be told
            mine = _mine(seen[1], v.key, v.restarts)
            have = {(o.get("kind"), o["metadata"]["name"]): o for o in mine.objects}
            for obj in unit.objects:
                if (obj["kind"], obj["metadata"]["name"]) in have:
                    continue
                try:
                    if client.create(obj):
                        created.append(f"{obj['kind']}/{obj['metadata']['name']}")
                except ClusterError as e:
                    log.warning("create failed", workload=v.key, object=obj["metadata"]["name"], error=str(e))
                    return Change(v, message=f"dispatch: {e}"[:1000]) if v.message != f"dispatch: {e}"[:1000] else None
                have[(obj["kind"], obj["metadata"]["name"])] = obj
            main = next(o for o in unit.objects if o["kind"] in ("Job", "Deployment"))
            # Inference: several replica groups may share a cluster; each follows its own pods.
            group = main["metadata"]["labels"].get(L_GROUP)
            pods = [st.pod_view(p) for p in mine.pods if group is None or st.group_of(p) == group]
            pods_by_cluster.setdefault(client.name, []).extend(pods)
            live = have[(main["kind"], main["metadata"]["name"])]
            if w.spec.kind == WorkloadKind.TRAINING and main["kind"] == "Job":
                try:
                    hold = self._start_gang(v, w, client, live, mine.pods, seen[1].pods)
                except ClusterError as e:
                    hold = f"gang start: {e}"
                    log.warning("gang start failed", workload=v.key, error=str(e))
                if hold:
                    holds.append(hold)
            parts.append(st.job_status(live, pods) if main["kind"] == "Job" else st.deployment_status(live, pods))
        run = st.combine(parts)
        if holds and run.phase == st.Phase.STARTING:
            run = replace(run, message="; ".join(holds))
        ch = Change(v)
        if not v.dispatched:
            ch.dispatched = True
            ch.event = ("dispatched", {"incarnation": v.restarts, "objects": sorted(f"{k}/{n}" for k, n in plan.names),
                                       "created": created})
        return self._transition(v, w, plan, run, ch, clusters, pods_by_cluster)

    def _start_gang(self, v: RowView, w: GPUWorkload, client: Cluster, job: dict[str, Any],
                    pods: list[dict[str, Any]], awan_pods: list[dict[str, Any]]) -> str:
        """All-or-nothing start (dispatch/gang.py): resume the suspended Job once every node of the gang's
        pools is Ready and fits; then, once all its pods exist, pin each gated pod's rank block to its
        NVLink domain and ungate them together. Returns why the gang still waits ("" once started)."""
        suspended = bool((job.get("spec") or {}).get("suspend"))
        live = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                and not (p.get("metadata") or {}).get("deletionTimestamp")]
        waiting = [p for p in live if gang.gated(p)]
        if not suspended and not waiting:
            return ""
        want: dict[str, int] = {}
        for s in v.slots:
            want[s.pool] = want.get(s.pool, 0) + s.nodes
        gpn = max(s.gpus_per_node for s in v.slots)
        nvlink, size = w.spec.topology.domain == TopologyDomain.NVLINK, w.spec.topology.domain_size
        views = gang.node_views(client.nodes(gang.node_selector(want)), awan_pods, label_value(v.key), v.restarts)
        name = job["metadata"]["name"]
        if suspended:
            hold = gang.admit(want, gpn, views, nvlink=nvlink, domain_gpus=size)
            if not hold.ready:
                return hold.why
            client.resume(name)
            log.info("gang admitted", workload=v.key, job=name, nodes=sum(want.values()))
            return ""
        ranks = sum(want.values())
        if len(live) < ranks:
            return f"gang starting: {len(live)}/{ranks} pods created"
        fit = [n for n in views if n.usable]
        block: int = 0
        domains: tuple[str, ...] = ()
        if nvlink and any(n.domain for n in fit):
            block = gang.block_size(ranks, size, gpn, fit)
            got = gang.assign_domains(ranks, block, views, gpn, gang.pinned(live, block))
            if got is None:
                return f"gang held: no NVLink domain with room for each block of {block} ranks"
            domains = got
        for p in waiting:
            r = gang.rank_of(p)
            sel: dict[str, str] = {NVLINK_DOMAIN: domains[r // block]} if block and r is not None else {}
            client.ungate(p, gang.GATE, sel)
        log.info("gang ungated", workload=v.key, job=name, pods=len(waiting), domains=sorted(set(domains)))
        return ""

    def _transition(self, v: RowView, w: GPUWorkload, plan: Plan, run: st.RunStatus, ch: Change,
                    clusters: dict[tuple[str, str], Cluster], pods: dict[str, list[st.PodView]]) -> Change | None:
        if run.phase == st.Phase.SUCCEEDED:
            ch.state, ch.exit_code, ch.reason, ch.finished = WorkloadState.SUCCEEDED.value, 0, "Completed", True
            ch.message = f"{run.want} pod(s) completed"
            ch.logs = self._tails(clusters, pods)
            ch.event = ("succeeded", {"incarnation": v.restarts, "pods": run.want})
        elif run.phase == st.Phase.FAILED:
            retry = (w.spec.run.restart_policy == RestartPolicy.ON_FAILURE and run.reason not in _TERMINAL_REASONS
                     and v.retries < w.spec.run.max_retries)
            what = run.message or run.reason
            if retry:
                ch.restart, ch.state = True, WorkloadState.STARTING.value
                ch.message = f"run failed ({what}); retry {v.retries + 1} of {w.spec.run.max_retries}"
                ch.event = ("retry", {"restarts": v.retries + 1, "maxRetries": w.spec.run.max_retries,
                                      "exitCode": run.exit_code, "reason": run.reason})
            else:
                ch.state, ch.exit_code, ch.reason, ch.finished = WorkloadState.FAILED.value, run.exit_code, \
                    run.reason[:64], True
                used = f" after {v.retries} retries" if v.retries else ""
                ch.message = f"run failed{used}: {what}"[:1000]
                ch.logs = self._tails(clusters, pods)
                ch.event = ("failed", {"exitCode": run.exit_code, "reason": run.reason, "restarts": v.retries})
        elif run.phase == st.Phase.RUNNING and v.state != WorkloadState.RUNNING.value:
            ch.state, ch.message = WorkloadState.RUNNING.value, f"{run.running}/{run.want} pods running"
            ch.event = ch.event or ("running", {"pods": run.running})
            if ch.dispatched:       # both at once: keep the dispatch record, then the running one
                ch.event = ("dispatched+running", {"pods": run.running, "incarnation": v.restarts})
        elif run.phase == st.Phase.STARTING:
            msg = run.message or f"{run.running}/{run.want} pods running"
            if msg != v.message:
                ch.message = msg
        elif run.phase == st.Phase.LOST:
            msg = f"{run.message}; waiting for the nodes to be replaced"
            if msg != v.message:
                ch.message = msg
        if ch.state is None and ch.message is None and not ch.dispatched:
            return None
        return ch

    def _tails(self, clusters: dict[tuple[str, str], Cluster], pods: dict[str, list[st.PodView]]
               ) -> list[tuple[int, str, str]]:
        by_name = {c.name: c for c in clusters.values()}
        out: list[tuple[int, str, str]] = []
        for cname, views in pods.items():
            for p in sorted(views, key=lambda p: p.rank):
                try:
                    text = by_name[cname].log(p.name, tail_lines=LOG_TAIL_LINES)
                except ClusterError as e:
                    text = f"(log unavailable: {e})"
                out.append((p.rank, p.name, text[-LOG_TAIL_BYTES:]))
        return out

    def _maybe_release(self, v: RowView) -> Change | None:
        if v.released_at is not None or v.finished_at is None or not v.has_assignments:
            return None
        idle = self.idle_timeout_s()
        if self.clock() - v.finished_at < timedelta(seconds=idle):
            return None
        return Change(v, release=True, message=f"{v.message}; capacity released after {idle:g} s idle"[:1000],
                      event=("released", {"idleTimeoutSeconds": idle}))

    # -- write ---------------------------------------------------------------------------------------
    def _apply(self, changes: list[Change], runs: dict[str, int] | None = None) -> None:
        """Write ``changes``: fenced by the leader's term, or (``runs``: shared dispatch) each by its
        workload's lease, checked in this transaction (a replica that lost a lease writes nothing of it)."""
        if not changes:
            return
        with self.db.session() as s:
            if runs is None:
                if not self.fenced():
                    return
                ours = {ch.row.key for ch in changes}
            else:
                assert self.share is not None
                ours = self.share.still_mine(s, work_leases.DISPATCH, runs)
                if len(ours) < len(runs):
                    log.info("dispatch lease lost; its changes dropped", workloads=sorted(set(runs) - ours))
            for ch in changes:
                if ch.row.key not in ours:
                    continue
                row = s.get(Workload, ch.row.id, with_for_update=True)
                if row is None or row.state != ch.row.state or (row.restarts or 0) != ch.row.restarts:
                    continue      # moved meanwhile (deleted, re-placed): the next pass reads it afresh
                now = self.clock()
                if ch.dispatched:
                    row.dispatched_at = now
                if ch.restart:
                    row.restarts = ch.row.restarts + 1
                    row.dispatched_at = None
                if ch.state is not None:
                    row.state = ch.state
                if ch.message is not None:
                    row.message = ch.message
                if ch.finished:
                    row.finished_at, row.exit_code, row.reason = now, ch.exit_code, ch.reason
                    for rank, pod, text in ch.logs:
                        s.add(RunLog(workload_id=row.id, incarnation=ch.row.restarts, rank=rank, pod=pod, text=text))
                if ch.release:
                    row.released_at = now
                    row.assignments.clear()     # the stacks drop its pools on their next run
                if ch.event is not None:
                    action, details = ch.event
                    for a in action.split("+"):
                        audit.record(s, actor=self.actor, action=a, kind="workload", subject=row.name, team=row.team,
                                     details=details)

    # -- garbage -------------------------------------------------------------------------------------
    def _collect(self, owned: dict[str, tuple[Cluster, Owned]]) -> None:
        """Delete every owned object no current run keeps: older incarnations, re-placed, released,
        deleted workloads. Rows not read this pass (Pending, Deleting...) keep nothing.

        The rows are read after the objects were listed: every object listed was created by someone who
        read its row as followed at that incarnation, so if the row still is, it is kept (with several
        replicas creating, rows read before the listing could miss a run that started in between)."""
        if not owned:
            return
        keep = {(label_value(v.key), str(v.restarts)) for v in self._rows() if _kept(v)}
        for cluster, held in owned.values():
            controllers = set()
            for o in held.objects:
                labels = (o.get("metadata") or {}).get("labels") or {}
                if (labels.get(L_WORKLOAD, ""), labels.get(L_INCARNATION, "")) in keep:
                    continue
                self._delete(cluster, str(o.get("kind")), o["metadata"]["name"])
                controllers.add((labels.get(L_WORKLOAD, ""), labels.get(L_INCARNATION, "")))
            for p in held.pods:
                labels = (p.get("metadata") or {}).get("labels") or {}
                k = (labels.get(L_WORKLOAD, ""), labels.get(L_INCARNATION, ""))
                # Pods whose controller is already gone (a cluster that did not cascade the delete).
                if k not in keep and k not in controllers:
                    self._delete(cluster, "Pod", p["metadata"]["name"])

    def _delete(self, cluster: Cluster, kind: str, name: str) -> None:
        try:
            cluster.delete(kind, name)
            log.info("deleted", cluster=cluster.name, kind=kind, name=name)
        except ClusterError as e:
            log.warning("delete failed", cluster=cluster.name, kind=kind, name=name, error=str(e))


def _mine(held: Owned, key: str, incarnation: int) -> Owned:
    lv = label_value(key)

    def ours(o: dict[str, Any]) -> bool:
        labels = (o.get("metadata") or {}).get("labels") or {}
        return labels.get(L_WORKLOAD) == lv and labels.get(L_INCARNATION) == str(incarnation)

    return Owned([o for o in held.objects if ours(o)], [p for p in held.pods if ours(p)])
