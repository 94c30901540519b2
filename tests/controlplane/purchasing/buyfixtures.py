"""Shared pieces of the purchasing tests: a store, the AWS adapter on the session's AWS mock (real boto3 over
HTTP), a waiting workload placed by the real placement pass, and the blocks the mock holds (read with boto3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from controlplane.model.manifest import parse_manifests
from controlplane.policy.model import PolicySet
from controlplane.reconcile import fleet, placing
from controlplane.reconcile.metrics import LoopMetrics
from controlplane.store import policies as policy_store
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from providers.aws.adapter import AWSProvider
from providers.base import Provider

POLICY = """
apiVersion: awan.dev/v1alpha1
kind: PurchasingPolicy
metadata: {{name: blocks}}
spec:
  mode: {mode}
  providers: [aws]
  regions: [us-east-1]
  instanceTypes: [p5.48xlarge]
  maxPricePerGpuHour: {max_price}
  budget: {{total: {total}}}
  hours: 24
"""


def policy(mode: str = "approve", max_price: float = 100.0, total: float = 1e7) -> str:
    return POLICY.format(mode=mode, max_price=max_price, total=total)


def store(tmp_path: Path, text: str | None = None) -> Database:
    db = Database.from_url(f"sqlite:///{tmp_path / 'awan.db'}")
    upgrade(db.engine)
    if text is not None:
        with db.session() as s:
            policy_store.put_document(s, text, "test")
    return db


def put_policy(db: Database, text: str) -> Database:
    with db.session() as s:
        policy_store.put_document(s, text, "test")
    return db


def aws(mock: Any) -> AWSProvider:
    """The adapter on us-east-1 only (every region would be asked for capacity on every pass)."""
    return AWSProvider(mock.config().providers["aws"].model_copy(update={"regions": ["us-east-1"]}))


def submit(db: Database, name: str = "pretrain", gpus: int = 16, extra: str = "") -> str:
    """A workload that only reserved capacity may serve: it waits (no-capacity) until a block exists."""
    w = parse_manifests("apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\n"
                        f"metadata: {{name: {name}, team: research}}\n"
                        f"spec: {{gpus: {{model: H100, count: {gpus}, perNode: 8}}, capacityType: [reserved],"
                        f" location: {{regions: ['aws:us-east-1']}}{extra}}}\n")[0]
    with db.session() as s:
        row, _ = repo.submit(s, name=w.name, team=w.team, spec=w.to_manifest(), priority=0, gpus=w.total_gpus)
        return row.key


def place(db: Database, providers: dict[str, Provider]) -> list[str]:
    """One real placement pass over the providers' live capacity; returns the keys left unplaced."""
    metrics = LoopMetrics()
    return placing.place_pending(db, snapshot=lambda: fleet.capacity_snapshot(providers, metrics),
                                 policies=PolicySet.default, place=placing.default_place, fenced=lambda: True,
                                 actor="controller:test", metrics=metrics, ttl_s=60)


def ec2(mock: Any) -> Any:
    c = mock.config().providers["aws"]
    return boto3.client("ec2", region_name="us-east-1", endpoint_url=mock.urls["aws"],
                        aws_access_key_id=c.secret("access_key_id"), aws_secret_access_key=c.secret("secret_access_key"))


def blocks(mock: Any) -> list[dict[str, Any]]:
    """Every Capacity Block the mock has sold in us-east-1, as boto3 reads it."""
    return list(ec2(mock).describe_capacity_blocks()["CapacityBlocks"])
