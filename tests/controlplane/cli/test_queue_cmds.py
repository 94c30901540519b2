"""``awan get queues``: quota use and borrowing per queue, and a queue's waiting workloads with -o wide."""

from __future__ import annotations

import json
from pathlib import Path

from controlplane.reconcile.admitting import QueueSource, admit_pending
from controlplane.reconcile.policy_source import PolicySource
from controlplane.store import policies as policy_store
from controlplane.store.db import Database
from tests.controlplane.cli.test_cli_habits import _run
from tests.controlplane.cli.test_service_cmds import service  # noqa: F401

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = (REPO / "policies" / "examples" / "queues.yaml").read_text()


def _wl(name: str, gpus: int) -> str:
    return (f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {name}, team: research}}\n"
            f"spec: {{gpus: {{model: H100, count: {gpus}, perNode: 8}}}}\n")


def test_get_queues(service, tmp_path: Path) -> None:  # noqa: F811
    url, tokens = service
    db = Database.from_url(f"sqlite:///{tmp_path / 'awan.db'}")
    with db.session() as s:
        policy_store.put_document(s, EXAMPLE, "test")
    f = tmp_path / "w.yaml"
    f.write_text(_wl("big", 1120) + "---\n" + _wl("after", 64))   # nominal 1100; the others lend 72
    assert _run(["apply", "-f", str(f)], url, tokens["research"], tmp_path).exit_code == 0
    admit_pending(db, QueueSource(PolicySource(db).document).current(), fenced=lambda: True, actor="test")
    r = _run(["get", "queues"], url, tokens["research"], tmp_path)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()      # the in-process server logs to stderr, which r.output mixes in
    assert lines[0].split() == ["NAME", "COHORT", "WEIGHT", "USED/NOMINAL", "BORROWED", "ADMITTED", "PENDING"]
    assert next(x.split() for x in lines if x.startswith("research")) == ["research", "ml", "2", "h100=1120/1100,h200=0/64,gb200=0/144", "20", "1", "1"]
    r = _run(["get", "queue", "research", "-o", "wide"], url, tokens["research"], tmp_path)
    assert r.exit_code == 0 and "#1 after" in r.stdout and "quota" in r.stdout
    r = _run(["get", "queues", "-o", "json"], url, tokens["research"], tmp_path)
    assert {q["name"] for q in json.loads(r.stdout)["items"]} == {"research", "product", "sweeps"}
    r = _run(["get", "queue", "nope"], url, tokens["research"], tmp_path)
    assert r.exit_code != 0 and "queue 'nope' not found" in r.output
    db.dispose()


def test_policy_apply_stores_queues_and_refuses_a_bad_document(service, tmp_path: Path) -> None:  # noqa: F811
    from controlplane.auth import create_token

    url, _ = service
    db = Database.from_url(f"sqlite:///{tmp_path / 'awan.db'}")
    with db.session() as s:
        admin = create_token(s, "ops", "cluster-admin")[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.replace("weight: 2", "weight: -2"))
    r = _run(["policy", "apply", "-f", str(bad)], url, admin, tmp_path)
    assert r.exit_code == 1 and "spec.queues[0].weight" in r.output
    r = _run(["policy", "apply", "-f", str(REPO / "policies"), "-f", str(REPO / "policies/examples/queues.yaml")],
             url, admin, tmp_path)
    assert r.exit_code == 0, r.output
    assert "kind: QueuePolicy" in _run(["policy", "get"], url, admin, tmp_path).output
    r = _run(["get", "queues", "-o", "name"], url, admin, tmp_path)
    assert r.stdout.split() == ["queue/research", "queue/product", "queue/sweeps"]
    db.dispose()
