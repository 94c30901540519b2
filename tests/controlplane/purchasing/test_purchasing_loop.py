"""Buying on policy against the AWS mock (real boto3 over HTTP, the real placement pass and store): approve
mode buys nothing until a person approves through the API; auto mode buys once; the budget and the price
limit hold; the block bought is what the waiting workload is then placed into. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from controlplane.api import create_app
from controlplane.auth import create_token
from controlplane.purchasing import PurchasingSource
from controlplane.purchasing.buying import TAG
from controlplane.purchasing.step import PurchaseStep
from controlplane.reconcile.policy_source import PolicySource
from controlplane.settings import Settings
from controlplane.store import audit
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.models import Purchase
from tests.controlplane.purchasing import buyfixtures as bf
from tests.controlplane.store.dbfixture import db, db_url  # noqa: F401


def _step(store: Database, aws: Any) -> PurchaseStep:
    return PurchaseStep(store, {"aws": aws}, PurchasingSource(PolicySource(store).document).current,
                        actor="controller:test", fenced=lambda: True)


def _rows(store: Database) -> list[Purchase]:
    with store.session() as s:
        rows = list(s.scalars(select(Purchase).order_by(Purchase.created_at)))
        for r in rows:
            s.expunge(r)
        return rows


def _ours(mock: Any) -> list[dict[str, Any]]:
    return [b for b in bf.blocks(mock) if any(t["Key"] == TAG for t in b.get("Tags", []))]


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_approve_mode_buys_nothing_until_a_person_approves(mock_aws: Any, db: Database,  # noqa: F811
        db_url: str) -> None:  # noqa: F811
    bf.put_policy(db, bf.policy("approve"))
    aws = bf.aws(mock_aws)
    key = bf.submit(db)
    assert bf.place(db, {"aws": aws}) == [key]          # nothing reserved yet: it waits
    step = _step(db, aws)
    for _ in range(3):
        step.tick()
    rows = _rows(db)
    assert [r.state for r in rows] == ["proposed"]      # one proposal, however many passes
    p = rows[0]
    assert p.demand["workloads"] == [key] and p.instance_type == "p5.48xlarge" and p.instance_count == 2
    assert p.price > 0 and "waits" in p.reason and p.offering_id.startswith("cb-")
    assert bf.blocks(mock_aws) == []                    # the cloud sold nothing

    app = create_app(Settings(db_url=db_url, reconcile=False), db=db, providers={})
    with db.session() as s:
        admin, _ = create_token(s, "ops", "cluster-admin")
        member, _ = create_token(s, "research", "member")
    with TestClient(app) as c:
        listed = c.get("/v1/purchases", headers=_h(admin)).json()["items"]
        assert [(x["id"], x["state"], x["workloads"]) for x in listed] == [(p.id, "proposed", [key])]
        assert c.post(f"/v1/purchases/{p.id}/approve", headers=_h(member)).status_code == 403
        assert bf.blocks(mock_aws) == []
        r = c.post(f"/v1/purchases/{p.id}/approve", headers=_h(admin), json={"note": "go"})
        assert r.status_code == 200 and r.json()["state"] == "approved"
        assert bf.blocks(mock_aws) == []                # approving does not buy: the loop does
        again = c.post(f"/v1/purchases/{p.id}/approve", headers=_h(admin))
        assert again.status_code == 409 and "state" in again.json()["detail"]
        step.tick()
        step.tick()
        bought = c.get(f"/v1/purchases/{p.id}", headers=_h(admin)).json()
        assert bought["state"] == "bought" and bought["reservation"].startswith("cr-")
        metrics = c.get("/metrics").text
        assert 'awan_purchases_count{state="bought"} 1.0' in metrics
    ours = _ours(mock_aws)
    assert len(ours) == 1 and ours[0]["CapacityReservationIds"] == [bought["reservation"]]
    with db.session() as s:
        actions = [e.action for e in audit.events(s, kind="purchase", subject=p.id)]
    assert actions == ["purchase-proposed", "purchase-approved", "purchase-buying", "purchase-bought"]
    # the block serves the demand it was bought for
    assert bf.place(db, {"aws": aws}) == []
    with db.session() as s:
        w = repo.list_(s)[0]
        assert w.state == "Placed" and w.assignments[0].reservation == bought["reservation"]


def test_rejected_proposal_is_not_bought_nor_proposed_again(mock_aws: Any, db: Database,  # noqa: F811
        db_url: str) -> None:  # noqa: F811
    bf.put_policy(db, bf.policy("approve"))
    aws = bf.aws(mock_aws)
    bf.submit(db)
    bf.place(db, {"aws": aws})
    step = _step(db, aws)
    step.tick()
    (p,) = _rows(db)
    from controlplane.purchasing.decide import decide

    decide(db, p.id, approve=False, actor="person", note="not now")
    for _ in range(2):
        step.tick()
    assert [r.state for r in _rows(db)] == ["rejected"]
    assert bf.blocks(mock_aws) == []


def test_auto_mode_buys_once(mock_aws: Any, db: Database,  # noqa: F811
        db_url: str) -> None:  # noqa: F811
    bf.put_policy(db, bf.policy("auto"))
    aws = bf.aws(mock_aws)
    key = bf.submit(db)
    bf.place(db, {"aws": aws})
    step = _step(db, aws)
    for _ in range(4):
        step.tick()
    rows = _rows(db)
    assert [(r.state, r.decided_by) for r in rows] == [("bought", "policy:blocks")]
    ours = _ours(mock_aws)
    assert len(ours) == 1
    tags = {t["Key"]: t["Value"] for t in ours[0]["Tags"]}
    assert tags[TAG] == rows[0].token and rows[0].token.endswith(rows[0].id)
    assert bf.place(db, {"aws": aws}) == []     # placed into the block
    for _ in range(2):                          # no waiting demand any more: nothing else is bought
        step.tick()
    assert len(_ours(mock_aws)) == 1 and len(_rows(db)) == 1
    assert rows[0].demand["workloads"] == [key]


def test_budget_is_respected(mock_aws: Any, db: Database,  # noqa: F811
        db_url: str) -> None:  # noqa: F811
    """A budget for one block: two waiting workloads, one purchase; the second is not even proposed."""
    bf.put_policy(db, bf.policy("auto", total=3000))   # one 2-node p5 day is $2,641.92 in the mock
    aws = bf.aws(mock_aws)
    bf.submit(db, "a")
    bf.submit(db, "b")
    bf.place(db, {"aws": aws})
    step = _step(db, aws)
    for _ in range(3):
        step.tick()
    rows = _rows(db)
    assert [r.state for r in rows] == ["bought"] and rows[0].price <= 3000
    assert len(_ours(mock_aws)) == 1


def test_budget_is_checked_again_at_buying(mock_aws: Any, db: Database,  # noqa: F811
        db_url: str) -> None:  # noqa: F811
    """Two proposals approved by hand after the budget shrank: the second fails naming the budget field."""
    bf.put_policy(db, bf.policy("approve", total=10_000))
    aws = bf.aws(mock_aws)
    bf.submit(db, "a")
    bf.submit(db, "b")
    bf.place(db, {"aws": aws})
    step = _step(db, aws)
    step.tick()
    rows = _rows(db)
    assert [r.state for r in rows] == ["proposed", "proposed"]
    from controlplane.purchasing.decide import decide
    from controlplane.store import policies as policy_store

    with db.session() as s:
        policy_store.put_document(s, bf.policy("approve", total=rows[0].price + 1), "test")
    for r in rows:
        decide(db, r.id, approve=True, actor="person")
    step.tick()
    states = sorted(r.state for r in _rows(db))
    assert states == ["bought", "failed"]
    failed = next(r for r in _rows(db) if r.state == "failed")
    assert "budget.total" in failed.message
    assert len(_ours(mock_aws)) == 1


def test_max_price_is_respected(mock_aws: Any, db: Database,  # noqa: F811
        db_url: str) -> None:  # noqa: F811
    bf.put_policy(db, bf.policy("auto", max_price=1.0))   # the mock sells p5 at ~$6.88/GPU-hour
    aws = bf.aws(mock_aws)
    bf.submit(db)
    bf.place(db, {"aws": aws})
    step = _step(db, aws)
    step.tick()
    assert _rows(db) == [] and bf.blocks(mock_aws) == []
    # the workload's own limit counts too
    from sqlalchemy import delete

    from controlplane.store.models import Workload

    with db.session() as s:                     # the same store, another workload
        s.execute(delete(Workload))
    bf.put_policy(db, bf.policy("auto"))
    db2 = db
    bf.submit(db2, "cheap", extra=", maxPricePerGpuHour: 2.0")
    bf.place(db2, {"aws": aws})
    _step(db2, aws).tick()
    assert _rows(db2) == [] and bf.blocks(mock_aws) == []


def test_mode_off_buys_nothing(mock_aws: Any, db: Database,  # noqa: F811
        db_url: str) -> None:  # noqa: F811
    bf.put_policy(db, "kind: PurchasingPolicy\nmetadata: {name: m}\nspec: {mode: off, moveBeforeEnd: 2h}\n")
    aws = bf.aws(mock_aws)
    bf.submit(db)
    bf.place(db, {"aws": aws})
    step = _step(db, aws)
    for _ in range(2):
        step.tick()
    assert _rows(db) == [] and bf.blocks(mock_aws) == []


def test_a_long_queue_is_searched_over_several_passes(mock_aws: Any, db: Database,  # noqa: F811
        db_url: str) -> None:  # noqa: F811
    bf.put_policy(db, bf.policy("approve"))
    aws = bf.aws(mock_aws)
    bf.submit(db, "a")
    bf.submit(db, "b")
    bf.place(db, {"aws": aws})
    step = _step(db, aws)
    step.searches_per_pass = 1
    step.tick()
    assert len(_rows(db)) == 1
    step.tick()
    assert sorted(w for r in _rows(db) for w in r.demand["workloads"]) == ["research_a", "research_b"]


def test_an_approval_after_the_demand_went_buys_nothing(mock_aws: Any, db: Database,  # noqa: F811
        db_url: str) -> None:  # noqa: F811
    """Approved after its workload was deleted: the proposal fails saying so, and the cloud sells nothing."""
    from sqlalchemy import update

    from controlplane.purchasing.decide import decide
    from controlplane.store.models import Workload

    bf.put_policy(db, bf.policy("approve"))
    aws = bf.aws(mock_aws)
    bf.submit(db)
    bf.place(db, {"aws": aws})
    step = _step(db, aws)
    step.tick()
    (p,) = _rows(db)
    with db.session() as s:
        s.execute(update(Workload).values(state="Deleted"))
    decide(db, p.id, approve=True, actor="person")
    step.tick()
    (p,) = _rows(db)
    assert p.state == "failed" and "no longer wait" in p.message
    assert bf.blocks(mock_aws) == []
