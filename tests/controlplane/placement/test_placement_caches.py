"""The engine's caches give what a cold engine gives.

The placement core keeps, per (snapshot structure, policies): candidate lists per workload class (found by
a plain-tuple key), each group's one-pool option as a first replica scores it (``Group.solo``), the static
part of placed decisions' rejections (``explain.RejectionTails``), and CEL results shared between inputs
that agree on what a rule reads (``celkeys``). Each test runs a warm engine, whose caches were filled by
other decisions in another state, beside a cold one and asks for the same decisions, text included.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from placement_fleet import AT, pool, snapshot, workload
from test_placement_properties import fleets, policy_sets, workloads

from controlplane.placement import FleetSnapshot, IndexCache, Placer
from controlplane.placement import explain as explain_mod
from controlplane.placement.cache import index_for
from controlplane.placement.candidates import SnapshotIndex
from controlplane.placement.celkeys import project, rule_fields
from controlplane.placement.views import WorkloadClass
from controlplane.policy import PolicySet
from controlplane.policy.cel_rules import compile_rule
from controlplane.policy.model import Weights
from providers.catalog import default_catalog
from providers.model import HealthStatus


def _cold(ps: PolicySet) -> PolicySet:
    """An equal policy set with its own identity: an IndexCache keys indexes per policy object, so this one
    starts with every cache empty."""
    return dataclasses.replace(ps)


def _doc(d: Any) -> str:
    return json.dumps(d.to_json()) + "|" + "; ".join(d.reasons)


def _state(p: Placer) -> tuple:
    s = p.state
    return (list(s.free), list(s.quota_left), sorted(s.provider_gpus.items()), s.total_gpus,
            sorted(s.team_gpus.items()), sorted(s.team_dollars.items()), sorted(s.commit_left.items()))


def _reference(p: Placer) -> Placer:
    """``p`` on the general packing path only (gangs.pack for every group, no ``Group.plan``), which the
    fast path of groups with a plan (fill_plain, first_fit, Group.solo) must agree with."""
    index = p.index
    build = index._build

    def without_plans(wc: WorkloadClass) -> Any:
        cc = build(wc)
        for g in cc.groups:
            g.plan = g.first_fit = None
        return cc
    index._build = without_plans            # type: ignore[method-assign]
    return p


def _same_run(snap: Any, ps: PolicySet, ws: list, releases: tuple[int, ...] = ()) -> None:
    """Warm the shared index with one run, then run again on it and on a cold index that packs every group
    the general way: same decisions, same state."""
    cache = IndexCache()
    warm_up = Placer(snap, ps, cache=cache)
    for w in reversed(ws):                         # another order: other states, other cache entries
        warm_up.place_one(w).to_json()
    warm, cold = Placer(snap, ps, cache=cache), _reference(Placer(snap, _cold(ps), cache=cache))
    assert warm.index is warm_up.index and cold.index is not warm.index
    for i, w in enumerate(ws):
        assert _doc(warm.place_one(w)) == _doc(cold.place_one(w))
        assert _state(warm) == _state(cold)
        if i in releases:
            assert warm.release(ws[i // 2].name) == cold.release(ws[i // 2].name)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets(), policy_sets(), workloads(), st.booleans())
def test_warm_engine_decides_like_a_cold_one(snap, ps, ws, spread):
    if spread:
        ps = dataclasses.replace(ps, weights=Weights(spread=1.0))
    _same_run(snap, ps, list(ws) + [w.model_copy(update={"metadata": w.metadata.model_copy(
        update={"name": w.name + "-again"})}) for w in ws], releases=(2, 5))


_SHAPES = ("{gpus: {model: H100, count: 8, perNode: 8}}", "{gpus: {model: H100, count: 1}}",
           "{kind: inference, replicas: 3, gpus: {model: [H100, L4], count: 1}}",
           "{gpus: {model: H100, count: 16, perNode: 8}, topology: {domain: zone}}",
           "{gpus: {model: [A100, H200], count: 8}, capacityType: [spot, on-demand]}",
           "{gpus: {model: L4, count: 1}, location: {geo: [eu]}}")


def _stream(n: int) -> list:
    return [workload(_SHAPES[i % len(_SHAPES)], name=f"w{i}") for i in range(n)]


def _catalog_fleet() -> Any:
    """The whole catalog with a node or so per pool: pools run out and winners change all the time."""
    return FleetSnapshot.from_catalog(default_catalog(), scale=0.1, taken_at=AT)


def _small_fleet(scale: int = 1, **kw: Any) -> Any:
    return snapshot([pool("aws", "us-east-1", "us-east-1a", "p5.48xlarge", nodes=3 * scale),
                     pool("aws", "us-east-1", "us-east-1b", "p5.48xlarge", nodes=2 * scale),
                     pool("aws", "us-east-1", "us-east-1a", "p5.48xlarge", "spot", nodes=2 * scale),
                     pool("gcp", "europe-west1", "europe-west1-b", "a3-megagpu-8g", nodes=4 * scale),
                     pool("gcp", "us-central1", "us-central1-a", "a3-highgpu-1g", nodes=3 * scale),
                     pool("azure", "eastus", "eastus-1", "Standard_NC40ads_H100_v5", nodes=2 * scale)], **kw)


@pytest.mark.parametrize("spread", [0.0, 1.0])
def test_warm_engine_on_a_fleet_that_keeps_running_out(spread):
    """Group.solo, rejection tails and class keys on the whole catalog while pools run out and winners
    change; spreading replicas (scored per replica, not cached) in between."""
    ps = PolicySet(weights=Weights(spread=spread))
    _same_run(_catalog_fleet(), ps, _stream(150), releases=tuple(range(3, 150, 4)))


def test_warm_engine_with_partial_racks():
    """NVLink rack types take whole racks: a pool with a rack and some loose nodes holds one gang, then none."""
    snap = snapshot([pool("coreweave", "US-EAST-04", "US-EAST-04A", "gb200-4x", nodes=20),
                     pool("coreweave", "US-EAST-04", "US-EAST-04B", "gb200-4x", nodes=30),
                     pool("aws", "us-east-1", "us-east-1a", "p6e-gb200.36xlarge", "reserved", nodes=36,
                          reservation="cb-1")])
    gang = "{gpus: {model: GB200, count: 72, perNode: 4}, topology: {domain: nvlink, domainSize: 72}}"
    _same_run(snap, PolicySet.default(), [workload(gang, name=f"g{i}") for i in range(6)], releases=(3,))


def test_one_pool_options_are_reused():
    """Group.solo: the same option object comes back while its pool has room."""
    snap, ps = _small_fleet(), PolicySet.default()
    p = Placer(snap, _cold(ps))
    first = p.place_one(workload("{gpus: {model: H100, count: 8, perNode: 8}}", name="a"))
    second = p.place_one(workload("{gpus: {model: H100, count: 8, perNode: 8}}", name="b"))
    cc = p.index.lookup(workload("{gpus: {model: H100, count: 8, perNode: 8}}", name="c"))
    assert any(g.solo for g in cc.groups)
    [(o1, _)] = [v for g in cc.groups for v in g.solo.values() if v[0].takes[0].pv.pool.zone == "europe-west1-b"]
    chosen = {n: opts for n, (_, opts) in p.chosen.items()}
    assert chosen["a"][0] is o1 and chosen["b"][0] is o1          # one object, shared
    assert first.to_json()["zone"] == second.to_json()["zone"] == "europe-west1-b"
    # the runner-up dicts handed out are copies: changing one changes no other decision
    first.runners_up[0]["terms"]["cost"] = -1.0
    assert second.runners_up[0]["terms"]["cost"] != -1.0


@pytest.mark.parametrize("change", ["price", "health", "blocked"])
def test_a_structural_change_gets_a_new_index_and_new_options(change):
    """Options and texts are cached with the index, which is keyed by the snapshot's structure: a new price,
    a degraded region or a blocked pool must not be served from the old one."""
    snap, ps = _small_fleet(), PolicySet.default()
    w = workload("{gpus: {model: H100, count: 8, perNode: 8}}")
    cache = IndexCache()
    before = Placer(snap, ps, cache=cache)
    d0 = before.place_one(w)
    capacity_only = dataclasses.replace(snap, pools=tuple(dataclasses.replace(p, available_nodes=p.available_nodes + 1)
                                                          for p in snap.pools))
    assert Placer(capacity_only, ps, cache=cache).index._classes is before.index._classes    # a refresh reuses it
    gcp = snap.pools[3]
    if change == "price":
        new = dataclasses.replace(snap, pools=snap.pools[:3] + (dataclasses.replace(gcp, price_per_hour=500.0),)
                                  + snap.pools[4:])
    elif change == "health":
        new = dataclasses.replace(snap, region_health={("gcp", "europe-west1"): HealthStatus.DEGRADED})
    else:
        new = snap.with_blocked([(gcp.provider, gcp.zone, gcp.instance_type, "on-demand", "")])
    after = Placer(new, ps, cache=cache)
    assert after.index._classes is not before.index._classes
    d1 = after.place_one(w)
    assert _doc(d1) == _doc(_reference(Placer(new, _cold(ps))).place_one(w))
    assert _doc(d1) != _doc(d0)


def test_rejection_tails_match_the_plain_rule_even_when_the_cache_is_cleared(monkeypatch):
    """placed_rejections against the rule it implements, spelt out, over many decisions (other winners,
    depths and failures), with a cache small enough to be cleared on the way."""
    monkeypatch.setattr(explain_mod.RejectionTails, "LIMIT", 2)
    seen_keys: list[int] = []
    real = explain_mod.placed_rejections

    def check(cc, best, opts, fails, seen):
        got = real(cc, best, opts, fails, seen)
        want = dict(cc.rejections)
        win = best.group.key
        for k, f in fails.items():
            if k != win:
                want[k] = f.message
        for o in opts[1:]:
            if o.group.key != win and o.group.key not in want:
                want[o.group.key] = explain_mod._outscored(o, best, f"{best.score:.3f}", win)   # tie wording
        for g in cc.groups[seen:]:
            if g.key != win and g.key not in want:
                want[g.key] = f"outscored: at most {g.upper_bound:.3f} < winner {best.score:.3f} ({win})"
        assert got == want and list(got) == sorted(got)
        seen_keys.append(len(cc.tails.cache))
        return got

    import controlplane.placement.placer as placer_mod
    monkeypatch.setattr(placer_mod, "placed_rejections", check)
    p = Placer(_catalog_fleet(), PolicySet.default())
    for i, w in enumerate(_stream(120)):
        p.place_one(w).to_json()
        if i % 3 == 2:
            p.release(f"w{i - 2}")
    assert len(seen_keys) > 50 and max(seen_keys) <= 2


def test_class_key_finds_the_same_candidates_as_the_class():
    snap, ps = _small_fleet(), PolicySet.default()
    idx = SnapshotIndex(snap, ps)
    a = workload("{gpus: {model: H100, count: 8}}", name="a")
    b = workload("{gpus: {model: H100, count: 8}}", name="b")
    c = workload("{gpus: {model: H100, count: 8}}", name="c", team="other")
    cc = idx.lookup(a)
    assert idx.lookup(b) is cc and cc.wc == WorkloadClass.of(a) == WorkloadClass.of(b)
    assert idx.candidates(WorkloadClass.of(a)) is cc
    assert idx.lookup(c) is not cc and idx.lookup(c).wc.team == "other"


@pytest.mark.parametrize("expr, fields", [
    ('workload.kind != "training" || candidate.capacityType != "spot"', {"workload": ("kind",),
                                                                          "candidate": ("capacityType",)}),
    ('size(workload.labels) > 0 && candidate.zone.startsWith("us")', {"workload": ("labels",),
                                                                       "candidate": ("zone",)}),
    ('"candidate[0]" == candidate . zone', {"workload": (), "candidate": ("zone",)}),
    ('x.candidate == 1', {"workload": (), "candidate": ()}),
    ('candidate["zone"] == "a"', None),                           # indexed
    ('.candidate.zone == "a"', None),                             # root-scope name
    ('"a" in .candidate.zone', None),
    ('candidate.exists(k, k == "zone")', None),                   # iterated
    ('workload.labels.exists(candidate, candidate == "x")', None),  # shadowed
    ('size(candidate) > 3', None),                                # passed whole
    ('candidate.zone(1)', None),                                  # called
    ('candidate.?zone == "a"', None),                             # optional select
    ('r"a\\" == candidate.zone', None),                           # a backslash: not followed
    ('candidate.zone == "a" // candidate[1]', None),              # a comment: not followed
])
def test_rule_fields_reads_only_plain_selections(expr, fields):
    assert rule_fields(expr) == fields


def test_project_keeps_apart_what_cel_keeps_apart():
    f = ("x",)
    assert project({"x": 1}, f) != project({"x": 1.0}, f) != project({"x": True}, f)
    assert project({"x": {"a": "1"}}, f) == project({"x": {"a": "1"}}, f) != project({"x": {"a": "2"}}, f)
    assert project({}, f) != project({"x": None}, f)


@pytest.mark.parametrize("expr", [
    'candidate.zone != "us-east-1b"',                                   # pool by pool
    'candidate.pricePerGpuHour < 6.0 || workload.priority > 5',         # numbers, two maps
    'workload.labels.exists(k, k == "tier") || candidate.capacityType == "on-demand"',
    'size(candidate) > 100 || candidate.zone.endsWith("a")',            # not shareable: evaluated per pool
])
def test_shared_cel_results_equal_evaluating_every_pool(expr):
    snap = _small_fleet()
    ps = PolicySet(rules=(compile_rule("r", expr, "r says no"),))
    shared = SnapshotIndex(snap, ps)
    every = SnapshotIndex(snap, ps)
    every._cel_fields = [None]                      # as before sharing: one evaluation per (class, pool)
    for spec, labels in (("{gpus: {model: H100, count: 8}, priority: 9}", "{}"),
                         ("{gpus: {model: H100, count: 1}}", "{tier: gold}"),
                         ("{gpus: {model: H100, count: 8}, capacityType: [spot, on-demand]}", "{}")):
        wc = WorkloadClass.of(workload(spec, labels=labels))
        a, b = shared.candidates(wc), every.candidates(wc)
        assert [(g.key, [pv.idx for pv in g.pools]) for g in a.groups] == \
            [(g.key, [pv.idx for pv in g.pools]) for g in b.groups]
        assert a.rejections == b.rejections
    if rule_fields(expr) is not None:
        assert shared._cel_shared and len(shared._cel_shared) < len(every._cel_cache)


def test_index_for_reuses_and_rebuilds():
    """The caller owns the cache: with one, the same snapshot and policies get the same index, a capacity
    refresh gets it rebased, another policy set its own; without one, every call builds afresh (placement
    keeps nothing between calls)."""
    snap, ps = _small_fleet(), PolicySet.default()
    cache = IndexCache()
    first = index_for(snap, ps, cache)
    assert index_for(snap, ps, cache) is first
    assert index_for(snap, _cold(ps), cache) is not first
    refreshed = dataclasses.replace(snap, pools=tuple(dataclasses.replace(p, available_nodes=0) for p in snap.pools))
    rebased = index_for(refreshed, ps, cache)
    assert rebased.snapshot is refreshed and rebased._classes is first._classes
    assert (cache.built, cache.rebased) == (2, 1)
    assert index_for(snap, ps) is not index_for(snap, ps)
