"""Headless Chromium drives the dashboard's queues page on a running service (real uvicorn): three teams share
the example cohort; one admission cycle runs over the store (as the loop's gate would); the page must show
each queue's nominal quota, use and borrowing, its pending count, and per waiting workload its position, an
estimated start and why it waits; a team member sees the totals of every queue but only their own team's
waiting workloads by name. Photographed at 1400 and 900 px (``AWAN_SCREENSHOTS=docs/screenshots``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from controlplane.api import create_app
from controlplane.auth import create_token
from controlplane.reconcile.admitting import QueueSource, admit_pending
from controlplane.reconcile.policy_source import PolicySource
from controlplane.settings import Settings
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from tests.e2e.test_service_e2e import Service

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser, pytest.mark.slow,   # three Chromium runs: ~30-45 s on 2 shared cores
              pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test-deps)")]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--virtual-time-budget=10000"]
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = (REPO / "policies" / "examples" / "queues.yaml").read_text()

# team, name, GPU model, GPUs, priority: submitted one by one, in this order, an admission cycle after each
# (as the loop's gate runs between submissions)
WORK = [
    ("research", "pretrain-h100", "H100", 1100, 0),     # research's whole nominal H100
    ("research", "gb200-rack", "GB200", 72, 0),
    ("product", "chat-serving", "H100", 48, 0),          # product leaves 16 of its 64 idle: lendable
    ("product", "support-finetune", "H200", 16, 0),
    ("sweeps", "hpo-sweep-1", "H100", 8, 0),             # sweeps' nominal 8
    ("sweeps", "hpo-sweep-2", "H100", 8, 0),             # borrows 8 of product's idle quota
    ("sweeps", "hpo-sweep-3", "H100", 8, 0),             # borrows 8 more: the cohort's H100 is full
    ("sweeps", "hpo-sweep-4", "H100", 8, 0),             # waits on quota, #1
    ("sweeps", "hpo-sweep-5", "H100", 8, 0),             # #2
    ("product", "eval-h100", "H100", 16, 0),             # product takes its nominal back: preempts sweeps 3 and 2 (latest admitted first)
    ("research", "huge-h100", "H100", 2000, 0),          # more than research can ever hold: policy
]


def _manifest(team: str, name: str, model: str, gpus: int, priority: int) -> str:
    return (f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {name}, team: {team}}}\n"
            f"spec: {{kind: training, priority: {priority}, gpus: {{model: {model}, count: {gpus}, "
            f"perNode: 4}}}}\n")


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, *FLAGS, *args], capture_output=True, text=True, timeout=180)


def _text(cell: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell)).strip()


def _cells(html: str, queue: str) -> list[str]:
    """The cells of one queue's row of the queues table, as text."""
    row = re.search(rf'<tr data-queue="{queue}">(.*?)</tr>', html, re.S)
    assert row is not None, f"no row for queue {queue}"
    return [_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]


def _rows(html: str, queue: str) -> list[list[str]]:
    """The cells of each row of one queue's waiting table, as text."""
    art = re.search(rf'<article class="wide queue-waiting" data-queue="{queue}">(.*?)</article>', html, re.S)
    assert art is not None, f"no waiting list for queue {queue}"
    body = re.search(r"<tbody>(.*?)</tbody>", art.group(1), re.S)
    return [[_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
            for r in re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)] if body else []


def test_queues_page_shows_quota_borrowing_and_why_each_workload_waits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/awan.db"
    db = Database.from_url(url)
    upgrade(db.engine)
    with db.session() as s:
        admin = create_token(s, "ops", "cluster-admin")[0]
        members = {t: create_token(s, t, "member")[0] for t in ("research", "product", "sweeps")}
    app = create_app(Settings(db_url=url, reconcile=False), db=db, providers={})
    shots = Path(os.environ.get("AWAN_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    with Service(app) as svc:
        with httpx.Client(base_url=svc.url) as c:
            r = c.put("/v1/policies", content=EXAMPLE, headers={"Authorization": f"Bearer {admin}"})
            assert r.status_code == 200, r.text
            admitted: list[str] = []
            for team, name, model, gpus, prio in WORK:
                r = c.post("/v1/workloads", content=_manifest(team, name, model, gpus, prio),
                           headers={"Authorization": f"Bearer {members[team]}"})
                assert r.status_code == 201, r.text
                admitted += admit_pending(db, QueueSource(PolicySource(db).document).current(), fenced=lambda: True,
                                          actor="controller:test").admitted
        assert sorted(admitted) == ["product_chat-serving", "product_support-finetune", "research_gb200-rack",
                                    "research_pretrain-h100", "sweeps_hpo-sweep-1", "sweeps_hpo-sweep-2",
                                    "sweeps_hpo-sweep-3"]
        with db.session() as s:   # these found capacity (the loop would have placed them); hpo-sweep-1 did not yet
            for name in ("pretrain-h100", "gb200-rack", "chat-serving", "support-finetune"):
                w = repo.get(s, name)
                assert w is not None
                w.state = "Running"

        link = f"{svc.url}/dashboard?token={admin}&page=queues"
        profile = tmp_path / "profile-admin"
        dom = _chromium(f"--user-data-dir={profile}", "--window-size=1400,1000", "--dump-dom", link)
        assert dom.returncode == 0, dom.stderr[-2000:]
        html = dom.stdout
        assert admin not in html and "sign in with an API token" not in html
        assert re.search(r'<section id="page-queues" class="page">', html), "the queues page is hidden"
        assert re.search(r'<canvas id="queue-chart"[^>]*style="[^"]*display: block', html), "chart not drawn"
        # Nominal, use and borrowing per flavour; totals per queue.
        cells = _cells(html, "research")
        assert cells[:4] == ["research", "ml", "2", "research"]
        assert "h100 1100 / 1100" in cells[4] and "gb200 72 / 144" in cells[4] and "borrowed" not in cells[4]
        assert cells[5:] == ["0", "2", "0", "1"]           # borrowed, admitted, preempting, pending
        cells = _cells(html, "sweeps")
        assert "h100 24 / 8 (+16 borrowed)" in cells[4] and cells[5:] == ["16", "3", "2", "2"]
        assert _cells(html, "product")[5:] == ["0", "2", "0", "1"]
        # Per waiting workload: position, estimated start, why.
        sweeps = _rows(html, "sweeps")
        assert [r[:3] for r in sweeps] == [["-", "hpo-sweep-1", "sweeps"], ["#1", "hpo-sweep-4", "sweeps"],
                                           ["#2", "hpo-sweep-5", "sweeps"]], sweeps
        assert sweeps[0][5] == "capacity"                   # admitted, waits to be placed
        assert sweeps[1][5] == "quota" and sweeps[1][6].startswith("in ~"), sweeps[1]   # GPUs admitted this hour
        assert "uses 8 of its nominal 8" in sweeps[1][7]
        product = _rows(html, "product")
        assert [r[:2] + r[5:6] for r in product] == [["#1", "eval-h100", "preempting"]], product
        assert "waiting for 2 preempted workload(s) to stop" in product[0][7]
        research = _rows(html, "research")
        huge = next(r for r in research if r[1] == "huge-h100")
        assert huge[5] == "policy" and huge[6] == "-" and "can hold at most 1172" in huge[7], huge
        assert [r[1] for r in research] == ["huge-h100"], "a running workload does not wait"
        for width in (1400, 900):
            shot = shots / f"dashboard-queues-{width}.png"
            run = _chromium(f"--user-data-dir={profile}", f"--screenshot={shot}", f"--window-size={width},1000", link)
            assert run.returncode == 0 and shot.exists() and shot.stat().st_size > 15_000, run.stderr[-2000:]

        # A team member: every queue's totals, but only their own team's waiting workloads by name.
        link = f"{svc.url}/dashboard?token={members['sweeps']}&page=queues"
        dom = _chromium(f"--user-data-dir={tmp_path / 'profile-sweeps'}", "--window-size=1400,1000", "--dump-dom",
                        link)
        assert dom.returncode == 0, dom.stderr[-2000:]
        html = dom.stdout
        assert "hpo-sweep-4" in html and '<tr data-queue="research">' in html
        assert "eval-h100" not in html and "huge-h100" not in html, "another team's names are shown"
        assert "Nothing of yours waits here." in html
    db.dispose()
