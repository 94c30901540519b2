"""Live move off an ending Capacity Block, in the real loop (a service with its controller, the AWS mock and
its Kubernetes cluster, the kubernetes client judging): a reserved-only training gang waits, the purchasing
policy (auto) buys a 24-hour block for it, it runs there. A second block is bought for later. The AWS mock's
clock is moved to 1.5 hours before the first block's end (moveBeforeEnd is 2 hours): the gang is moved
before the end, placed into the second block and runs again from its checkpoint (a new incarnation, not a retry: the new
pods carry the same checkpoint), while EC2 would reclaim the first block's instances 30 minutes before its
end. Past that end it is still running: nothing was lost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from controlplane.api import create_app
from controlplane.auth import create_token
from controlplane.dispatch.render import L_WORKLOAD
from controlplane.model.identity import workload_key
from controlplane.reconcile.runtime import build_controller
from controlplane.settings import Settings
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from providers.capabilities import CapacityBlockQuery
from providers.registry import build_providers
from tests.e2e.test_run_e2e import kube, wait_for
from tests.e2e.test_service_e2e import POLICIES, Service

pytestmark = pytest.mark.slow
CKPT = "s3://ckpt/move/"
PURCHASING = """apiVersion: awan.dev/v1alpha1
kind: PurchasingPolicy
metadata: {name: blocks}
spec:
  mode: auto
  providers: [aws]
  regions: [us-east-1]
  instanceTypes: [p5.48xlarge]
  maxPricePerGpuHour: 20
  budget: {total: 10000}
  hours: 24
  moveBeforeEnd: 2h
"""
MANIFEST = f"""apiVersion: awan.dev/v1alpha1
kind: GPUWorkload
metadata: {{name: gang, team: research}}
spec:
  kind: training
  gpus: {{model: [H100], count: 16, perNode: 8}}
  capacityType: [reserved]
  location: {{regions: ['aws:us-east-1']}}
  template:
    image: ghcr.io/example/trainer:1
    command: [sh, -c, 'echo ckpt=$CKPT; sleep infinity']
  run: {{maxRetries: 2, checkpoint: {{uri: '{CKPT}', env: CKPT}}}}
"""


def mock_now(mc: Any) -> datetime:
    r = httpx.get(mc.urls["aws"] + "/_mock/clock", timeout=30)
    return datetime.fromisoformat(r.json()["now"])


def advance_to(mc: Any, when: datetime) -> None:
    r = httpx.post(mc.urls["aws"] + "/_mock/clock", json={"now": when.isoformat()}, timeout=30)
    assert r.status_code == 200, r.text


@pytest.fixture
def service(mock_aws: Any, tmp_path: Path) -> Iterator[tuple[Service, str, Any, Any]]:
    base = mock_aws.config()
    config = base.model_copy(update={"providers": {"aws": base.providers["aws"].model_copy(
        update={"regions": ["us-east-1"]})}})
    policy = tmp_path / "90-purchasing.yaml"
    policy.write_text(PURCHASING)
    db_url = f"sqlite:///{tmp_path}/awan.db"
    providers = build_providers(config)
    db = Database.from_url(db_url)
    upgrade(db.engine)
    with db.session() as s:
        member, _ = create_token(s, "research", "member")
    settings = Settings(db_url=db_url, reconcile_interval_s=0.2, lease_ttl_s=5, lease_renew_s=1,
                        policies=[*POLICIES, str(policy)])

    def factory(ctx: Any) -> Any:
        from controlplane.store.stack_state import DbStackStateStore
        from infra.engines.select import select_engine

        c = build_controller(ctx, engine=select_engine("local", config=config, store=DbStackStateStore(ctx.db)))
        # The controller's clock is the cloud's: the test moves the AWS mock's clock forward.
        assert c.buying is not None
        c.buying.set_clock(lambda: mock_now(mock_aws))
        return c

    app = create_app(settings, db=db, providers=providers, config=config, controller_factory=factory)
    with Service(app) as svc:
        yield svc, member, mock_aws, providers["aws"]
    for p in providers.values():
        p.close()
    db.dispose()


def test_a_gang_on_an_ending_block_is_moved_before_the_end_with_nothing_lost(service: Any) -> None:
    svc, token, mc, aws = service
    key = workload_key("research", "gang")
    with httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        r = c.post("/v1/workloads", content=MANIFEST, headers={"Content-Type": "application/yaml"})
        assert r.status_code == 201, r.text
        w = wait_for(c, "gang", lambda w: w["state"] == "Running", "Running in the block bought for it", 600)
        first = {a["reservation"] for a in w["assignments"]}
        assert len(first) == 1 and next(iter(first)).startswith("cr-"), w["assignments"]
        (block_a,) = first
        assert w["restarts"] == 0

        # A second block, bought by hand for two days: where the gang can go when the first one ends.
        blocks = aws.supports_capacity_blocks()
        offer = blocks.find_capacity_blocks(CapacityBlockQuery("us-east-1", "p5.48xlarge", count=2, hours=48))[0]
        block_b = aws.purchase_capacity_block(offer).reservation_id
        a_end = next(p.ends_at for p in aws.capacity().pools if p.reservation_id == block_a)
        assert a_end is not None

        time.sleep(2)   # a few passes with 24 hours left: nothing moves
        w = c.get("/v1/workloads/gang").json()
        assert w["state"] == "Running" and {a["reservation"] for a in w["assignments"]} == {block_a}

        advance_to(mc, a_end - timedelta(minutes=90))     # the block ends in 1.5 h: within moveBeforeEnd
        w = wait_for(c, "gang", lambda w: w["state"] == "Running" and w["restarts"] == 1, "moved and Running", 600)
        assert {a["reservation"] for a in w["assignments"]} == {block_b}
        events = c.get("/v1/workloads/gang/events").json()["items"]
        moves = [e for e in events if e["action"] == "failover"]
        assert len(moves) == 1 and moves[0]["details"]["trigger"] == "block-ending", moves
        assert block_a in moves[0]["details"]["reason"]
        logs = c.get("/v1/workloads/gang/logs").json()["items"]
        assert len(logs) == 2 and all(it["incarnation"] == 1 and f"ckpt={CKPT}" in it["text"] for it in logs), logs

        # Only the new incarnation's pods are left; past the first block's end the gang still runs.
        v1 = kube(mc, "aws", "us-east-1")
        deadline = time.monotonic() + 120
        while {p.metadata.labels["awan.dev/incarnation"]
               for p in v1.list_namespaced_pod("default", label_selector=f"{L_WORKLOAD}={key}").items} != {"1"}:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        advance_to(mc, a_end + timedelta(minutes=5))
        time.sleep(3)
        w = c.get("/v1/workloads/gang").json()
        assert w["state"] == "Running" and w["restarts"] == 1 and w["reason"] in ("", None), w
        assert (w["retries"], w["preemptions"]) == (0, 1), w   # a planned move is not a retry
