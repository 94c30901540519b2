"""One measurement of the e2e suite, in its own process (``python -m bench.e2e.worker N``): prints one JSON
object on stdout.

It starts the CoreWeave mock (its CKS cluster runs the pods), submits N one-node batch workloads with a
``spec.template`` through ``submit()`` (the API's own path: parse, validate, one transaction), then drives the
real Controller pass after pass: placement, the local engine provisioning NodePools through the real adapter
over HTTP, the run step rendering and creating each workload's objects in the cluster through the official
``kubernetes`` client. A pod watch (same client) stamps when each workload's first pod appears (dispatched)
and when its pods are all Running. The pods ``sleep infinity`` so a Running pod stays Running.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

GPU_MODEL = "H100"
NODES = 1          # one node a workload: 8 GPUs, perNode 8


def manifests(n: int, prefix: str = "e2e") -> str:
    return "\n---\n".join(
        f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {prefix}-{i:05d}, team: bench}}\n"
        f"spec:\n  kind: batch\n  gpus: {{model: [{GPU_MODEL}], count: {8 * NODES}, perNode: 8}}\n"
        f"  capacityType: [on-demand]\n  location: {{regions: ['coreweave:*']}}\n"
        f"  template:\n    image: ghcr.io/example/batch:1\n    command: [sh, -c, 'echo start; sleep infinity']\n"
        for i in range(n))


class PodWatch:
    """The official client's pod watch on the objects Awan owns: per workload label, when its first pod was
    seen (dispatched) and when ``NODES`` of its pods were Running."""

    def __init__(self, url: str, token: str, n: int) -> None:
        from kubernetes import client, watch

        cfg = client.Configuration()
        cfg.host = url
        cfg.api_key, cfg.api_key_prefix = {"authorization": token}, {"authorization": "Bearer"}
        self.api = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api)
        self.n = n
        self.first_seen: dict[str, float] = {}
        self.running_at: dict[str, float] = {}
        self._running: dict[str, set[str]] = {}
        self.done = threading.Event()
        self._w = watch.Watch()  # type: ignore[no-untyped-call]
        self._t = threading.Thread(target=self._follow, daemon=True)

    def start(self) -> None:
        self._t.start()
        time.sleep(0.5)   # open before the first object goes in

    def _follow(self) -> None:
        from controlplane.dispatch.render import L_WORKLOAD

        for ev in self._w.stream(self.core.list_namespaced_pod, "default",  # type: ignore[no-untyped-call]
                                 label_selector="app.kubernetes.io/managed-by=awan", timeout_seconds=7200):
            now = time.monotonic()
            pod = ev["object"]
            key = (pod.metadata.labels or {}).get(L_WORKLOAD, "")
            self.first_seen.setdefault(key, now)
            if pod.status and pod.status.phase == "Running" and key not in self.running_at:
                self._running.setdefault(key, set()).add(pod.metadata.name)
                if len(self._running[key]) >= NODES:
                    self.running_at[key] = now
                    if len(self.running_at) >= self.n:
                        self.done.set()
                        return

    def stop(self) -> None:
        self._w.stop()  # type: ignore[no-untyped-call]
        self.api.close()  # type: ignore[no-untyped-call]


def steady_rate(stamps: list[float]) -> float | None:
    """Workloads dispatched per second between the 10th and the 90th percentile of the dispatch stamps (the
    ramp at each end left out); None under 10 workloads."""
    if len(stamps) < 10:
        return None
    s = sorted(stamps)
    lo, hi = int(len(s) * 0.1), int(len(s) * 0.9) - 1
    span = s[hi] - s[lo]
    return round((hi - lo) / span, 2) if span > 0 else None


def grant(url: str, token: str, nodes: int) -> None:
    """Room for every workload at once: ``nodes`` free in every pool of the mock's stock, and an org quota
    of ``nodes`` per (zone, instance type) in the cluster's quota ConfigMap (the one capacity figure CKS
    publishes; written through the official client, as the operator granting it would)."""
    import httpx
    from kubernetes import client

    from providers.coreweave.capacity import QUOTA_CONFIGMAP, QUOTA_NAMESPACE

    httpx.post(f"{url}/_mock/capacity", json={"free": nodes}, timeout=60).raise_for_status()
    cfg = client.Configuration()
    cfg.host = url
    cfg.api_key, cfg.api_key_prefix = {"authorization": token}, {"authorization": "Bearer"}
    with client.ApiClient(cfg) as api:
        core = client.CoreV1Api(api)
        cm = core.read_namespaced_config_map(QUOTA_CONFIGMAP, QUOTA_NAMESPACE)
        core.patch_namespaced_config_map(QUOTA_CONFIGMAP, QUOTA_NAMESPACE,
                                         {"data": {k: str(nodes) for k in (cm.data or {})}})


def states(db: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from controlplane.store.models import Workload

    with db.session() as s:
        return {st: int(c) for st, c in s.execute(select(Workload.state, func.count()).group_by(Workload.state))}


def pending_messages(db: Any) -> list[str]:
    from sqlalchemy import select

    from controlplane.store.models import Workload

    with db.session() as s:
        return sorted({w.message for w in s.scalars(select(Workload).where(Workload.state != "Running"))})[:5]


def measure(n: int, timeout_s: float = 3600.0, stack_workers: int = 8, progress: bool = False) -> dict[str, Any]:
    from controlplane.api.workload_service import submit
    from controlplane.auth import create_token
    from controlplane.dispatch.clusters import ClusterSet
    from controlplane.model.identity import workload_key
    from controlplane.reconcile.controller import Controller, LoopConfig
    from controlplane.reconcile.leader import LeaderElector
    from controlplane.reconcile.policy_source import PolicySource
    from controlplane.reconcile.runtime import stack_config
    from controlplane.store.db import Database
    from controlplane.store.migrate import upgrade
    from controlplane.store.stack_state import DbStackStateStore
    from infra.engines.select import select_engine
    from mockclouds.launcher import MOCK_SECRETS, MockClouds
    from providers.registry import build_providers

    mc = MockClouds(clouds=("coreweave",)).start()
    tmp = tempfile.TemporaryDirectory(prefix="awan-e2e-bench-")
    try:
        url = mc.urls["coreweave"]
        grant(url, MOCK_SECRETS["coreweave"]["token"], n * NODES + 8)
        cfg = mc.config()
        db = Database.from_url(f"sqlite:///{Path(tmp.name) / 'e2e.db'}")
        upgrade(db.engine)
        providers = build_providers(cfg)
        engine = select_engine("local", config=cfg, store=DbStackStateStore(db))
        with db.session() as s:
            _, principal = create_token(s, "bench", "member")
        elector = LeaderElector(db, "e2e", ttl_s=3600, renew_s=1200)
        if not elector.step():
            raise RuntimeError("e2e: could not take the leader lease")
        ctl = Controller(db, providers, engine, elector=elector, policies=PolicySource(db, []).current,
                         clusters=ClusterSet(cfg),
                         config=LoopConfig(stack_workers=stack_workers, provider_concurrency=stack_workers,
                                           retry_base_s=0.2, retry_max_s=5.0, short_bound_s=3600,
                                           stack_config=stack_config(cfg)))
        pods = PodWatch(url, MOCK_SECRETS["coreweave"]["token"], n)
        pods.start()
        # Submit in chunks of 500 documents (the API's default cap); each workload's clock starts when its
        # chunk's submit() call starts.
        submitted_at: dict[str, float] = {}
        t0 = time.monotonic()
        for start in range(0, n, 500):
            prefix = f"e2e{start // 500}"
            ts = time.monotonic()
            res = submit(db, principal, manifests(min(500, n - start), prefix), "bench")
            for w in res.items:
                submitted_at[workload_key(w.team, w.name)] = ts
        submit_s = time.monotonic() - t0
        passes = 0
        try:
            while not pods.done.is_set() and time.monotonic() - t0 < timeout_s:
                ctl.tick()
                ctl.wait_idle(timeout_s)
                passes += 1
                if progress:
                    print(f"pass {passes} at {time.monotonic() - t0:.1f} s: {states(db)}, pods of "
                          f"{len(pods.first_seen)} seen, {len(pods.running_at)} Running", file=sys.stderr, flush=True)
            pods.done.wait(timeout=5)
            if progress and not pods.done.is_set():
                print(f"left: {pending_messages(db)}", file=sys.stderr, flush=True)
        finally:
            ctl.stop(release_lease=True, grace_s=60.0)
            pods.stop()
            for p in providers.values():
                close = getattr(p, "close", None)
                if callable(close):
                    close()
            db.dispose()
        from controlplane.dispatch.render import label_value

        by_label = {label_value(k): ts for k, ts in submitted_at.items()}
        lat = sorted(pods.running_at[k] - by_label[k] for k in pods.running_at if k in by_label)
        ok = len(lat) == n
        makespan = (max(pods.running_at.values()) - t0) if pods.running_at else float("nan")
        dispatched = [pods.first_seen[k] for k in by_label if k in pods.first_seen]
        return {"n": n, "ok": ok, "running": len(lat), "passes": passes, "submit_s": round(submit_s, 4),
                "all_running_s": round(makespan, 4),
                "first_dispatch_s": round(min(dispatched) - t0, 4) if dispatched else None,
                "dispatch_per_s": steady_rate(dispatched), "latencies_s": [round(x, 4) for x in lat]}
    finally:
        mc.stop()
        tmp.cleanup()


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 3600.0,
                             progress="-v" in sys.argv)))
