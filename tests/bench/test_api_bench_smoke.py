"""`python -m bench --suite api --quick` end to end: a real uvicorn subprocess on SQLite, closed-loop httpx
clients, and the reconcile throughput through the real Controller (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.__main__ import main
from bench.api.reconcile import reconcile_throughput


def test_reconcile_places_every_workload_and_hands_their_pools_to_the_engine(tmp_path: Path) -> None:
    r = reconcile_throughput(f"sqlite:///{tmp_path}/rc.db", 60)
    assert r.states.get("Pending", 0) == 0
    assert sum(r.states.values()) == 60
    assert r.pools_held >= r.states.get("Provisioning", 0) > 0
    assert r.workloads_per_s > 0


def test_quick_api_bench_serves_submit_and_list_without_errors(tmp_path: Path) -> None:
    rc = main(["--suite", "api", "--quick", "--no-pin", "--api-dbs", "sqlite", "--api-clients", "1,2",
               "--api-seconds", "0.5", "--api-reconcile-workloads", "40", "--results-dir", str(tmp_path)])
    res = json.loads((tmp_path / "api-latest.json").read_text())
    assert res["errors"] == {}, res["errors"]
    assert rc == 0
    cells = {(c["db"], c["op"], c["clients"]) for c in res["cells"]}
    assert cells == {("sqlite", op, n) for op in ("submit", "list") for n in (1, 2)}
    assert all(c["requests"] > 0 and c["p50_ms"] <= c["p99_ms"] for c in res["cells"])
    assert res["reconcile"]["states"].get("Pending", 0) == 0
