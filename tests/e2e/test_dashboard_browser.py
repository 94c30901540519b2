"""Headless Chromium drives the dashboard of a running service (real uvicorn): every page is loaded the way a
person opens the link `make run` prints (``/dashboard?token=...``, traded for a cookie), its content is
checked in the DOM the scripts built, Chart.js (served from the package) has drawn its canvases, and each
page is photographed at 1400 and 900 px wide. ``AWAN_SCREENSHOTS=docs/screenshots`` keeps the pictures
there (that is how the ones in docs/ were made); otherwise they go to a tmp dir."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from controlplane.api import create_app
from controlplane.auth import create_token
from controlplane.settings import Settings
from controlplane.store import audit
from controlplane.store import workloads as repo
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from controlplane.store.models import Assignment
from providers.model import HealthStatus, ProviderHealth
from tests.controlplane.reconcile.fakes import FakeCloud, FakeProvider, manifest
from tests.e2e.test_service_e2e import Service

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test-deps)")]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--virtual-time-budget=10000"]
REPO = Path(__file__).resolve().parents[2]

# name, team, state, hours ago placed, [(provider, region, zone, type, nodes, gpus, model, capacity, $/h, list $/h)]
FLEET = [
    ("llm-pretrain-gb200", "research", "Running", 20, [("coreweave", "US-EAST-04", "US-EAST-04A", "gb200-4x", 18, 72,
                                                        "GB200", "reserved", 0.0, 756.0)]),
    ("h100-train-1024", "research", "Running", 14, [("gcp", "us-central1", "us-central1-a", "a3-highgpu-8g", 64, 512,
                                                     "H100", "on-demand", 5632.0, 5632.0),
                                                    ("aws", "us-east-1", "us-east-1a", "p5.48xlarge", 64, 512,
                                                     "H100", "reserved", 3520.0, 6270.0)]),
    ("chat-serving", "product", "Running", 9, [("aws", "us-west-2", "us-west-2b", "p5.48xlarge", 2, 16, "H100",
                                                "on-demand", 196.0, 196.0),
                                               ("azure", "eastus", "eastus-1", "Standard_ND96isr_H100_v5", 2, 16,
                                                "H100", "on-demand", 196.8, 196.8)]),
    ("support-finetune-eu", "product", "Provisioning", 2, [("gcp", "europe-west4", "europe-west4-a",
                                                            "a3-ultragpu-8g", 2, 16, "H200", "on-demand", 98.96,
                                                            98.96)]),
    ("hpo-sweep-1", "research", "Running", 5, [("gcp", "us-east5", "us-east5-a", "a3-highgpu-8g", 1, 8, "H100",
                                                "spot", 9.38, 88.0)]),
    ("hpo-sweep-2", "research", "Pending", 0, []),
]


class _Provider(FakeProvider):
    def __init__(self, name: str, status: HealthStatus, down: tuple[str, ...] = ()) -> None:
        super().__init__(name, FakeCloud())
        self.status, self.down = status, down

    def health(self) -> ProviderHealth:
        return ProviderHealth(self.name, self.endpoint, self.status, 42.0,
                              regions={r: HealthStatus.DOWN for r in self.down})


def _seed(db: Database, member: str, url: str) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {member}"}) as c:
        for name, team, _, _, rows in FLEET:
            gpus = sum(r[5] for r in rows) or 16
            assert c.post("/v1/workloads", content=manifest(name, team=team, gpus=gpus)).status_code == 201
    now = utcnow()
    with db.session() as s:   # what the reconcile loop would have written, at the times it would have
        for name, _team, state, hours, rows in FLEET:
            w = repo.get(s, name)
            assert w is not None
            w.state = state
            if rows:
                w.placed_at = now - timedelta(hours=hours)
                w.created_at = w.placed_at - timedelta(minutes=3)
                w.message = f"placed on {rows[0][0]}/{rows[0][1]}: cheapest feasible option"
                doc = {"workload": name, "placed": True, "reasons": [w.message, "committed capacity first"],
                       "runnersUp": [{"provider": "azure", "region": "westus3", "instanceType": "ND96isr",
                                      "pricePerHour": 210.0, "score": 0.91}],
                       "rejections": {"oci/us-ashburn-1": "provider: not in spec.location"},
                       "assignments": [{"listPricePerHour": r[9]} for r in rows]}
                w.placement = w.explanation = doc
                w.assignments = [Assignment(pool=f"{name}-{i}", provider=r[0], region=r[1], zone=r[2],
                                            instance_type=r[3], nodes=r[4], gpus=r[5], gpu_model=r[6],
                                            capacity_type=r[7], price_per_hour=r[8]) for i, r in enumerate(rows)]
                audit.record(s, actor="controller:test", action="placed", kind="workload", subject=name, team=_team,
                             details={"score": 1.2})
            else:
                w.message = "no capacity: every matching pool is short of free nodes"


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM, *FLAGS, *args], capture_output=True, text=True, timeout=180)


PAGES = {
    "fleet": ["GPUs placed", "Provider health", "degraded", "us-central1"],
    "workloads": ["llm-pretrain-gb200", "support-finetune-eu", "6 of 6", "Provisioning"],
    "workloads/h100-train-1024": ["cheapest feasible option", "westus3",
                                  "provider: not in spec.location", "submitted", "p5.48xlarge"],
    "commitments": ["coreweave-gb200-2026", "2028-01-01", "aws-capacity-block-gb200"],
    "teams": ["research", "product", "$9,161.38", "$491.76"],
}
SHOT_NAMES = {"fleet": "fleet", "workloads": "workloads", "workloads/h100-train-1024": "workload",
              "commitments": "commitments", "teams": "teams"}


def test_every_page_renders_with_charts_and_screenshots(tmp_path):
    url = f"sqlite:///{tmp_path}/awan.db"
    db = Database.from_url(url)
    upgrade(db.engine)
    with db.session() as s:
        admin, _ = create_token(s, "ops", "cluster-admin")
        member, _ = create_token(s, "research", "cluster-admin")
    providers = {"aws": _Provider("aws", HealthStatus.OK), "gcp": _Provider("gcp", HealthStatus.OK),
                 "azure": _Provider("azure", HealthStatus.DEGRADED, ("westus3",)),
                 "coreweave": _Provider("coreweave", HealthStatus.OK)}
    policies = [str(REPO / "policies" / "30-commitments.yaml")]
    app = create_app(Settings(db_url=url, reconcile=False, policies=policies), db=db, providers=providers)
    shots = Path(os.environ.get("AWAN_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    with Service(app) as svc:
        _seed(db, member, svc.url)
        for page, expected in PAGES.items():
            link = f"{svc.url}/dashboard?token={admin}&page={page}"
            profile = tmp_path / f"profile-{page.replace('/', '-')}"
            dom = _chromium(f"--user-data-dir={profile}", "--window-size=1400,1000", "--dump-dom", link)
            assert dom.returncode == 0, dom.stderr[-2000:]
            html = dom.stdout
            assert admin not in html, "the token must not stay in the page"
            assert "sign in with an API token" not in html, f"{page}: the cookie sign-in did not hold"
            for text in expected:
                assert text in html, f"{page}: {text!r} not on the page"
            section = "page-workload" if "/" in page else f"page-{page}"
            assert re.search(rf'<section id="{section}" class="page">', html), f"{page}: its section is hidden"
            if page in ("fleet", "commitments"):   # Chart.js has taken over every canvas of the page
                canvases = re.findall(r'<canvas id="([a-z-]+)"[^>]*>', html)
                drawn = re.findall(r'<canvas id="([a-z-]+)"[^>]*style="[^"]*display: block', html)
                own = {"fleet": {"gpu-chart", "provider-chart"},
                       "commitments": {"burn-chart", "spend-chart", "marginal-chart"}}[page]
                assert own <= set(drawn), f"{page}: charts not drawn: {own - set(drawn)} (canvases {canvases})"
            for width in (1400, 900):
                shot = shots / f"dashboard-{SHOT_NAMES[page]}-{width}.png"
                run = _chromium(f"--user-data-dir={profile}", f"--screenshot={shot}", f"--window-size={width},1000",
                                link)
                assert run.returncode == 0 and shot.exists() and shot.stat().st_size > 15_000, run.stderr[-2000:]
    print(f"screenshots: {shots}")
    db.dispose()
