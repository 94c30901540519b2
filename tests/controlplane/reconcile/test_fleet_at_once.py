"""The loop's reads of the clouds ask the providers at once (fleet.probe_health, fleet.capacity_snapshot): with
each mock cloud slowed by its latency fault, the request logs (one clock: the mocks run in this process) show
two clouds' calls in the air together, which a pass asking one provider after another never has. A provider
that fails is left out as before, the others still read."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from controlplane.reconcile import fleet
from controlplane.reconcile.metrics import LoopMetrics
from mockclouds.requestlog import Call
from providers.base import Provider
from providers.model import ProviderHealth
from providers.registry import build_provider

CLOUDS = {"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus", "oci": "us-ashburn-1"}
LATENCY_MS = 400


def _fault(mock: Any, cloud: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(mock.urls[cloud] + "/_mock/faults", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req).close()


def _providers(mock: Any) -> dict[str, Provider]:
    cfg = mock.config()
    return {c: build_provider(cfg.providers[c].model_copy(update={"regions": [r]})) for c, r in CLOUDS.items()}


def _calls(mock: Any) -> dict[str, list[Call]]:
    return {c: mock.backend(c).requests.entries() for c in CLOUDS}


def _clouds_together(calls: dict[str, list[Call]]) -> set[frozenset[str]]:
    flat = [(c, call) for c, cs in calls.items() for call in cs]
    return {frozenset((a, b)) for i, (a, x) in enumerate(flat) for b, y in flat[i + 1:]
            if a != b and x.start < y.end and y.start < x.end}


@pytest.mark.parametrize("read", ["health", "capacity"])
def test_the_providers_are_asked_at_once(mockclouds: Any, read: str) -> None:
    providers = _providers(mockclouds)
    try:
        health = fleet.probe_health(providers, LoopMetrics()) if read == "capacity" else None
        for c in CLOUDS:
            _fault(mockclouds, c, {"kind": "latency", "latency_ms": LATENCY_MS})
            mockclouds.backend(c).requests.clear()
        if read == "health":
            got = fleet.probe_health(providers, LoopMetrics())
            assert set(got) == set(CLOUDS) and all(isinstance(h, ProviderHealth) for h in got.values()), got
        else:
            snap = fleet.capacity_snapshot(providers, LoopMetrics(), health=health)
            assert {p.provider for p in snap.pools} == set(CLOUDS)
        calls = _calls(mockclouds)
    finally:
        for p in providers.values():
            p.close()
    assert all(calls[c] for c in CLOUDS), {c: len(v) for c, v in calls.items()}
    assert _clouds_together(calls), {c: [(x.operation, round(x.end - x.start, 3)) for x in v] for c, v in calls.items()}


def test_a_provider_whose_capacity_read_fails_is_left_out_and_named(mockclouds: Any) -> None:
    providers = _providers(mockclouds)
    try:
        health = fleet.probe_health(providers, LoopMetrics())
        _fault(mockclouds, "gcp", {"kind": "error", "status": 400, "code": "badRequest", "message": "refused"})
        failed: set[str] = set()
        snap = fleet.capacity_snapshot(providers, LoopMetrics(), health=health, failed=failed)
    finally:
        for p in providers.values():
            p.close()
    assert failed == {"gcp"}
    assert {p.provider for p in snap.pools} == set(CLOUDS) - {"gcp"}
