"""Failure isolation as a property (issue 13): random mixes of valid and invalid workloads of several
teams, sharing stacks, on the five mock clouds (real adapters over HTTP, the local engine, the real
placement engine and shipped policies). Every valid workload ends Running; every invalid one is refused
at the door or stays unplaced, each with its own reason; no message names another team's objects; and
the clouds hold exactly the nodes that are assigned."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from controlplane.api import workload_service
from controlplane.auth.tokens import Principal
from controlplane.errors import ServiceError
from controlplane.policy import load_policies
from controlplane.reconcile.controller import Controller, LoopConfig
from controlplane.reconcile.leader import LeaderElector
from controlplane.store import workloads as repo
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from controlplane.store.models import Role
from controlplane.store.stack_state import DbStackStateStore
from infra.engines.select import select_engine
from providers.registry import build_providers
from tests.resilience import harness as h

pytestmark = pytest.mark.slow
POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
# A few regions first, so that workloads of different teams share stacks; any other region of the same
# provider after them, so that a valid workload that meets a full region still has somewhere to go.
REGIONS = ["aws:us-east-1", "gcp:us-central1", "azure:eastus", "coreweave:US-EAST-04", "oci:us-ashburn-1"]
TEAMS = ["alpha", "beta", "gamma"]


@dataclass(frozen=True)
class Item:
    team: str
    name: str
    region: str
    flavour: str     # valid-serve | valid-gang | bad-name | bad-int | bad-label | unplaceable


def _manifest(it: Item) -> str:
    name, labels, gpus, extra = it.name, "{}", "{model: H100, count: 8, perNode: 8}", ""
    kind = "training" if it.flavour == "valid-gang" else "inference"
    if it.flavour == "valid-gang":
        gpus = "{model: H100, count: 16, perNode: 8}"
    elif it.flavour == "bad-name":
        name = f'"{it.name}\\n"'
    elif it.flavour == "bad-int":
        gpus = "{model: H100, count: 10000000000000000000}"
    elif it.flavour == "bad-label":
        labels = '{"bad key": x}'
    elif it.flavour == "unplaceable":
        extra = ", maxPricePerGpuHour: 0.01"
    return (f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {name}, team: {it.team}, "
            f"labels: {labels}}}\nspec: {{kind: {kind}, gpus: {gpus}, capacityType: [on-demand], "
            f"location: {{regions: ['{it.region}', '{it.region.split(':')[0]}:*']}}{extra}}}\n")


FLAVOURS = ["valid-serve", "valid-serve", "valid-gang", "bad-name", "bad-int", "bad-label", "unplaceable"]
items = st.lists(st.builds(Item, st.sampled_from(TEAMS), st.sampled_from(["train", "serve", "job"]),
                           st.sampled_from(REGIONS), st.sampled_from(FLAVOURS)),
                 min_size=3, max_size=6, unique_by=lambda i: (i.team, i.name))


def _controller(db: Database, cfg: Any) -> tuple[Controller, dict[str, Any]]:
    providers = build_providers(cfg)
    engine = select_engine("local", config=cfg, store=DbStackStateStore(db))
    # The test drives the loop by hand: a lease far longer than any pass, renewed before each one.
    elector = LeaderElector(db, "prop", ttl_s=3600, renew_s=5)
    c = Controller(db, providers, engine, elector=elector, policies=lambda: POLICIES,
                   config=LoopConfig(interval_s=0.05, resync_s=5, retry_base_s=0.05, retry_max_s=1.0,
                                     short_bound_s=15))
    return c, providers


@pytest.mark.timeout(1500)
@settings(max_examples=3, deadline=None, phases=[Phase.generate], derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mix=items)
def test_one_bad_workload_never_hurts_another(mix: list[Item], mockclouds: Any, mock_config: Any,
                                              tmp_path_factory: Any) -> None:
    mockclouds.reset()
    url = f"sqlite:///{tmp_path_factory.mktemp('iso') / 'awan.db'}"
    db = Database.from_url(url)
    upgrade(db.engine)
    refused: dict[Item, str] = {}
    for it in mix:
        try:
            workload_service.submit(db, Principal(f"t-{it.team}", it.team, Role.MEMBER), _manifest(it), "body")
        except ServiceError as e:
            refused[it] = str(e)
    valid = [it for it in mix if it.flavour.startswith("valid")]
    unplaceable = [it for it in mix if it.flavour == "unplaceable"]
    # Refused at the door, each for its own field, and nothing stored for it.
    assert set(refused) == {it for it in mix if it.flavour.startswith("bad")}, refused
    own_field = {"bad-name": "body: metadata.name", "bad-int": "body: spec.gpus.count",
                 "bad-label": "body: metadata.labels"}
    for it, why in refused.items():
        assert why.startswith(own_field[it.flavour]), (it, why)
    c, providers = _controller(db, mock_config)
    try:
        deadline = time.monotonic() + 400   # generous: a loaded 2-core machine is slow
        while time.monotonic() < deadline:
            c.elector.step()
            c.tick()
            c.wait_idle(120)
            rows = _rows(db)
            if all(rows[(it.team, it.name)].state == "Running" for it in valid) and \
                    all(rows[(it.team, it.name)].message.startswith("no ") or "price" in rows[(it.team, it.name)].message
                        for it in unplaceable):
                break
            time.sleep(0.05)
        rows = _rows(db)
        assert {(it.team, it.name): rows[(it.team, it.name)].state for it in valid} == \
            {(it.team, it.name): "Running" for it in valid}, {k: (r.state, r.message) for k, r in rows.items()}
        for it in unplaceable:
            r = rows[(it.team, it.name)]
            assert r.state == "Pending" and "price" in r.message, r.message
        # No message, and no event a team can read, names another team's workload key or pool.
        for (team, _name), r in rows.items():
            theirs = {x for (t, _n), o in rows.items() if t != team for x in (o.key, *o.pools)}
            text = " ".join([r.message, *r.events])
            assert not [x for x in theirs if x and re.search(re.escape(x), text)], (team, text)
        # Settled: the clouds hold exactly the nodes that are assigned (drift repaired, nothing extra).
        for _ in range(40):
            assigned, live = h.nodes_assigned_and_live(url, mockclouds)
            if assigned == live:
                break
            c.elector.step()
            c.tick()
            c.wait_idle(120)
            time.sleep(0.25)
        assert assigned == live, (assigned, live)
    finally:
        c.stop(release_lease=True)
        for p in providers.values():
            p.close()
        db.dispose()


@dataclass
class _Row:
    state: str
    message: str
    key: str
    pools: list[str]
    events: list[str]


def _rows(db: Database) -> dict[tuple[str, str], _Row]:
    from controlplane.store import audit

    with db.session() as s:
        out = {}
        for w in repo.list_(s, include_deleted=True):
            evs = [str(e.details) for e in audit.events(s, kind="workload", subject=w.name, team=w.team, limit=1000)]
            out[(w.team, w.name)] = _Row(w.state, w.message, w.key, [a.pool for a in w.assignments], evs)
        return out
