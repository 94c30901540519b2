"""``awan get purchases`` and ``awan purchase approve|reject ID`` against a real service (in-process
uvicorn, a real store): a proposal the loop made is listed, approved once, and errors name what is wrong."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from controlplane.auth import create_token
from controlplane.purchasing.buying import token_for
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import Purchase
from tests.controlplane.cli.test_cli_habits import _run
from tests.controlplane.cli.test_service_cmds import service  # noqa: F401


def _proposal(db: Database, pid: str) -> None:
    now = utcnow()
    with db.session() as s:
        s.add(Purchase(id=pid, token=token_for(pid), state="proposed", mode="approve", policy="blocks",
                       provider="aws", region="us-east-1", zone="us-east-1a", instance_type="p5.48xlarge",
                       instance_count=2, gpus=16, offering_id="cb-0123", starts_at=now, ends_at=now + timedelta(hours=24),
                       hours=24, price=2641.92, price_per_gpu_hour=6.88, reason="research_pretrain waits",
                       demand={"workloads": ["research_pretrain"]}))


def test_get_and_approve_purchases(service: tuple[str, dict[str, str]], tmp_path: Path) -> None:  # noqa: F811
    url, tokens = service
    db = Database.from_url(f"sqlite:///{tmp_path / 'awan.db'}")
    with db.session() as s:
        admin = create_token(s, "ops", "cluster-admin")[0]
    _proposal(db, "pur-aaaa")
    _proposal(db, "pur-bbbb")

    r = _run(["get", "purchases", "-o", "name"], url, admin, tmp_path)
    assert r.exit_code == 0, r.output
    assert sorted(r.stdout.split()) == ["purchase/pur-aaaa", "purchase/pur-bbbb"]
    r = _run(["get", "purchases", "-o", "json"], url, admin, tmp_path)
    items = json.loads(r.stdout)["items"]
    assert {(i["id"], i["state"], i["price"], tuple(i["workloads"])) for i in items} == {
        ("pur-aaaa", "proposed", 2641.92, ("research_pretrain",)), ("pur-bbbb", "proposed", 2641.92, ("research_pretrain",))}
    r = _run(["get", "purchases"], url, admin, tmp_path, COLUMNS="200")
    assert r.stdout.splitlines()[0].split()[:3] == ["ID", "STATE", "WHAT"] and "2x p5.48xlarge" in r.stdout

    r = _run(["purchase", "approve", "pur-aaaa", "--note", "go"], url, tokens["research"], tmp_path)
    assert r.exit_code != 0 and "cluster-admin" in r.output          # a member may not spend
    r = _run(["purchase", "approve", "pur-aaaa", "--note", "go"], url, admin, tmp_path)
    assert r.exit_code == 0 and "purchase/pur-aaaa approved" in r.stdout, r.output
    r = _run(["purchase", "approve", "pur-aaaa"], url, admin, tmp_path)
    assert r.exit_code != 0 and "state: purchase pur-aaaa is approved" in r.output
    r = _run(["purchase", "reject", "pur-bbbb"], url, admin, tmp_path)
    assert r.exit_code == 0 and "rejected" in r.stdout
    r = _run(["purchase", "approve", "pur-nope"], url, admin, tmp_path)
    assert r.exit_code != 0 and "no purchase 'pur-nope'" in r.output and "Traceback" not in r.output
    with db.session() as s:
        assert {p.id: (p.state, p.decided_by != "") for p in s.query(Purchase)} == {
            "pur-aaaa": ("approved", True), "pur-bbbb": ("rejected", True)}
    db.dispose()
