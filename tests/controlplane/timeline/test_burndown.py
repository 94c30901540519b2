"""Contracts over their term (issue 10): burn-down in GPU-hours and dollars, forecast, take-or-pay shortfall;
checked against figures worked out by hand, then through the store, the API and /metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from controlplane.api import create_app
from controlplane.policy.model import Commitment
from controlplane.settings import Settings
from controlplane.store.db import Database
from controlplane.store.models import Assignment, Workload
from controlplane.timeline.burndown import burndown
from controlplane.timeline.usage import Usage, record_usage
from tests.controlplane.api.conftest import auth, tokens  # noqa: F401
from tests.controlplane.store.dbfixture import db, db_url  # noqa: F401

T0 = datetime(2026, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)


def _c(**kw: object) -> Commitment:
    base: dict = {"name": "cw", "provider": "coreweave", "gpu_model": "H100", "start": T0, "end": T0 + 240 * H,
                  "gpus": 16, "price_per_gpu_hour": 2.0}
    return Commitment(**{**base, **kw})


def _u(hours: float, gpus: int, region: str = "US-EAST-04", model: str = "H100", provider: str = "coreweave",
       ctype: str = "reserved") -> Usage:
    return Usage(T0 + hours * H, (provider, region, model, ctype), gpus, gpus * 3.0)


def test_burn_down_by_hand() -> None:
    # 8 GPUs for 48 h, then 24 (capped at the 16 committed) for 48 h, then nothing; seen at hour 120
    changes = [_u(0, 8), _u(48, 24), _u(96, 0),
               _u(10, 100, model="A100"), _u(10, 100, provider="aws")]       # out of scope: ignored
    b = burndown(_c(), changes, T0 + 120 * H, points=11)
    assert b.used_gpu_hours == pytest.approx(8 * 48 + 16 * 48)              # 1152
    assert b.used_dollars == pytest.approx(1152 * 2.0)
    assert b.committed_gpu_hours_to_date == pytest.approx(16 * 120)
    assert b.committed_gpu_hours_total == pytest.approx(16 * 240)
    # recent rate over the last 7 days (here: since the start, 120 h): 1152 / 120 = 9.6 GPUs
    assert b.recent_gpus == pytest.approx(9.6)
    assert b.forecast_gpu_hours == pytest.approx(1152 + 9.6 * 120)          # 2304
    assert b.shortfall_gpu_hours == pytest.approx(3840 - 2304)
    assert b.shortfall_dollars == pytest.approx((3840 - 2304) * 2.0)
    assert [p.forecast for p in b.series] == [False] * 6 + [True] * 5
    assert b.series[0].used_gpu_hours == 0 and b.series[5].used_gpu_hours == pytest.approx(1152)
    assert b.series[-1].used_gpu_hours == pytest.approx(2304)
    assert b.series[-1].committed_gpu_hours == pytest.approx(3840)


def test_not_take_or_pay_has_no_dollar_shortfall_and_region_scope_counts() -> None:
    changes = [_u(0, 8, region="US-EAST-04"), _u(0, 8, region="EU-WEST-01")]
    b = burndown(_c(take_or_pay=False, regions=("EU-*",)), changes, T0 + 24 * H)
    assert b.used_gpu_hours == pytest.approx(8 * 24)
    assert b.shortfall_dollars == 0 and b.shortfall_gpu_hours > 0


def test_dollar_contract_burns_list_dollars() -> None:
    b = burndown(_c(gpus=None, price_per_gpu_hour=None, dollars_per_hour=100.0), [_u(0, 10)], T0 + 24 * H)
    assert b.used_dollars == pytest.approx(10 * 3.0 * 24)
    assert b.committed_dollars_total == pytest.approx(100.0 * 240)
    assert b.shortfall_dollars == pytest.approx(100.0 * 240 - 30.0 * 240)


def _running(db: Database, name: str, gpus: int) -> int:  # noqa: F811
    with db.session() as s:
        w = Workload(name=name, team="research", spec={}, state="Running", gpus=gpus)
        w.assignments = [Assignment(pool="p", provider="coreweave", region="US-EAST-04", zone="US-EAST-04A",
                                    instance_type="gd-8xh100ib-i128", nodes=gpus // 8, gpus=gpus, gpu_model="H100",
                                    capacity_type="reserved", price_per_hour=0.0)]
        s.add(w)
        s.flush()
        return w.id


def test_usage_recorded_as_changes_then_served_by_the_api_and_metrics(db: Database, db_url: str,  # noqa: F811
                                                                        tokens: dict[str, str],  # noqa: F811
                                                                        tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start = (now - timedelta(days=10)).date().isoformat()
    end = (now + timedelta(days=20)).date().isoformat()
    pol = tmp_path / "c.yaml"
    pol.write_text(f"""apiVersion: awan.dev/v1alpha1
kind: PlacementPolicy
metadata: {{name: c}}
spec:
  commitments:
    - {{name: cw-h100, provider: coreweave, gpuModel: H100, gpus: 64, start: {start}, end: {end},
        pricePerGpuHour: 2.5, capacityTypes: [reserved]}}
""")
    wid = _running(db, "a", 16)
    assert record_usage(db, at=now - timedelta(days=5)) == 1
    assert record_usage(db, at=now - timedelta(days=4)) == 0          # nothing changed: nothing written
    with db.session() as s:
        s.get(Workload, wid).state = "Deleted"   # type: ignore[union-attr]
    assert record_usage(db, at=now - timedelta(days=2)) == 1          # back to 0
    app = create_app(Settings(db_url=db_url, reconcile=False, policies=[str(pol)]), db=db, providers={})
    with TestClient(app) as client:
        got = client.get("/v1/commitments/cw-h100?points=30", headers=auth(tokens["research"]))
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["usedGpuHours"] == pytest.approx(16 * 72)
        assert body["usedDollars"] == pytest.approx(16 * 72 * 2.5)
        assert len(body["series"]) == 30 and body["series"][-1]["forecast"] is True
        assert body["shortfallDollars"] > 0
        assert client.get("/v1/commitments", headers=auth(tokens["research"])).json()["items"][0]["name"] == "cw-h100"
        missing = client.get("/v1/commitments/nope", headers=auth(tokens["research"]))
        assert missing.status_code == 404 and "nope" in missing.json()["detail"]
        assert client.get("/v1/commitments/cw-h100?points=1", headers=auth(tokens["research"])).status_code == 422
        assert client.get("/v1/commitments/cw-h100").status_code == 401
        metrics = client.get("/metrics").text
        assert 'awan_commitment_used_gpu_hours{contract="cw-h100",gpu_model="H100",provider="coreweave"} 1152.0' \
            in metrics
        assert "awan_commitment_shortfall_dollars{" in metrics
