"""Headless Chromium draws a contract's burn-down over its term on the dashboard's commitments page
(issue 10): usage recorded by ``record_usage`` at past times, served by /v1/commitments, drawn by Chart.js.
``AWAN_SCREENSHOTS=docs/screenshots`` keeps the picture (docs/screenshots/dashboard-burndown-1400.png)."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest

from controlplane.api import create_app
from controlplane.auth import create_token
from controlplane.settings import Settings
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from controlplane.store.models import Assignment, Workload
from controlplane.timeline.usage import record_usage
from tests.e2e.test_dashboard_browser import CHROMIUM, _chromium
from tests.e2e.test_service_e2e import Service

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test-deps)")]


def _workload(db: Database, name: str, gpus: int) -> int:
    with db.session() as s:
        w = Workload(name=name, team="research", spec={}, state="Running", gpus=gpus)
        w.assignments = [Assignment(pool=name, provider="coreweave", region="US-EAST-04", zone="US-EAST-04A",
                                    instance_type="gd-8xh100ib-i128", nodes=gpus // 8, gpus=gpus, gpu_model="H100",
                                    capacity_type="reserved", price_per_hour=0.0)]
        s.add(w)
        s.flush()
        return w.id


def _set_state(db: Database, wid: int, state: str) -> None:
    with db.session() as s:
        row = s.get(Workload, wid)
        assert row is not None
        row.state = state


def test_commitment_burn_down_is_drawn_over_the_term(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/awan.db"
    db = Database.from_url(url)
    upgrade(db.engine)
    now = utcnow()
    start, end = (now - timedelta(days=90)).date(), (now + timedelta(days=275)).date()
    pol = tmp_path / "contracts.yaml"
    pol.write_text(f"""apiVersion: awan.dev/v1alpha1
kind: PlacementPolicy
metadata: {{name: contracts}}
spec:
  commitments:
    - {{name: coreweave-h100-2026, provider: coreweave, gpuModel: H100, gpus: 256, start: {start}, end: {end},
        pricePerGpuHour: 2.2, takeOrPay: true, capacityTypes: [reserved]}}
""")
    with db.session() as s:
        admin, _ = create_token(s, "ops", "cluster-admin")
    # a ramp: 64 GPUs from day 85 ago, +128 from day 60 ago, the first job ends 30 days ago, +64 10 days ago
    a = _workload(db, "pretrain-a", 64)
    record_usage(db, at=now - timedelta(days=85))
    b = _workload(db, "pretrain-b", 128)
    record_usage(db, at=now - timedelta(days=60))
    _set_state(db, a, "Deleted")
    record_usage(db, at=now - timedelta(days=30))
    _workload(db, "finetune-c", 64)
    record_usage(db, at=now - timedelta(days=10))
    assert b
    app = create_app(Settings(db_url=url, reconcile=False, policies=[str(pol)]), db=db, providers={})
    shots = Path(os.environ.get("AWAN_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    with Service(app) as svc:
        link = f"{svc.url}/dashboard?token={admin}&page=commitments"
        profile = tmp_path / "profile"
        dom = _chromium(f"--user-data-dir={profile}", "--window-size=1400,1000", "--dump-dom", link)
        assert dom.returncode == 0, dom.stderr[-2000:]
        html = dom.stdout
        assert re.search(r'<canvas id="term-chart"[^>]*style="[^"]*display: block', html), "term chart not drawn"
        assert '<option value="coreweave-h100-2026">' in html
        row = re.search(r'<tr><td class="name">coreweave-h100-2026</td>(.*?)</tr>', html)
        assert row is not None, "no figures row for the contract"
        cells = re.findall(r'<td class="num">([^<]*)</td>', row.group(1))
        used = 64 * 24 * 55 + 128 * 24 * 60 + 64 * 24 * 10     # GPU-hours to now, by hand
        # 192 GPUs keep running while the page loads: a few GPU-hours more than at seeding time, never less
        def num(x: str) -> float:
            return float(x.replace("$", "").replace(",", ""))
        assert len(cells) == 6 and used <= num(cells[0]) < used + 50
        assert used * 2.2 <= num(cells[4]) < (used + 50) * 2.2
        assert cells[5].startswith("$") and cells[5] != "$0"     # heading for a take-or-pay shortfall
        shot = shots / "dashboard-burndown-1400.png"
        run = _chromium(f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1400,900", link)
        assert run.returncode == 0 and shot.exists() and shot.stat().st_size > 15_000, run.stderr[-2000:]
    db.dispose()
