"""The PurchasingPolicy document through ``PUT /v1/policies``: a bad one is refused (422) with the field
named and nothing stored; a good one is stored beside placement and queue documents, which still load."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from controlplane.api import create_app
from controlplane.auth import create_token
from controlplane.purchasing import parse_purchasing_text
from controlplane.reconcile.policy_source import parse_document
from controlplane.settings import Settings
from tests.controlplane.purchasing import buyfixtures as bf

GOOD = {"mode": "approve", "providers": "[aws]", "regions": "[us-east-1]", "instanceTypes": "[p5.48xlarge]",
        "maxPricePerGpuHour": "8", "budget": "{total: 50000, perPeriod: 20000, period: 30d}",
        "leadTime": "{min: 0h, max: 7d}", "moveBeforeEnd": "2h"}
PLACEMENT = "apiVersion: awan.dev/v1alpha1\nkind: PlacementPolicy\nmetadata: {name: base}\nspec: {}\n"


def doc(**change: str | None) -> str:
    spec = {**GOOD, **change}
    body = "".join(f"  {k}: {v}\n" for k, v in spec.items() if v is not None)
    return f"apiVersion: awan.dev/v1alpha1\nkind: PurchasingPolicy\nmetadata: {{name: blocks}}\nspec:\n{body}"


BAD = [
    ({"mode": "yolo"}, "spec.mode"),
    ({"maxPricePerGpuHour": "-1"}, "spec.maxPricePerGpuHour"),
    ({"maxPricePerGpuHour": None}, "spec.maxPricePerGpuHour"),
    ({"budget": None}, "spec.budget"),
    ({"budget": "{perPeriod: 5}"}, "period"),
    ({"budget": "{total: -5}"}, "spec.budget.total"),
    ({"providers": "[gcp]"}, "spec.providers[0]"),
    ({"providers": "[]"}, "spec.providers: required when mode is approve"),
    ({"mode": "auto", "instanceTypes": None}, "spec.instanceTypes: required when mode is auto"),
    ({"providers": "[nimbus]"}, "spec.providers[0]"),
    ({"regions": "[us-east-1, mars-1]"}, "spec.regions[1]"),
    ({"instanceTypes": "[p5.48xlarge, p9.huge]"}, "spec.instanceTypes[1]"),
    ({"leadTime": "{min: 3d, max: 1d}"}, "spec.leadTime"),
    ({"leadTime": "{min: soon}"}, "spec.leadTime.min"),
    ({"moveBeforeEnd": "0h"}, "spec.moveBeforeEnd"),
    ({"hours": "0"}, "spec.hours"),
    ({"colour": "red"}, "spec.colour"),
]


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    db = bf.store(tmp_path)
    with db.session() as s:
        tok, _ = create_token(s, "ops", "cluster-admin")
    app = create_app(Settings(db_url=f"sqlite:///{tmp_path / 'awan.db'}", reconcile=False), db=db, providers={})
    c = TestClient(app)
    c.headers["Authorization"] = f"Bearer {tok}"
    return c


@pytest.mark.parametrize(("change", "field"), BAD, ids=[f for _, f in BAD])
def test_bad_purchasing_policy_is_refused_naming_the_field(client: TestClient, change: dict[str, str | None],
                                                         field: str) -> None:
    r = client.put("/v1/policies", content=PLACEMENT + "---\n" + doc(**change),
                   headers={"Content-Type": "application/yaml"})
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
    assert "Traceback" not in r.text
    assert client.get("/v1/policies").json()["document"] == ""      # nothing stored


def test_two_purchasing_policies_are_refused(client: TestClient) -> None:
    r = client.put("/v1/policies", content=doc() + "---\n" + doc(), headers={"Content-Type": "application/yaml"})
    assert r.status_code == 422 and "only one PurchasingPolicy" in r.json()["detail"]


def test_good_purchasing_policy_is_stored_beside_placement(client: TestClient) -> None:
    text = PLACEMENT + "---\n" + doc()
    r = client.put("/v1/policies", content=text, headers={"Content-Type": "application/yaml"})
    assert r.status_code == 200, r.text
    assert client.get("/v1/policies").json()["document"] == text
    cfg = parse_purchasing_text(text)
    assert cfg is not None and cfg.mode == "approve" and cfg.budget.total == 50000
    assert cfg.move_before_end is not None and cfg.move_before_end.total_seconds() == 7200
    assert parse_document(text).sources      # the placement loader skips the purchasing document


def test_ultraserver_types_resolve_to_their_instance_type() -> None:
    cfg = parse_purchasing_text(doc(instanceTypes="[u-p6e-gb200x72]"))
    assert cfg is not None
    (t,) = cfg.targets
    assert t.ultraserver == "u-p6e-gb200x72" and t.instance_type.startswith("p6e-gb200") and t.nodes_per_ultraserver > 1


def test_the_shipped_example_loads() -> None:
    text = (Path(__file__).resolve().parents[3] / "policies" / "examples" / "purchasing.yaml").read_text()
    cfg = parse_purchasing_text(text, "policies/examples/purchasing.yaml")
    assert cfg is not None and cfg.mode == "approve" and {t.provider for t in cfg.targets} == {"aws"}
    assert len(cfg.regions) == 2 and cfg.budget.per_period == 100000
    assert [(f.provider, f.instance_type, f.regions) for f in cfg.future] == [("gcp", "a3-highgpu-8g", ("us-central1",))]


def test_mode_off_needs_only_what_it_uses() -> None:
    """``mode: off`` (YAML's bare ``off`` reads as false: taken as "off") buys nothing; it may carry only
    ``moveBeforeEnd``, for fleets whose blocks are bought by hand."""
    cfg = parse_purchasing_text("kind: PurchasingPolicy\nmetadata: {name: move-only}\nspec: {mode: off, moveBeforeEnd: 90m}\n")
    assert cfg is not None and cfg.mode == "off" and cfg.targets == ()
    assert cfg.move_before_end is not None and cfg.move_before_end.total_seconds() == 5400
