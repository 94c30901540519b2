"""End to end through the HTTP API of a real uvicorn on a loopback port: the real placement engine with the
shipped policies, the real adapters of all five mock clouds (SDKs over HTTP) and the real local engine
keeping stack state in the store. One workload pinned to each provider:
submit -> Placed -> provisioned in that mock cloud -> Running; delete -> its cloud resources are gone.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from controlplane.api import create_app
from controlplane.auth import create_token
from controlplane.model.identity import workload_key
from controlplane.reconcile.runtime import build_controller
from controlplane.settings import Settings
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from providers.registry import build_providers
from tests.controlplane.store.dbfixture import db_url  # noqa: F401

# A long end-to-end walk (five clouds, one minute or more on 2 cores): `make test-slow`, which CI runs.
pytestmark = pytest.mark.slow

POLICIES = sorted(str(p) for p in (Path(__file__).resolve().parents[2] / "policies").glob("*.yaml"))
# One 8 x H100 workload per provider, pinned by location.regions (provider-native region names).
PINNED = {"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus", "coreweave": "US-EAST-04",
          "oci": "us-ashburn-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _manifest(name: str, provider: str, region: str) -> str:
    return (f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {name}, team: research}}\n"
            f"spec:\n  kind: training\n  gpus: {{model: [H100], count: 8, perNode: 8}}\n"
            f"  capacityType: [on-demand]\n  location: {{regions: ['{provider}:{region}']}}\n")


class Service:
    def __init__(self, app: Any) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Service:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True   # what SIGTERM does: the lifespan stops the loop gracefully
        self.thread.join(timeout=60)
        # A service (and its reconcile loop) still running would go on acting on the session's shared mock
        # clouds after their reset, under whatever test runs next: that is a failure of this test.
        if self.thread.is_alive() and exc == (None, None, None):
            raise RuntimeError("the service did not stop within 60 s of should_exit")


@pytest.fixture
def running_service(db_url: str, mockclouds, mock_config) -> Iterator[tuple[Service, dict[str, str], Any]]:  # noqa: F811
    cfg = mock_config
    providers = build_providers(cfg)
    assert sorted(providers) == sorted(PINNED)
    db = Database.from_url(db_url)
    upgrade(db.engine)
    with db.session() as s:
        member, _ = create_token(s, "research", "member")
        admin, _ = create_token(s, "ops", "cluster-admin")
    settings = Settings(db_url=db_url, reconcile_interval_s=0.2, lease_ttl_s=5, lease_renew_s=1,
                        policies=POLICIES)

    def factory(ctx: Any) -> Any:
        # The engine shares the service's (guarded) providers: one set per process.
        return build_controller(ctx, engine_kind="local")      # the real placement engine and fleet snapshot

    app = create_app(settings, db=db, providers=providers, config=cfg, controller_factory=factory)
    with Service(app) as svc:
        yield svc, {"member": member, "admin": admin}, mockclouds
    for p in providers.values():
        close = getattr(p, "close", None)
        if close is not None:
            close()
    db.dispose()


def _wait_state(c: httpx.Client, name: str, want: str, timeout_s: float = 240) -> dict[str, Any]:
    # Generous: the first pass imports five clouds' SDKs and surveys them, on a shared 2-core machine.
    deadline = time.monotonic() + timeout_s
    w: dict[str, Any] = {}
    while time.monotonic() < deadline:
        w = c.get(f"/v1/workloads/{name}").json()
        if w["state"] == want:
            return w
        assert w["state"] != "Failed", w["message"]
        time.sleep(0.1)
    raise AssertionError(f"{name} stayed {w.get('state')}: {w.get('message')}")


def _inventory(mc: Any, provider: str, workload: str, team: str = "research") -> list[dict[str, Any]]:
    """What the mock cloud holds for one workload, by the workload tag/label every adapter sets (its key:
    team and name)."""
    rows = httpx.get(mc.urls[provider] + "/_mock/inventory").json()["resources"]
    key = workload_key(team, workload)
    return [r for r in rows if key in {str(v) for v in (r.get("tags") or {}).values()}
            and str(r.get("state", "")).lower() not in ("terminated", "deleted", "deleting")]


def test_submit_place_provision_run_delete(running_service):
    svc, tokens, mc = running_service
    names = {p: f"e2e-{p}" for p in PINNED}
    with httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {tokens['member']}"}, timeout=30) as c:
        for p, region in PINNED.items():
            r = c.post("/v1/workloads", content=_manifest(names[p], p, region),
                       headers={"Content-Type": "application/yaml"})
            assert r.status_code == 201, r.text
        for p, region in PINNED.items():
            w = _wait_state(c, names[p], "Running")
            assert {(a["provider"], a["region"]) for a in w["assignments"]} == {(p, region)}, w["assignments"]
            pl = c.get(f"/v1/workloads/{names[p]}/placement").json()
            assert pl["placement"]["placed"] is True
            # provisioned in that cloud and no other
            nodes = sum(a["nodes"] for a in w["assignments"])
            assert nodes > 0
            held = [r for r in _inventory(mc, p, names[p]) if r.get("kind") not in ("queued-resource",)]
            assert held, f"{p}: nothing in the mock's inventory for {names[p]}"
            for other in PINNED:
                if other != p:
                    assert _inventory(mc, other, names[p]) == [], f"{names[p]} leaked into {other}"
        stacks = c.get("/v1/stacks").json()["items"]
        assert sum(1 for s in stacks if s["status"] == "ok" and s["hasState"]) >= len(PINNED)

        for p in PINNED:
            assert c.delete(f"/v1/workloads/{names[p]}").status_code == 202
        for p in PINNED:
            _wait_state(c, names[p], "Deleted")
        for p in PINNED:
            for cloud in PINNED:
                assert _inventory(mc, cloud, names[p]) == [], f"{names[p]} still in {cloud}"
            actions = [e["action"] for e in c.get(f"/v1/workloads/{names[p]}/events").json()["items"]]
            assert actions[:4] == ["submitted", "placed", "provisioning", "running"], (p, actions)
            assert actions[-2:] == ["delete-requested", "deleted"], (p, actions)
