"""The resilience suite's rig: the real service (``awan serve``) in a subprocess that can be SIGKILLed,
against the mock clouds of this process, and the invariant check (mock inventory vs the store).

Used by the tests and by ``python -m tests.resilience.report``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from controlplane.auth import create_token
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from controlplane.store.models import WorkloadState

REPO = Path(__file__).resolve().parents[2]
WORKLOAD_TAGS = ("awan:workload", "awan-workload")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manifest(name: str, gpus: int = 8, model: str = "H100", team: str = "research",
             capacity: str | None = None) -> str:
    extra = f", capacityTypes: [{capacity}]" if capacity else ""
    return (f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {name}, team: {team}}}\n"
            f"spec: {{kind: inference, gpus: {{model: {model}, count: {gpus}, perNode: 8}}{extra}}}\n")


def prepare_db(db_url: str) -> tuple[str, str]:
    """Migrate and mint (member token, admin token)."""
    db = Database.from_url(db_url)
    try:
        upgrade(db.engine)
        with db.session() as s:
            member, _ = create_token(s, "research", "member")
            admin, _ = create_token(s, "ops", "cluster-admin")
    finally:
        db.dispose()
    return member, admin


@dataclass
class ServiceProc:
    """``awan serve`` as a child process. ``env`` adds AWAN_* settings (defaults otherwise)."""

    db_url: str
    config: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    replica: str = "resilience-replica"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> ServiceProc:
        env = {**os.environ, "AWAN_DB_URL": self.db_url, "AWAN_CONFIG": str(self.config),
               "AWAN_PORT": str(self.port), "AWAN_REPLICA_ID": self.replica, "PYTHONPATH": str(REPO),
               **self.env}
        env.pop("AWAN_HOST", None)   # the default bind address is under test
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "controlplane.cli.main", "serve"], cwd=REPO, env=env,
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout_s: float = 180.0) -> None:   # generous: a loaded 2-core machine is slow to import
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"service exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                # 5 s, not 1: a replica whose first pass holds the GIL on a loaded machine answers late,
                # and a 1 s bound never let it count as ready (CI: the 3-replica test ran into its timeout)
                if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("service did not become ready")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, the lease and row locks are left as they were."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def sigkill_and_restart(self) -> ServiceProc:
        """SIGKILL, then the same replica again (same id: it resumes its lease at once)."""
        self.kill()
        return ServiceProc(self.db_url, self.config, self.log_path, dict(self.env), replica=self.replica).start()

    def calm(self) -> contextlib.AbstractContextManager[None]:
        """Nothing kills this one behind the test's back (see replicas.ServiceGroup.calm)."""
        return contextlib.nullcontext()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


def submit_all(url: str, token: str, manifests: Iterable[str]) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        r = c.post("/v1/workloads", content="\n---\n".join(manifests), headers={"Content-Type": "application/yaml"})
        if r.status_code != 201:
            raise RuntimeError(f"submit: {r.status_code} {r.text[:500]}")


def states(db_url: str) -> dict[str, str]:
    db = Database.from_url(db_url)
    try:
        with db.session() as s:
            return {r.name: r.state for r in repo.list_(s, limit=1_000_000, include_deleted=True)}
    finally:
        db.dispose()


def wait_all(db_url: str, want: str, names: Iterable[str], timeout_s: float) -> float:
    """Seconds until every named workload is in ``want``; raises with the stragglers otherwise."""
    names = set(names)
    t0 = time.monotonic()
    st: dict[str, str] = {}
    while time.monotonic() - t0 < timeout_s:
        st = states(db_url)
        if all(st.get(n) == want for n in names):
            return time.monotonic() - t0
        time.sleep(0.25)
    late = Counter(st.get(n, "missing") for n in names if st.get(n) != want)
    raise AssertionError(f"after {timeout_s:.0f} s not all {want}: {dict(late)}")


@dataclass
class Verdict:
    workloads: int = 0
    lost: list[str] = field(default_factory=list)          # not Running, or Running without its nodes
    duplicates: list[str] = field(default_factory=list)    # more live cloud resources than assigned nodes
    orphans: list[str] = field(default_factory=list)       # live cloud resources no Running workload wants

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicates or self.orphans)

    def __str__(self) -> str:
        return (f"{self.workloads} workloads: lost={self.lost[:5]} ({len(self.lost)}), duplicates="
                f"{self.duplicates[:5]} ({len(self.duplicates)}), orphans={self.orphans[:5]} ({len(self.orphans)})")


def _workload_of(res: dict[str, Any]) -> str:
    tags = res.get("tags") or {}
    for k in WORKLOAD_TAGS:
        if tags.get(k):
            return str(tags[k])
    return ""


# One row per machine in each mock's inventory: an AWS or OCI instance, an Azure virtualMachine (scale set
# members too), a GCP instance or TPU VM, a Kubernetes Node. Node pools, scale sets, queued resources and OCI
# cluster networks hold them.
NODE_KINDS = frozenset({"instance", "virtualmachine", "tpu-node", "node"})
HOLDER_KINDS = frozenset({"nodepool", "virtualmachinescaleset", "queued-resource", "clusternetwork"})
GONE_STATES = frozenset({"terminated", "deleted", "deleting", "preempted", "stopping", "stopped"})


def _live_nodes(res: dict[str, Any]) -> bool:
    """Not on its way out (an evicted Azure Spot VM is deallocated: it holds nothing)."""
    return not res.get("evicted") and str(res.get("state", "")).lower() not in GONE_STATES


def _kind(res: dict[str, Any]) -> str:
    return str(res.get("kind", "")).lower()


def check(db_url: str, clouds: Any, names: Iterable[str]) -> Verdict:
    """Every named workload Running, holding exactly its assigned nodes in the zones it was assigned to;
    no other tagged machine alive, and no node pool or scale set left for a workload that moved away."""
    db = Database.from_url(db_url)
    try:
        with db.session() as s:
            # Cloud tags hold the workload's key (team and name); ``names`` may be names or keys.
            rows = {r.key: r for r in repo.list_(s, limit=1_000_000)}
            key_of = {r.name: k for k, r in rows.items()}
            want = {n: (r.state, sum(a.nodes for a in r.assignments), {a.provider for a in r.assignments})
                    for n, r in rows.items()}
            where = {n: {(a.provider, a.region.lower()) for a in r.assignments} for n, r in rows.items()}
            zones = {n: {(a.provider, a.region.lower(), a.zone.lower()) for a in r.assignments}
                     for n, r in rows.items()}
    finally:
        db.dispose()
    names = [n if n in rows else key_of.get(n, n) for n in names]
    have: Counter[tuple[str, str]] = Counter()
    astray: Counter[str] = Counter()     # live nodes of a workload outside every zone it is assigned
    holders: list[tuple[str, str, str, str]] = []
    for cloud in clouds.servers:
        for res in clouds.backend(cloud).inventory():
            if not _live_nodes(res):
                continue
            if _kind(res) in NODE_KINDS:
                w = _workload_of(res)
                have[(w, cloud)] += 1
                place = (cloud, str(res.get("region", "")).lower(), str(res.get("zone", "")).lower())
                if place not in zones.get(w, set()):
                    astray[w] += 1
            elif _kind(res) in HOLDER_KINDS and _workload_of(res):
                holders.append((_workload_of(res), cloud, str(res.get("region", "")).lower(), str(res.get("id", ""))))
    v = Verdict(workloads=len(set(names)))
    for n in sorted(set(names)):
        state, nodes, provs = want.get(n, ("missing", 0, set()))
        got = sum(c for (w, _), c in have.items() if w == n)
        elsewhere = sum(c for (w, cl), c in have.items() if w == n and cl not in provs)
        if state != WorkloadState.RUNNING.value or got < nodes:
            v.lost.append(f"{n}:{state}:{got}/{nodes}")
        elif got > nodes or elsewhere:
            v.duplicates.append(f"{n}:{got}/{nodes}")
        elif astray[n]:     # Running on nodes in another zone than it is assigned: what it holds is not its own
            v.duplicates.append(f"{n}:{astray[n]} of {got} nodes outside its assigned zones")
    for (w, cloud), c in have.items():
        if w not in want or want[w][0] != WorkloadState.RUNNING.value:
            v.orphans.append(f"{cloud}:{w or '?'}x{c}")
    for w, cloud, region, rid in holders:
        if w not in want or want[w][0] != WorkloadState.RUNNING.value or (cloud, region) not in where[w]:
            v.orphans.append(f"{cloud}:{w}:{rid}")
    return v


def nodes_assigned_and_live(db_url: str, clouds: Any) -> tuple[int, int]:
    """(nodes assigned to workloads that hold assignments, live machines tagged with any workload): after
    a scenario has settled the two must be equal (issue 13: 289 live for 205 assigned)."""
    db = Database.from_url(db_url)
    try:
        with db.session() as s:
            assigned = sum(a.nodes for r in repo.list_(s, limit=1_000_000) for a in r.assignments)
    finally:
        db.dispose()
    live = sum(1 for cloud in clouds.servers for res in clouds.backend(cloud).inventory()
               if _live_nodes(res) and _kind(res) in NODE_KINDS and _workload_of(res))
    return assigned, live
