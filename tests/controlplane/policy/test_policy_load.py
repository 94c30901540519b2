from pathlib import Path

import pytest

from controlplane.policy import MAX_EXPRESSION_CHARS, PolicyError, load_policies, merge, parse_policy_text
from controlplane.policy.cel_rules import MAX_ITERATIONS, estimated_iterations

REPO = Path(__file__).resolve().parents[3]


def doc(spec: str, name: str = "p") -> str:
    return f"apiVersion: awan.dev/v1alpha1\nkind: PlacementPolicy\nmetadata: {{name: {name}}}\nspec: {spec}\n"


def load_text(*texts: str):
    docs = []
    for i, t in enumerate(texts):
        docs.extend(parse_policy_text(t, f"f{i}.yaml"))
    return merge(docs)


def test_shipped_policies_load():
    ps = load_policies(REPO / "policies")
    assert ps.data_class("eu-personal").geo == ("eu",)
    assert {c.name for c in ps.commitments} == {"coreweave-gb200-2026", "aws-capacity-block-gb200"}
    assert len(ps.rules) == 2 and all(r.program is not None for r in ps.rules)
    assert load_policies(REPO / "policies" / "examples").provider_share.max_share == 0.4


def test_merge_only_tightens_hard_constraints_and_later_preferences_win():
    ps = load_text(doc("{providers: {allow: [aws, gcp]}, maxPricePerGpuHour: 9, preferences: {cost: 2}}"),
                   doc("{providers: {allow: [gcp, azure], deny: [coreweave]}, maxPricePerGpuHour: 12,"
                       " preferences: {cost: 3, spread: 1}, caps: {providerShare: {max: 0.5}}}"),
                   doc("{caps: {providerShare: {max: 0.7}}, dataClasses: {x: {geo: [eu, us]}}}"),
                   doc("{dataClasses: {x: {geo: [eu]}}}"))
    assert ps.providers.allow == ("gcp",)
    assert ps.providers.deny == ("coreweave",)
    assert ps.max_price_per_gpu_hour == 9
    assert ps.weights.cost == 3 and ps.weights.spread == 1
    assert ps.provider_share.max_share == 0.5
    assert ps.data_class("x").geo == ("eu",)


def test_cel_syntax_error_names_file_rule_and_position():
    with pytest.raises(PolicyError) as e:
        load_text(doc("{rules: [{name: ok, expr: 'true'}, {name: broken, expr: 'candidate.provider == '}]}"))
    msg = str(e.value)
    assert msg.startswith("f0.yaml: spec.rules[1] (broken): CEL line 1 column 23")


def test_cel_expression_size_limit():
    long = " || ".join(["candidate.provider == 'aws'"] * (MAX_EXPRESSION_CHARS // 20))
    with pytest.raises(PolicyError, match="over the limit"):
        load_text(doc(f'{{rules: [{{name: big, expr: "{long}"}}]}}'))


def test_cel_evaluation_error_is_a_failure_with_message():
    # A label the workload may not carry is a runtime matter, not a load error.
    [rule] = load_text(doc("""{rules: [{name: r, expr: 'workload.labels["tier"] == "gold"'}]}""")).rules
    ok, why = rule.evaluate({"candidate": {"provider": "aws"}, "workload": {"labels": {}}})
    assert not ok and "no such key 'tier'" in why
    assert rule.evaluate({"candidate": {}, "workload": {"labels": {"tier": "gold"}}}) == (True, "")


@pytest.mark.parametrize("expr, needle", [
    ("nosuchfn(candidate.provider)", "undefined variable or function 'nosuchfn'"),
    ("cluster.name == 'x'", "undefined variable or function 'cluster'"),
    ("candidate.gpuModle == 'H100'", "no such field 'gpuModle'"),
    ("candidate.gpusPerNode * 2", "gives int, not a bool"),
    ("candidate.provider", "gives str, not a bool"),
])
def test_cel_rule_that_cannot_be_right_is_refused_at_load(expr, needle):
    with pytest.raises(PolicyError) as e:
        load_text(doc(f'{{rules: [{{name: r, expr: "{expr}"}}]}}'))
    assert str(e.value).startswith("f0.yaml: spec.rules[0] (r): CEL ")
    assert needle in str(e.value)


def test_cel_load_check_sees_the_maps_the_placement_core_builds():
    """The load-time sample must hold exactly the keys placement hands a rule, or the check would refuse
    good rules (a key it lacks) or pass misspelt ones (a key placement lacks)."""
    from controlplane.placement.candidates import SnapshotIndex, WorkloadClass
    from controlplane.policy.cel_rules import SAMPLE_CANDIDATE, SAMPLE_WORKLOAD
    from tests.controlplane.placement.placement_fleet import catalog_snapshot, workload

    idx = SnapshotIndex(catalog_snapshot(), load_text(doc("{}")))
    assert idx.views and all(set(v.cel_map) == set(SAMPLE_CANDIDATE) for v in idx.views)
    w = workload("{kind: training, gpus: {model: H100, count: 8}}")
    assert set(WorkloadClass.of(w).cel_map()) == set(SAMPLE_WORKLOAD)


@pytest.mark.parametrize("spec, needle", [
    ("{providers: {allow: [ibm]}}", "spec.providers.allow: unknown provider 'ibm'"),
    ("{colour: red}", "spec.colour: unknown field"),
    ("{caps: {providerShare: {max: 1.5}}}", "spec.caps.providerShare.max"),
    ("{commitments: [{name: c, provider: aws, gpuModel: H100, start: 2026-01-01, end: 2027-01-01}]}",
     "exactly one of gpus or dollarsPerHour"),
    ("{commitments: [{name: c, provider: aws, gpuModel: H100, gpus: 8, start: 2027-01-01, end: 2026-01-01}]}",
     "end must be after start"),
    ("{commitments: [{name: c, provider: aws, gpuModel: Z9, gpus: 8, start: 2026-01-01, end: 2027-01-01}]}",
     "gpuModel: unknown GPU model"),
    ("{rules: [{name: a, expr: 'true'}, {name: a, expr: 'false'}]}", "rule 'a' is defined twice"),
])
def test_bad_policy_names_file_and_field(spec, needle):
    with pytest.raises(PolicyError) as e:
        load_text(doc(spec))
    assert str(e.value).startswith("f0.yaml")
    assert needle in str(e.value)


def test_missing_path(tmp_path):
    with pytest.raises(PolicyError, match="no such policy file"):
        load_policies(tmp_path / "nope")


TEN = "[" + ",".join(str(i) for i in range(10)) + "]"


@pytest.mark.parametrize("expr, iterations", [
    ("candidate.provider == 'aws'", 1),
    ("'a.all(x, x)' == candidate.provider", 1),                       # inside a string: no macro
    ("workload.models.exists(m, m in ['H100', 'H200'])", 64),         # input data: DATA_RANGE
    (f"{TEN}.all(a, a > 0) && [1, 2].exists(b, b == 2)", 10),         # siblings do not multiply
    (f"{TEN}.all(a, {TEN}.all(b, a + b >= 0))", 100),
    ("[1, 2, 3].map(x, x * 2).all(y, y > 0)", 3),                     # a map keeps its range
    ("workload.labels.all(k, workload.labels.all(j, k != j))", 64 * 64),
    (f"{TEN}.all(a, {TEN}.all(b, {TEN}.all(c, {TEN}.all(d, {TEN}.all(e, {TEN}.all(f, a+b+c+d+e+f >= 0))))))",
     10**6),
])
def test_comprehension_cost_estimate(expr, iterations):
    assert estimated_iterations(expr) == iterations


def test_nested_comprehension_over_the_bound_is_refused_and_one_under_it_runs():
    bomb = f"{TEN}.all(a, {TEN}.all(b, {TEN}.all(c, {TEN}.all(d, {TEN}.all(e, a+b+c+d+e >= 0)))))"
    assert len(bomb) < MAX_EXPRESSION_CHARS and estimated_iterations(bomb) > MAX_ITERATIONS
    with pytest.raises(PolicyError, match="over the limit of 10,000"):
        load_text(doc(f'{{rules: [{{name: bomb, expr: "{bomb}"}}]}}'))
    fine = f"{TEN}.all(a, {TEN}.all(b, a + b >= 0))"
    [rule] = load_text(doc(f'{{rules: [{{name: ok, expr: "{fine}"}}]}}')).rules
    assert rule.evaluate({"workload": {}, "candidate": {}}) == (True, "")


T20 = "[" + ",".join(str(i) for i in range(20)) + "]"


@pytest.mark.parametrize("sep", [". ", " .", ".\n  ", ". // a comment\n", "\t.\t", " . "])
def test_spaces_and_comments_do_not_hide_a_macro_from_the_cost_bound(sep):
    """Issue 13, item 5: '[0..19]. all(...)' was estimated at 1 iteration (the scan looked for '.'
    right before the name); the bound now works on CEL's tokens."""
    bomb = f"{T20}{sep}all(a, {T20}{sep}all(b, {T20}{sep}all(c, {T20}{sep}all(d, a + b + c + d >= 0))))"
    assert estimated_iterations(bomb) == 20**4
    import yaml

    text = yaml.safe_dump({"apiVersion": "awan.dev/v1alpha1", "kind": "PlacementPolicy", "metadata": {"name": "p"},
                           "spec": {"rules": [{"name": "bomb", "expr": bomb}]}})
    with pytest.raises(PolicyError, match="over the limit of 10,000"):
        load_text(text)


@pytest.mark.parametrize("expr", [
    # a list bound to a comprehension variable is as large as the list literals it came from
    "[[" + ",".join(str(i) for i in range(200)) + "]].all(l, l.all(a, l.all(b, a > b)))",
    # a raw string ends at its first quote: a backslash before it must not swallow the code after it
    'r"\\" == "" || ' + f"{T20}.all(a, {T20}.all(b, {T20}.all(c, {T20}.all(d, a+b+c+d >= 0))))",
])
def test_computed_ranges_and_raw_strings_are_bounded_too(expr):
    assert estimated_iterations(expr) > MAX_ITERATIONS
