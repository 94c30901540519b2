"""Fail closed (issue 17, defect 4): unknown data classes, regions, geographies and globs matching nothing
are refused with the field named and the closest valid values suggested."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.model import parse_manifests
from controlplane.policy import PolicySet, load_policies
from controlplane.policy.admission import first_error, workload_errors
from providers.catalog import default_catalog

POLICIES = Path(__file__).resolve().parents[3] / "policies"


def _w(labels: str = "{}", location: str = "{}"):
    text = (f"metadata: {{name: w, labels: {labels}}}\n"
            f"spec: {{gpus: {{model: H100, count: 8}}, location: {location}}}\n")
    return parse_manifests(text)[0]


@pytest.mark.parametrize("labels, location, field, needle", [
    ("{data-class: eu-personel}", "{}", "metadata.labels.data-class", "did you mean 'eu-personal'"),
    ("{data-region: 'gcp:europe-wset4'}", "{}", "metadata.labels.data-region", "'gcp:europe-west4'"),
    ("{}", "{regions: ['aws:us-east-9']}", "spec.location.regions[0]", "not a region of the catalog (did you mean 'aws:us-east-2' or 'aws:us-east-1'"),
    ("{}", "{regions: ['aws:us-east-1', 'aws:eu-*-9']}", "spec.location.regions[1]", "matches no region"),
    ("{}", "{regions: ['amazon:us-east-1']}", "spec.location.regions[0]", "unknown provider 'amazon'"),
    ("{}", "{geo: [eu, europe]}", "spec.location.geo[1]", "did you mean 'eu'"),
])
def test_unknown_values_are_refused_naming_the_field(labels, location, field, needle):
    errs = workload_errors(_w(labels, location), default_catalog(), load_policies(POLICIES))
    assert len(errs) == 1, errs
    assert errs[0].field == field and needle in errs[0].message, errs


@pytest.mark.parametrize("labels, location", [
    ("{data-class: eu-personal, data-region: 'gcp:europe-west4'}", "{}"),
    ("{}", "{regions: ['aws:us-east-*', 'europe-west4', '*:eu-*'], geo: [eu, us]}"),
])
def test_known_values_and_matching_globs_pass(labels, location):
    assert workload_errors(_w(labels, location), default_catalog(), load_policies(POLICIES)) == []


def test_a_data_class_with_no_policy_defining_classes_is_refused():
    why = first_error([_w("{data-class: eu-personal}")], default_catalog(), PolicySet.default())
    assert why is not None and "workload 'w': metadata.labels.data-class" in why and "defined: none" in why


@pytest.mark.parametrize("regions, field, needle", [
    ("{deny: ['aws:us-east-1', 'aws:us-esat-1']}", "spec.regions.deny[1]",
     "'aws:us-esat-1' is not a region of the catalog (did you mean "),
    ("{allow: ['europe-wset4']}", "spec.regions.allow[0]", "did you mean 'europe-west4'"),
    ("{deny: ['aws:eu-*-9']}", "spec.regions.deny[0]", "matches no region"),
    ("{allow: ['amazon:*']}", "spec.regions.allow[0]", "unknown provider 'amazon'"),
])
def test_policy_region_entries_matching_no_catalog_region_are_refused(regions, field, needle):
    """Issue 17 follow-up: a typo in a region deny list must not fail open (deny nothing)."""
    from controlplane.policy import PolicyError, merge, parse_policy_text

    docs = parse_policy_text(f"metadata: {{name: residency}}\nspec: {{regions: {regions}}}\n", "team.yaml")
    with pytest.raises(PolicyError) as e:
        merge(docs)
    assert str(e.value).startswith(f"team.yaml (residency): {field}: "), str(e.value)
    assert needle in str(e.value), str(e.value)
    if "esat" in regions:
        assert "'aws:us-east-1'" in str(e.value).split("did you mean", 1)[1]


def test_policy_region_globs_the_catalog_knows_are_kept():
    from controlplane.policy import merge, parse_policy_text

    docs = parse_policy_text("metadata: {name: p}\nspec: {regions: {allow: ['aws:us-*', 'europe-west4', '*:eu-*'],"
                             " deny: ['aws:us-west-2']}}\n", "p.yaml")
    ps = merge(docs)
    assert ps.regions.allow == ("aws:us-*", "europe-west4", "*:eu-*") and ps.regions.deny == ("aws:us-west-2",)


def _reference_region_error(pattern: str, catalog) -> bool:  # type: ignore[no-untyped-def]
    """Whether ``pattern`` matches a catalog region, as region_pattern_error decided it before its fast path
    (every provider matched as a glob)."""
    from fnmatch import fnmatchcase

    if ":" in pattern:
        prov, _, pat = pattern.partition(":")
        return any(fnmatchcase(p, prov) and fnmatchcase(r, pat) for p, r in catalog.regions)
    return any(fnmatchcase(r, pattern) for _, r in catalog.regions)


@pytest.mark.parametrize("pattern", [
    "aws:*", "gcp:*", "azure:*", "aws:us-east-1", "aws:us-east-9", "aws:us-*", "aws:", "aws:*-1", "gcp:europe-west4",
    "a?s:*", "[ag]*:us-*", "*:eu-*", "*:*", "amazon:*", "AWS:*", "aws:US-EAST-1", "aws:[u]s-east-1", ":*", "*:",
    "us-east-1", "europe-*", "nowhere"])
def test_a_region_pattern_matches_as_the_glob_of_every_provider_did(pattern):
    """A provider without a glob character is compared by equality (the fast path): the same verdict, and
    the same message, as matching it as a glob."""
    from controlplane.policy.admission import region_pattern_error

    cat = default_catalog()
    why = region_pattern_error(pattern, cat)
    assert (why is None) == _reference_region_error(pattern, cat), (pattern, why)


def test_a_body_of_many_workloads_matches_each_region_pattern_once(monkeypatch):
    """A multi-document submit names the same few patterns in every document: each is matched against the
    catalog once per call, and every workload is still checked (the first refused is named)."""
    from controlplane.policy import admission

    calls: list[str] = []
    real = admission.region_pattern_error

    def counted(pattern, catalog):  # type: ignore[no-untyped-def]
        calls.append(pattern)
        return real(pattern, catalog)

    monkeypatch.setattr(admission, "region_pattern_error", counted)
    text = "---\n".join(f"metadata: {{name: w{i}}}\nspec: {{gpus: {{model: H100, count: 8}}, "
                        f"location: {{regions: ['aws:*', 'gcp:*']}}}}\n" for i in range(20))
    bad = "metadata: {name: w20}\nspec: {gpus: {model: H100, count: 8}, location: {regions: ['aws:us-east-9']}}\n"
    ws = parse_manifests(text + "---\n" + bad)
    why = first_error(ws, default_catalog(), PolicySet.default())
    assert why is not None and "workload 'w20'" in why and "spec.location.regions[0]" in why
    assert sorted(calls) == ["aws:*", "aws:us-east-9", "gcp:*"]
