"""CPU time per request, the figure a shared machine disturbs least: ``python bench/growth/cpu.py DB_URL
TOKEN N DEEP_ID`` (run with a tree first on ``PYTHONPATH``: that tree's app) serves the app in this process
(``TestClient``: no sockets, no second process) and prints, as JSON per operation, the process CPU time per
request (client side included, the same in every tree) and the wall p50/p99. The operations are
``bench.growth.run``'s."""

from __future__ import annotations

import base64
import json
import sys
import time
from typing import Any

from fastapi.testclient import TestClient

from controlplane.api import create_app
from controlplane.settings import Settings

_OPS = ("submit", "list", "list-deep", "list-state", "list-state-deep")


def _manifest(name: str) -> str:
    return (f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {name}}}\n"
            "spec: {kind: inference, gpus: {model: H100, count: 8, perNode: 8}}\n")


def main(argv: list[str]) -> None:
    db_url, token, n, deep = argv[0], argv[1], int(argv[2]), int(argv[3])
    cursor = base64.urlsafe_b64encode(f"id:{deep}".encode()).decode().rstrip("=")
    app = create_app(Settings(db_url=db_url, reconcile=False, log_level="WARNING"), providers={})
    out: dict[str, Any] = {}
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        c.get("/v1/workloads", params={"limit": 1}).raise_for_status()
        stamp = int(time.time())
        for op in _OPS:
            lat: list[float] = []
            cpu0 = time.process_time()
            for i in range(n):
                t0 = time.perf_counter()
                if op == "submit":
                    r = c.post("/v1/workloads", content=_manifest(f"c{stamp}-{i}"),
                               headers={"Content-Type": "application/yaml"})
                else:
                    params: dict[str, Any] = {"limit": 100}
                    if op.startswith("list-state"):
                        params["state"] = "Pending"
                    if op.endswith("deep"):
                        params["cursor"] = cursor
                    r = c.get("/v1/workloads", params=params)
                lat.append(time.perf_counter() - t0)
                if r.status_code not in (200, 201):
                    raise SystemExit(f"{op}: HTTP {r.status_code} {r.text[:200]}")
            cpu = time.process_time() - cpu0
            lat.sort()
            out[op] = {"cpu_ms": round(1000 * cpu / n, 2), "p50_ms": round(1000 * lat[len(lat) // 2], 2),
                       "p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2)}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
