"""The access log, one log event per audited change (after its commit only), /metrics with process, HTTP,
leader and build families, and /docs served without any CDN."""

from __future__ import annotations

import contextlib
import json
import re

from controlplane.logs import configure_logging
from tests.controlplane.api.conftest import auth
from tests.controlplane.reconcile.fakes import manifest


def _events(err: str) -> list[dict]:
    out = []
    for line in err.splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def test_access_log_and_one_event_per_change(client, tokens, capsys):
    configure_logging("INFO", fmt="json")
    assert client.post("/v1/workloads", content=manifest("logged"), headers=auth(tokens["research"])).status_code == 201
    assert client.post("/v1/workloads", content=manifest("logged", gpus=8), headers=auth(tokens["research"])).status_code == 409
    client.get("/healthz")
    evs = _events(capsys.readouterr().err)
    access = [e for e in evs if e["event"] == "http request"]
    assert {(e["method"], e["route"], e["status"]) for e in access} == {("POST", "/v1/workloads", 201),
                                                                        ("POST", "/v1/workloads", 409)}
    assert all("duration_ms" in e and e["logger"] == "awan.access" for e in access)
    changes = [e for e in evs if e["event"] == "workload submitted"]
    assert len(changes) == 1 and changes[0]["subject"] == "logged" and changes[0]["team"] == "research"
    assert not any(tokens["research"] in json.dumps(e) for e in evs)


def test_metrics_have_process_http_leader_build_and_labels(client, tokens):
    client.post("/v1/workloads", content=manifest("m1"), headers=auth(tokens["research"]))
    client.get("/v1/workloads/m1", headers=auth(tokens["research"]))
    m = client.get("/metrics").text
    assert re.search(r'^awan_http_requests_total\{method="GET",route="/v1/workloads/\{name\}",status="200"\} 1\.0$', m, re.M)
    assert "awan_http_request_duration_seconds_bucket" in m
    assert "process_resident_memory_bytes" in m and "python_info" in m
    assert re.search(r'^awan_build_info\{python="[\d.]+",version="0\.1\.0"\} 1\.0$', m, re.M)
    assert re.search(r'^awan_leader\{replica="[^"]+"\} 0\.0$', m, re.M)    # this app runs no loop
    assert re.search(r'^awan_workloads\{state="Pending",team="research"\} 1\.0$', m, re.M)
    client.get("/no/such/path")
    assert 'route="<unmatched>"' in client.get("/metrics").text


def test_docs_work_offline(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert not re.search(r"(src|href)=[\"']https?://", page.text), "Swagger UI must not load from a CDN"
    for asset in re.findall(r"(?:src|href)=[\"'](/static/swagger-ui/[^\"']+)", page.text):
        r = client.get(asset)
        assert r.status_code == 200 and len(r.content) > 500, asset
    assert client.get("/static/swagger-ui/LICENSE").status_code == 200
    assert client.get("/redoc").status_code == 404          # ReDoc is CDN-only: not offered
