"""Buying GCP future reservations on policy: the real google-cloud-compute client over HTTP against the GCP
mock (futureReservations by the mock clock), the real placement pass and store. Approve mode requests
nothing until a person approves; auto requests once, also when the process died after GCE took the request
and before the row said so; the budget and the price limit hold; a bad futureReservations entry is refused
naming the field; the future reservation bought is the dated reserved pool placement uses from its start."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from controlplane.api import create_app
from controlplane.auth import create_token
from controlplane.model.manifest import parse_manifests
from controlplane.placement.engine import place_one
from controlplane.policy.model import PolicySet
from controlplane.purchasing import PurchasingSource, futures, parse_purchasing_text
from controlplane.purchasing.step import PurchaseStep
from controlplane.reconcile import fleet
from controlplane.reconcile.metrics import LoopMetrics
from controlplane.reconcile.policy_source import PolicySource
from controlplane.settings import Settings
from controlplane.store import audit
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.models import Purchase
from providers.capabilities import FutureReservation, FutureReservationRequest
from providers.gcp.adapter import GCPProvider
from tests.controlplane.purchasing import buyfixtures as bf

REGION, TYPE = "us-central1", "a3-highgpu-8g"
ON_DEMAND = 43.0662        # the catalog's a3-highgpu-8g on-demand $/VM-hour in us-central1 (offerings.csv)

POLICY = """
apiVersion: awan.dev/v1alpha1
kind: PurchasingPolicy
metadata: {{name: futures}}
spec:
  mode: {mode}
  futureReservations:
  - {{machineTypes: [{mtype}], regions: [us-central1]{zones}}}
  maxPricePerGpuHour: {max_price}
  budget: {{total: {total}}}
  leadTime: {{min: 0h, max: 14d}}
  hours: 24
"""


def policy(mode: str = "approve", max_price: float = 100.0, total: float = 1e7, zones: str = "",
           mtype: str = TYPE) -> str:
    return POLICY.format(mode=mode, max_price=max_price, total=total, mtype=mtype,
                         zones=f", zones: [{zones}]" if zones else "")


class Crashing(GCPProvider):
    """The controller process dying right after GCE took the request, before the row records it."""

    def request_future_reservation(self, request: FutureReservationRequest) -> FutureReservation:
        super().request_future_reservation(request)
        raise SystemExit("killed after the cloud call")


def _adapter(mock: Any, cls: type[GCPProvider] = GCPProvider) -> GCPProvider:
    p = cls(mock.config().providers["gcp"].model_copy(update={"regions": [REGION]}))
    p.url = mock.urls["gcp"]
    return p


@pytest.fixture
def gcp(mock_gcp: Any) -> Iterator[GCPProvider]:
    p = _adapter(mock_gcp)
    yield p
    p.close()


def _mock_now(gcp: GCPProvider) -> datetime:
    return datetime.fromisoformat(httpx.get(gcp.url + "/_mock/clock").json()["now"])


def _submit(db: Database, name: str = "pretrain", gpus: int = 16, extra: str = "") -> str:
    """A workload waiting for reserved H100 in a GCP region."""
    w = parse_manifests("apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\n"
                        f"metadata: {{name: {name}, team: research}}\n"
                        f"spec: {{gpus: {{model: H100, count: {gpus}, perNode: 8}}, capacityType: [reserved],"
                        f" location: {{regions: ['gcp:{REGION}']}}{extra}}}\n")[0]
    with db.session() as s:
        row, _ = repo.submit(s, name=w.name, team=w.team, spec=w.to_manifest(), priority=0, gpus=w.total_gpus)
        return row.key


def _step(db: Database, gcp: GCPProvider) -> PurchaseStep:
    return PurchaseStep(db, {"gcp": gcp}, PurchasingSource(PolicySource(db).document).current,
                        actor="controller:test", fenced=lambda: True, clock=lambda: _mock_now(gcp))


def _rows(db: Database) -> list[Purchase]:
    with db.session() as s:
        rows = list(s.scalars(select(Purchase).order_by(Purchase.created_at)))
        for r in rows:
            s.expunge(r)
        return rows


def _ours(gcp: GCPProvider) -> list[str]:
    """Names of the future reservations GCE holds that Awan requested (read with the real client)."""
    return sorted(w.name for w in gcp.reservations.futures() if w.name.startswith("awan-pur-"))


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_approve_mode_requests_nothing_until_approved_then_placement_uses_it_from_its_start(
        gcp: GCPProvider, tmp_path: Path) -> None:
    db = bf.store(tmp_path, policy("approve"))
    key = _submit(db)
    assert bf.place(db, {"gcp": gcp}) == [key]          # nothing reserved in GCP: it waits
    step = _step(db, gcp)
    for _ in range(3):
        step.tick()
    (p,) = _rows(db)
    assert p.state == "proposed" and p.provider == "gcp" and p.demand["workloads"] == [key]
    assert (p.instance_type, p.instance_count, p.hours, p.gpus) == (TYPE, 2, 24, 16)
    assert p.offering_id.startswith(futures.PREFIX) and p.zone.startswith(REGION)
    assert p.price == pytest.approx(ON_DEMAND * 2 * 24, abs=0.01)
    assert p.starts_at - _mock_now(gcp) >= futures.MIN_LEAD - timedelta(minutes=5)
    assert "future reservation 2x a3-highgpu-8g" in p.reason and "on-demand price" in p.reason
    assert _ours(gcp) == []                             # nothing requested from GCE yet

    app = create_app(Settings(db_url=f"sqlite:///{tmp_path / 'awan.db'}", reconcile=False), db=db, providers={})
    with db.session() as s:
        admin, _ = create_token(s, "ops", "cluster-admin")
    with TestClient(app) as c:
        listed = c.get("/v1/purchases", headers=_h(admin)).json()["items"]
        assert [(x["id"], x["kind"], x["state"]) for x in listed] == [(p.id, "future-reservation", "proposed")]
        assert c.post(f"/v1/purchases/{p.id}/approve", headers=_h(admin)).status_code == 200
        assert _ours(gcp) == []                         # approving does not buy: the loop does
        step.tick()
        step.tick()
        bought = c.get(f"/v1/purchases/{p.id}", headers=_h(admin)).json()
        assert bought["state"] == "bought" and bought["reservation"] == p.token
        assert 'awan_purchases_count{state="bought"} 1.0' in c.get("/metrics").text
    assert _ours(gcp) == [p.token]
    got = gcp.api.compute("FutureReservationsClient").get(project=gcp.api.project, zone=p.zone,
                                                          future_reservation=p.token)
    assert got.reservation_mode == "CALENDAR" and got.reservation_name == p.token     # read with the real client
    with db.session() as s:
        actions = [e.action for e in audit.events(s, kind="purchase", subject=p.id)]
    assert actions == ["purchase-proposed", "purchase-approved", "purchase-buying", "purchase-bought"]

    # the dated reserved pool: not used before its start, used inside its window (the placement engine)
    snap = fleet.capacity_snapshot({"gcp": gcp}, LoopMetrics())
    (pool,) = [x for x in snap.pools if x.reservation_id == p.token]
    assert (pool.starts_at, pool.ends_at, pool.available_nodes) == (p.starts_at, p.ends_at, 2)
    w = repo_workload(db)
    assert not place_one(w, snap, PolicySet.default()).placed
    inside = place_one(w, dataclasses.replace(snap, taken_at=p.starts_at), PolicySet.default())
    assert inside.placed and {a.reservation for a in inside.assignments} == {p.token}
    # at its start GCE auto-creates the reservation under the same name, with the same window
    httpx.post(gcp.url + "/_mock/clock", json={"now": p.starts_at.isoformat()}).raise_for_status()
    (delivered,) = [x for x in gcp.capacity().pools if x.reservation_id == p.token]
    assert (delivered.starts_at, delivered.ends_at, delivered.available_nodes) == (p.starts_at, p.ends_at, 2)


def repo_workload(db: Database) -> Any:
    from controlplane.model.workload import GPUWorkload

    with db.session() as s:
        return GPUWorkload.model_validate(repo.list_(s)[0].spec)


def test_auto_mode_requests_once(gcp: GCPProvider, tmp_path: Path) -> None:
    db = bf.store(tmp_path, policy("auto"))
    key = _submit(db)
    bf.place(db, {"gcp": gcp})
    step = _step(db, gcp)
    for _ in range(4):
        step.tick()
    (r,) = _rows(db)
    assert (r.state, r.decided_by, r.reservation_id) == ("bought", "policy:futures", r.token)
    assert r.token == f"awan-{r.id}" and r.demand["workloads"] == [key]
    assert _ours(gcp) == [r.token]
    bf.place(db, {"gcp": gcp})                  # still Pending (waits for the start): covered, not bought again
    for _ in range(2):
        step.tick()
    assert _ours(gcp) == [r.token] and len(_rows(db)) == 1


def test_a_crash_after_gce_took_the_request_does_not_request_again(mock_gcp: Any, tmp_path: Path) -> None:
    """Killed between the committed ``buying`` row and recording GCE's answer: the next pass looks the
    future reservation up by its name (the token), finds it and records it; GCE holds one, not two."""
    db = bf.store(tmp_path, policy("auto"))
    _submit(db)
    gcp, crashing = _adapter(mock_gcp), _adapter(mock_gcp, Crashing)
    bf.place(db, {"gcp": gcp})
    with pytest.raises(SystemExit):
        _step(db, crashing).tick()
    (r,) = _rows(db)
    assert r.state == "buying" and _ours(gcp) == [r.token]
    _step(db, gcp).tick()                      # the restarted controller
    (r,) = _rows(db)
    assert r.state == "bought" and r.reservation_id == r.token and "found by its name" in r.message
    assert _ours(gcp) == [r.token]
    with db.session() as s:
        actions = [e.action for e in audit.events(s, kind="purchase", subject=r.id)]
    assert actions.count("purchase-bought") == 1 and actions.count("purchase-buying") == 1


def test_budget_and_max_price_hold(gcp: GCPProvider, tmp_path: Path) -> None:
    one = ON_DEMAND * 2 * 24                    # a 2-VM a3-highgpu-8g day: $2,067.18
    db = bf.store(tmp_path, policy("auto", total=one + 500))
    _submit(db, "a")
    _submit(db, "b")
    bf.place(db, {"gcp": gcp})
    step = _step(db, gcp)
    for _ in range(3):
        step.tick()
    rows = _rows(db)
    assert [r.state for r in rows] == ["bought"] and rows[0].price <= one + 500
    assert len(_ours(gcp)) == 1

    (tmp_path / "cheap").mkdir()
    (tmp_path / "own-limit").mkdir()
    db2 = bf.store(tmp_path / "cheap", policy("auto", max_price=ON_DEMAND / 8 - 0.5))
    _submit(db2)
    bf.place(db2, {"gcp": gcp})
    _step(db2, gcp).tick()
    assert _rows(db2) == [] and len(_ours(gcp)) == 1       # over maxPricePerGpuHour: not even proposed
    db3 = bf.store(tmp_path / "own-limit", policy("auto"))
    _submit(db3, extra=", maxPricePerGpuHour: 2.0")        # the workload's own limit counts too
    bf.place(db3, {"gcp": gcp})
    _step(db3, gcp).tick()
    assert _rows(db3) == [] and len(_ours(gcp)) == 1


def test_a_deadline_sooner_than_gcp_can_deliver_gets_no_proposal(gcp: GCPProvider, tmp_path: Path) -> None:
    """GCP starts GPU future reservations 87h ahead at the earliest: a workload that may wait 2 days gets none."""
    db = bf.store(tmp_path, policy("auto"))
    _submit(db, extra=", schedule: {maxWait: 2d}")
    bf.place(db, {"gcp": gcp})
    step = _step(db, gcp)
    step.tick()
    assert _rows(db) == [] and _ours(gcp) == []


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    db = bf.store(tmp_path)
    with db.session() as s:
        tok, _ = create_token(s, "ops", "cluster-admin")
    app = create_app(Settings(db_url=f"sqlite:///{tmp_path / 'awan.db'}", reconcile=False), db=db, providers={})
    c = TestClient(app)
    c.headers["Authorization"] = f"Bearer {tok}"
    return c


BAD = [
    (policy(mtype="a3-nope-8g"), "spec.futureReservations[0].machineTypes[0]"),
    (policy(mtype="tpu-v5p-16"), "spec.futureReservations[0].machineTypes[0]"),
    (policy(mtype="p5.48xlarge"), "spec.futureReservations[0].machineTypes[0]"),
    (policy(zones="europe-west4-a"), "spec.futureReservations[0].zones[0]"),
    (policy().replace("regions: [us-central1]", "regions: [us-east-1]"), "spec.futureReservations[0].regions[0]"),
    (policy().replace("machineTypes: [a3-highgpu-8g], ", ""), "spec.futureReservations[0].machineTypes"),
    (policy().replace("regions: [us-central1]", "regions: []"), "spec.futureReservations[0].regions"),
    (policy().replace("}\n  maxPrice", ", colour: red}\n  maxPrice"), "spec.futureReservations[0].colour"),
    (policy().replace("max: 14d", "max: 3d"), "spec.leadTime.max"),
    (policy().replace("min: 0h", "min: 130d").replace("max: 14d", "max: 150d"), "spec.leadTime.min"),
    (policy().replace("hours: 24", "hours: 2200"), "spec.hours"),
    (policy().replace("  maxPricePerGpuHour: 100.0\n", ""), "spec.maxPricePerGpuHour"),
]


@pytest.mark.parametrize(("text", "field"), BAD, ids=[f"{i}-{f}" for i, (_, f) in enumerate(BAD)])
def test_bad_future_reservations_are_refused_naming_the_field(client: TestClient, text: str, field: str) -> None:
    r = client.put("/v1/policies", content=text, headers={"Content-Type": "application/yaml"})
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"], r.json()["detail"]
    assert "Traceback" not in r.text
    assert client.get("/v1/policies").json()["document"] == ""      # nothing stored


def test_blocks_and_future_reservations_in_one_policy() -> None:
    text = policy().replace("  futureReservations:", "  providers: [aws]\n  regions: [us-east-1]\n"
                            "  instanceTypes: [p5.48xlarge]\n  futureReservations:")
    cfg = parse_purchasing_text(text)
    assert cfg is not None and [t.provider for t in cfg.targets] == ["aws"]
    assert [(f.provider, f.instance_type, f.gpus_per_node, f.regions) for f in cfg.future] == [
        ("gcp", TYPE, 8, (REGION,))]
