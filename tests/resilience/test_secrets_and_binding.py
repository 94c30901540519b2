"""A full run (service subprocess + the five mock clouds, with their credentials and API tokens): the
credentials and tokens appear in no log line, no audit event and no API response; and the service and
the mock clouds bind to loopback unless told otherwise."""

from __future__ import annotations

import inspect
import json
import socket

import httpx
import pytest

from controlplane.auth.tokens import parse_token
from controlplane.settings import Settings
from controlplane.store.db import Database
from controlplane.store.models import AuditEvent
from mockclouds.launcher import MOCK_SECRETS, MockClouds
from tests.resilience import harness as h
from tests.resilience.scenarios import Env

pytestmark = pytest.mark.slow


def _secrets(tokens: list[str]) -> list[str]:
    out = [v for creds in MOCK_SECRETS.values() for v in creds.values() if len(v) >= 8]
    for t in tokens:
        parsed = parse_token(t)
        assert parsed is not None, "the env's tokens are well-formed"
        out += [t, parsed[1]]    # the whole token and its secret part (which may itself hold '_')
    return out


def _non_loopback_ip() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))      # no packet is sent; picks the outbound interface
            ip = s.getsockname()[0]
        return None if ip.startswith("127.") else ip
    except OSError:
        return None


def test_no_secret_in_logs_events_or_responses(tmp_path, mockclouds):
    env = Env(mockclouds, tmp_path)
    assert all(creds for creds in MOCK_SECRETS.values())
    svc = env.service()
    bodies: list[str] = []
    try:
        names = [f"sec-{i}" for i in range(3)]
        h.submit_all(svc.url, env.member, [h.manifest(n) for n in names])
        h.wait_all(env.db_url, "Running", names, 240)
        with httpx.Client(base_url=svc.url, timeout=30) as c:
            for token in (env.member, env.admin):
                auth = {"Authorization": f"Bearer {token}"}
                paths = ["/healthz", "/readyz", "/metrics", "/v1/workloads", "/v1/events", "/v1/stacks",
                         "/v1/providers", "/v1/capacity", "/v1/summary", "/v1/policies", "/openapi.json",
                         "/v1/workloads/nope"]
                paths += [f"/v1/workloads/{n}{s}" for n in names for s in ("", "/placement", "/events")]
                for p in paths:
                    r = c.get(p, headers=auth)
                    bodies.append(f"{p} {r.status_code} {dict(r.headers)} {r.text}")
                r = c.post("/v1/workloads", content="kind: [", headers=auth)     # an error response too
                bodies.append(f"bad {r.status_code} {r.text}")
            r = c.get("/v1/workloads", headers={"Authorization": f"Bearer {env.member}x"})
            bodies.append(f"wrong token {r.status_code} {r.text}")
        ip = _non_loopback_ip()
        if ip is not None:   # the default bind address is loopback: another interface must not answer
            with pytest.raises(httpx.HTTPError):
                httpx.get(f"http://{ip}:{svc.port}/healthz", timeout=2)
    finally:
        svc.stop()
    db = Database.from_url(env.db_url)
    with db.session() as s:
        events = [json.dumps({"a": e.action, "s": e.subject, "d": e.details, "actor": e.actor}, default=str)
                  for e in s.query(AuditEvent)]
    db.dispose()
    logs = env.log.read_text(errors="replace")
    assert len(events) > 10 and len(bodies) > 40 and logs   # the run produced something to search
    for secret in _secrets([env.member, env.admin]):
        assert secret not in logs, f"secret {secret[:4]}... in the service log"
        assert not [e for e in events if secret in e], f"secret {secret[:4]}... in an audit event"
        assert not [b for b in bodies if secret in b], f"secret {secret[:4]}... in an API response"


def test_defaults_bind_to_loopback():
    assert Settings().host == "127.0.0.1"
    assert inspect.signature(MockClouds.__init__).parameters["host"].default == "127.0.0.1"
    with MockClouds(clouds=("coreweave",)) as mc:
        assert all(u.startswith("http://127.0.0.1:") for u in mc.urls.values())
