"""Rejections counted by rule (what `awan plan` writes by default) agree with the full rejections map.

``Decision.summarize`` counts from the engine's captured data without building the ~100 rejection texts
(explain.placed_rule_counts); here it is held to ``RuleCounter`` over the full map, spelt out, on a stream
that meets every kind of rejection: static rules, outscored and tied runners-up, capacity and quota
shortfalls, the provider share cap."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench.plan.manifests import manifest_docs
from controlplane.model.manifest import parse_documents
from controlplane.placement import FleetSnapshot, place
from controlplane.placement.explain import FAILURE_RULE, RuleCounter, rule_of
from controlplane.policy import PolicySet, load_policies
from providers.catalog import default_catalog

REPO = Path(__file__).resolve().parents[3]


def _spelt_out(rejections: dict[str, str]) -> list[tuple[str, int, str, str]]:
    rules: dict[str, list[str]] = {}
    for k in sorted(rejections):
        rules.setdefault(rejections[k].split(":", 1)[0], []).append(k)
    return [(r, len(ks), ks[0], rejections[ks[0]]) for r, ks in sorted(rules.items(), key=lambda rk: (-len(rk[1]), rk[0]))]


@pytest.mark.parametrize("scale", [0.05, 1.0])     # capacity runs out / the catalog's own fleet
def test_summary_equals_counting_the_full_map(scale: float) -> None:
    """Placed and unplaced decisions alike (an unplaced one carries a failure per group its search reached,
    counted without wording them: explain.unplaced_rule_counts)."""
    # residency, provider share cap, commitments, CEL rules
    seen_rules, unplaced = _check_summaries(1_500, 7, scale, load_policies(REPO / "policies"))
    # the stream reached the per-decision rules, not only the class-wide ones
    assert {"outscored", "capacity", "gpu", "location"} <= set(seen_rules), seen_rules
    if scale < 1:
        assert set(FAILURE_RULE.values()) & set(seen_rules)
        assert unplaced["no-capacity"] > 50, unplaced
    else:
        assert "tied" in seen_rules, seen_rules


def test_summary_of_workloads_nothing_matches() -> None:
    """Without the repository's policies a tiny fleet leaves classes with no candidate group at all."""
    _, unplaced = _check_summaries(600, 3, 0.02, PolicySet.default())
    assert unplaced["nothing-matches"] > 10 and unplaced["no-capacity"] > 10, unplaced


def _check_summaries(n: int, seed: int, scale: float, policies: PolicySet) -> tuple[Counter[str], Counter[str]]:
    """Every decision's summary held to counting its full rejections map; the rules seen and the unplaced
    decisions checked, by kind."""
    workloads = parse_documents(manifest_docs(n, seed=seed))
    snap = FleetSnapshot.from_catalog(default_catalog(), scale=scale)
    summaries = {}
    for d in place(workloads, snap, policies).decisions:
        if d.summarize is not None:
            summaries[d.workload] = d.summarize()
    # the same decisions again, their explanations built in full
    seen_rules: Counter[str] = Counter()
    counter = RuleCounter()
    checked = 0
    unplaced: Counter[str] = Counter()
    for d in place(workloads, snap, policies).decisions:
        assert d.workload in summaries, d.workload
        if not d.placed:
            unplaced[d.unplaced_kind] += 1
        why, counts = summaries[d.workload]
        full = d.rejections
        want = _spelt_out(full)
        assert counts == want, d.workload
        assert counter(dict(sorted(full.items()))) == want
        assert why.reasons == d.reasons and why.runners_up == d.runners_up and not why.rejections
        seen_rules.update(r for r, _, _, _ in counts)
        checked += 1
    assert checked > 300
    return seen_rules, unplaced


def test_failure_kinds_name_the_rule_their_text_starts_with() -> None:
    workloads = parse_documents(manifest_docs(600, seed=3))
    snap = FleetSnapshot.from_catalog(default_catalog(), scale=0.02)
    result = place(workloads, snap, PolicySet.default())
    kinds = 0
    for d in result.decisions:
        if not d.placed and d.unplaced_kind in FAILURE_RULE:
            kinds += 1
            texts = [r for r in d.rejections.values() if rule_of(r) == FAILURE_RULE[d.unplaced_kind]]
            assert texts, (d.workload, d.unplaced_kind, d.reasons)
    assert kinds > 0
