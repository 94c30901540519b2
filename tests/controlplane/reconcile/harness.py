"""Build controllers over fakes, and drive them pass by pass (no sleeping on wall-clock schedules)."""

from __future__ import annotations

from controlplane.model.manifest import parse_manifests
from controlplane.policy.model import PolicySet
from controlplane.reconcile.controller import Controller, LoopConfig
from controlplane.reconcile.leader import LeaderElector
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from tests.controlplane.reconcile.fakes import FakeCloud, FakeEngine, FakePlacer, FakeProvider, manifest


def make_controller(db: Database, cloud: FakeCloud, placer: FakePlacer, holder: str = "r1",
                    engine: FakeEngine | None = None, ttl_s: float = 15.0, **cfg: float) -> Controller:
    elector = LeaderElector(db, holder, ttl_s=ttl_s, renew_s=min(5.0, ttl_s / 3))
    config = LoopConfig(interval_s=0.05, resync_s=cfg.pop("resync_s", 3600), retry_base_s=cfg.pop("retry_base_s", 0.01),
                        **cfg)  # type: ignore[arg-type]
    return Controller(db, {"aws": FakeProvider("aws", cloud)}, engine or FakeEngine(cloud), elector=elector,
                      policies=PolicySet.default, config=config, place=placer, snapshot=lambda: None)


def submit(db: Database, name: str, team: str = "research", gpus: int = 16) -> None:
    w = parse_manifests(manifest(name, team, gpus))[0]
    with db.session() as s:
        repo.submit(s, name=w.name, team=w.team, spec=w.to_manifest(), priority=0, gpus=w.total_gpus)


def states(db: Database) -> dict[str, str]:
    with db.session() as s:
        return {w.name: w.state for w in repo.list_(s, include_deleted=True)}


def drive(c: Controller, passes: int = 4) -> None:
    c.elector.step()
    for _ in range(passes):
        c.tick()
        c.wait_idle()
