"""Headless Chromium loads the dashboard from a running service (real uvicorn), shows the submitted
workloads, and leaves a screenshot in a tmp dir."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest

from controlplane.api import create_app
from controlplane.auth import create_token
from controlplane.settings import Settings
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from tests.controlplane.reconcile.fakes import manifest
from tests.e2e.test_service_e2e import Service

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/system-deps.sh)")]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-dev-shm-usage", "--virtual-time-budget=8000"]


def test_dashboard_shows_workloads(tmp_path):
    url = f"sqlite:///{tmp_path}/awan.db"
    db = Database.from_url(url)
    upgrade(db.engine)
    with db.session() as s:
        token, _ = create_token(s, "research", "member")
    app = create_app(Settings(db_url=url, reconcile=False), db=db, providers={})
    with Service(app) as svc:
        with httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {token}"}) as c:
            for name in ("dash-train-1", "dash-serve-2"):
                assert c.post("/v1/workloads", content=manifest(name)).status_code == 201
        page = f"{svc.url}/dashboard?token={token}"
        profile = tmp_path / "profile"
        dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page],
                             capture_output=True, text=True, timeout=120)
        assert dom.returncode == 0, dom.stderr[-2000:]
        assert "dash-train-1" in dom.stdout and "dash-serve-2" in dom.stdout
        assert "2 workloads" in dom.stdout                      # the status line the JS writes
        shot = tmp_path / "dashboard.png"
        run = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
                              "--window-size=1280,900", page], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 and shot.exists() and shot.stat().st_size > 10_000, run.stderr[-2000:]
        print(f"screenshot: {shot}")
    db.dispose()
