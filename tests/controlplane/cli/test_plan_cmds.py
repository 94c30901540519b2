"""`awan plan` with catalog capacity: JSON schema of docs/plan-output.md, tables, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controlplane.cli.main import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
POLICIES = REPO / "policies"

PLACEMENT_KEYS = {"workload", "placed", "provider", "region", "zone", "instanceType", "nodes", "gpus", "gpuModel",
                  "capacityType", "reservation", "pricePerHour", "score", "reasons", "assignments", "runnersUp",
                  "rejectedByRule"}


def _plan(*args: str):
    return runner.invoke(app, ["plan", *args])


def test_plan_examples_json_schema():
    args = [a for f in EXAMPLES for a in ("-f", str(f))]
    r = _plan(*args, "--policies", str(POLICIES), "--capacity", "catalog", "-o", "json", "--explain", "full")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert set(data) == {"placements", "summary"}
    names = {p["workload"] for p in data["placements"]}
    assert {"llm-pretrain-gb200", "support-finetune-eu", "chat-serving", "h100-train-1024"} <= names
    for p in data["placements"]:
        assert set(p) >= PLACEMENT_KEYS | {"rejections"}
        assert p["reasons"], p["workload"]
        if p["placed"]:
            assert p["gpus"] == sum(a["gpus"] for a in p["assignments"]) > 0
        else:
            assert p["unplacedReason"] in {"no-capacity", "no-quota", "nothing-matches", "cap", "budget"}
    by = {p["workload"]: p for p in data["placements"]}
    gang = by["llm-pretrain-gb200"]
    assert gang["placed"] and gang["gpus"] == 144 and gang["gpuModel"] == "GB200"
    assert gang["assignments"][0]["commitment"]           # a GB200 contract is used before on-demand
    eu = by["support-finetune-eu"]
    assert eu["placed"] and any(v.startswith("residency: data-class eu-personal") for v in eu["rejections"].values())
    assert len({a["provider"] for a in by["chat-serving"]["assignments"]}) > 1
    s = data["summary"]
    assert s["workloads"] == len(data["placements"]) and s["placed"] + s["unplaced"] == s["workloads"]
    assert set(s["commitments"]) == {"coreweave-gb200-2026", "aws-capacity-block-gb200"}


def test_plan_table_output():
    r = _plan("-f", str(REPO / "examples" / "finetune-eu.yaml"), "--policies", str(POLICIES),
              "--capacity", "catalog")
    assert r.exit_code == 0, r.output
    assert "support-finetune-eu" in r.stdout and "runner-up:" in r.stdout
    assert "provider/regions ruled out (residency " in r.stdout          # grouped by rule (issue 17)
    assert "--explain full lists each" in r.stdout and "    aws/us-east-1: residency: " not in r.stdout
    full = _plan("-f", str(REPO / "examples" / "finetune-eu.yaml"), "--policies", str(POLICIES),
                 "--capacity", "catalog", "--explain", "full")
    assert full.exit_code == 0, full.output
    assert "    aws/us-east-1: residency: data-class eu-personal" in full.stdout    # each one, under its rule


def test_plan_summary_still_explains_the_residency_rule():
    """The default JSON keeps what a person needs to see why: each rule, how many provider/regions it ruled
    out and one of them with its text; the full map is behind --explain full."""
    r = _plan("-f", str(REPO / "examples" / "finetune-eu.yaml"), "--policies", str(POLICIES),
              "--capacity", "catalog", "-o", "json")
    assert r.exit_code == 0, r.output
    (p,) = json.loads(r.stdout)["placements"]
    assert "rejections" not in p
    res = next(g for g in p["rejectedByRule"] if g["rule"] == "residency")
    assert res["count"] > 10 and res["why"].startswith("residency: data-class eu-personal")
    assert res["example"].count("/") == 1


@pytest.mark.parametrize("content, needle", [
    ("metadata: {name: a}\nspec: {gpus: {model: H100, count: 8, perNode: 3}}\n", "perNode 3 does not divide"),
    ("metadata: {name: a}\nspec: {gpus: {model: H100, count: 8}, extra: 1}\n", "spec.extra: unknown field"),
    ("a: [1,\n", "not valid YAML"),
])
def test_bad_manifest_one_line_no_traceback(tmp_path, content, needle):
    f = tmp_path / "bad.yaml"
    f.write_text(content)
    r = _plan("-f", str(f), "--capacity", "catalog", "--policies", str(POLICIES))
    assert r.exit_code != 0
    assert needle in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_bad_policy_and_missing_file(tmp_path):
    pol = tmp_path / "pol"
    pol.mkdir()
    (pol / "r.yaml").write_text("metadata: {name: r}\nspec: {rules: [{name: x, expr: 'a &&'}]}\n")
    r = _plan("-f", str(EXAMPLES[0]), "--capacity", "catalog", "--policies", str(pol))
    assert r.exit_code != 0 and "spec.rules[0] (x): CEL" in r.output and "Traceback" not in r.output
    r = _plan("-f", str(tmp_path / "nope.yaml"), "--capacity", "catalog")
    assert r.exit_code != 0 and "no such file" in r.output


def test_live_with_no_configuration_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("AWAN_CONFIG", str(tmp_path / "missing.yaml"))
    r = _plan("-f", str(EXAMPLES[0]), "--capacity", "live", "--policies", str(POLICIES))
    assert r.exit_code != 0 and "no such configuration file" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("extra, needle", [
    ("metadata: {name: a, labels: {data-class: eu-personel}}\nspec: {gpus: {model: H100, count: 8}}\n",
     "metadata.labels.data-class: 'eu-personel' is not a data class defined by the policies in force "
     "(did you mean 'eu-personal'?)"),
    ("metadata: {name: a}\nspec: {gpus: {model: H100, count: 8}, location: {regions: ['aws:us-east-9']}}\n",
     "spec.location.regions[0]: 'aws:us-east-9' is not a region"),
    ("metadata: {name: a}\nspec: {gpus: {model: H100, count: 8}, location: {geo: europe}}\n",
     "spec.location.geo[0]: unknown geography 'europe' (did you mean 'eu'?)"),
    ("metadata: {name: a}\nspec: {gpus: {model: H100, count: 8}, location: {regions: ['azure:antarctica*']}}\n",
     "spec.location.regions[0]: 'azure:antarctica*' matches no region"),
])
def test_unknown_values_fail_closed(tmp_path, extra, needle):
    """Issue 17, defect 4: a typo must never silently drop residency or end as 'nothing matches'."""
    f = tmp_path / "w.yaml"
    f.write_text(extra)
    r = _plan("-f", str(f), "--capacity", "catalog", "--policies", str(POLICIES), "-o", "json")
    assert r.exit_code != 0 and needle in r.output, r.output
    assert "Traceback" not in r.output and r.stdout == ""


def _by_rule(rejections: dict[str, str]) -> list[dict[str, object]]:
    """rejectedByRule spelt out: per rule, its count and its first provider/region in key order."""
    rules: dict[str, list[str]] = {}
    for k in sorted(rejections):
        rules.setdefault(rejections[k].split(":", 1)[0], []).append(k)
    order = sorted(rules, key=lambda r: (-len(rules[r]), r))
    return [{"rule": r, "count": len(rules[r]), "example": rules[r][0], "why": rejections[rules[r][0]]}
            for r in order]


@pytest.mark.parametrize("explain", ["summary", "full"])
def test_plan_json_is_the_documents_json_value_streamed(explain):
    """write_json streams each placement through pydantic-core; the text is the JSON value (and the layout)
    json.dumps(indent=2) gives for the whole document, owners and rejections counted by rule included; the
    per provider/region rejections only with --explain full."""
    from controlplane.cli.plan_cmds import read_workloads
    from controlplane.placement import FleetSnapshot, place
    from controlplane.policy import load_policies
    from providers.catalog import default_catalog

    r = _plan(*[a for f in EXAMPLES for a in ("-f", str(f))], "--policies", str(POLICIES), "--capacity", "catalog",
              "-o", "json", "--explain", explain)
    assert r.exit_code == 0, r.output
    workloads = read_workloads(EXAMPLES)
    want = place(workloads, FleetSnapshot.from_catalog(default_catalog()), load_policies(POLICIES)).to_json()
    for p in want["placements"]:
        w = next(w for w in workloads if w.name == p["workload"])
        rej = p.pop("rejections")
        p.update(team=w.team, kind=str(w.spec.kind), topology=str(w.spec.topology.domain),
                 rejectedByRule=_by_rule(rej))
        assert sum(g["count"] for g in p["rejectedByRule"]) == len(rej) > 0
        if explain == "full":
            p["rejections"] = rej
    assert json.loads(r.stdout) == want
    # same layout line for line, numbers aside (Rust prints 1e-05 as 1e-5)
    got_lines, want_lines = r.stdout.splitlines(), json.dumps(want, indent=2).splitlines()
    assert len(got_lines) == len(want_lines)
    assert [line.split(":")[0] for line in got_lines] == [line.split(":")[0] for line in want_lines]


def test_plan_json_with_no_workload_placed_is_still_json(tmp_path):
    f = tmp_path / "w.yaml"
    f.write_text("metadata: {name: nowhere}\nspec: {gpus: {model: H100, count: 8}, location: {regions: ['aws:us-east-1']},"
                 " maxPricePerGpuHour: 0.01}\n")
    r = _plan("-f", str(f), "--policies", str(POLICIES), "--capacity", "catalog", "-o", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert [p["placed"] for p in data["placements"]] == [False] and data["summary"]["placed"] == 0
