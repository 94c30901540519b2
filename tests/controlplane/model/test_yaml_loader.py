"""FastSafeLoader gives what PyYAML's safe loader gives: the same values (types included), the same sharing
of anchored objects, and the same errors with the same line and column."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.model.manifest import ManifestError, parse_manifests
from controlplane.model.yamlload import FastSafeLoader

REPO = Path(__file__).resolve().parents[3]
STOCK = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _typed(v: object) -> object:
    """A value with every scalar's type beside it: 1, 1.0 and True are == in Python, not in YAML."""
    if isinstance(v, dict):
        return ("dict", [(_typed(k), _typed(x)) for k, x in v.items()])
    if isinstance(v, list):
        return ("list", [_typed(x) for x in v])
    if isinstance(v, set):
        return ("set", sorted(map(repr, v)))
    if isinstance(v, float) and v != v:
        return ("float", "nan")
    return (type(v).__name__, v)


def _same(text: str) -> list[object]:
    want = list(yaml.load_all(text, Loader=STOCK))
    got = list(yaml.load_all(text, Loader=FastSafeLoader))
    assert [_typed(d) for d in got] == [_typed(d) for d in want]
    return got


TRICKY = [
    "a: yes\nb: no\nc: on\nd: off\ne: True\nf: ~\ng: null\nh: ''\ni: 'yes'\nj: \"1\"\n",
    "a: 0777\nb: 0x1F\nc: 0b101\nd: 1_000\ne: 1:20\nf: -0\ng: +12\nh: 1e3\ni: 1.5e-3\nj: .inf\nk: -.Inf\nl: .nan\n",
    "a: 2026-11-30\nb: 2026-11-30T10:00:00Z\nc: 2026-11-30 10:00:00.5 +02:00\n",
    "a: !!binary aGVsbG8=\nb: !!str 12\nc: !!int '7'\nd: !!float 3\n",
    "base: &b {x: 1, y: [1, 2]}\nother: *b\nlist: [*b, *b]\n",
    "base: &b {x: 1, y: 2}\nmerged:\n  <<: *b\n  y: 3\n",
    "- &a {k: v}\n- <<: [*a, {z: 1}]\n  w: 2\n",
    "s: !!set {a, b}\no: !!omap [{a: 1}, {b: 2}]\np: !!pairs [{a: 1}, {a: 2}]\n",
    "a: 1\na: 2\n1: int\n1.0: float\ntrue: bool\n",
    "? [1, 2]\n: seq-key-as-tuple-is-unhashable\n",
    "a: |\n  line one\n  line two\nb: >\n  folded\n  text\n",
    "--- 1\n--- [a, b]\n--- {a: {b: {c: [1, {d: e}]}}}\n---\n...\n",
    "a: !custom x\n",
    "recursive: &r [1, *r]\n",
    "= : value-key\n",
    "key with spaces: v\n'quoted key': 2\n\"1\": str-one\n",
]


@pytest.mark.parametrize("text", TRICKY)
def test_same_values_or_same_error(text: str) -> None:
    try:
        want = list(yaml.load_all(text, Loader=STOCK))
    except yaml.YAMLError as e:
        with pytest.raises(type(e)) as got:
            list(yaml.load_all(text, Loader=FastSafeLoader))
        assert str(got.value) == str(e)           # the same problem and marks (line, column)
        return
    if "recursive" in text:                        # a cycle: compare the shape, not with ==
        got = list(yaml.load_all(text, Loader=FastSafeLoader))[0]["recursive"]
        assert got[0] == 1 and got[1] is got
        assert isinstance(want[0]["recursive"][1], list)
        return
    _same(text)


def test_anchored_objects_are_shared_as_pyyaml_shares_them() -> None:
    doc = _same("base: &b {x: 1}\nother: *b\nlist: [*b]\n")[0]
    assert isinstance(doc, dict)
    assert doc["base"] is doc["other"] is doc["list"][0]


def test_every_yaml_file_of_the_repository() -> None:
    files = [p for d in ("examples", "policies", "deploy", "bench") for p in (REPO / d).rglob("*.y*ml")]
    assert len(files) > 5
    for f in files:
        try:
            _same(f.read_text())
        except yaml.YAMLError:
            with pytest.raises(yaml.YAMLError):
                list(yaml.load_all(f.read_text(), Loader=FastSafeLoader))


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                     st.text(max_size=12), st.dates(), st.sampled_from(["yes", "on", "0777", "1:20", "~", ".inf"]))
_values = st.recursive(_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
                       max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(_values, st.sampled_from([None, True, False]))
def test_dumped_values_load_the_same(value: object, flow: bool | None) -> None:
    _same(yaml.safe_dump(value, default_flow_style=flow))


def test_manifest_errors_still_name_document_and_field(tmp_path: Path) -> None:
    good = "metadata: {name: a}\nspec: {gpus: {model: H100, count: 8}}\n"
    with pytest.raises(ManifestError, match=r"f.yaml doc 2: spec.gpus.count: "):
        parse_manifests(good + "---\nmetadata: {name: b}\nspec: {gpus: {model: H100, count: -1}}\n", "f.yaml")
    with pytest.raises(ManifestError, match=r"f.yaml: not valid YAML at line 4 column 1: did not find"):
        parse_manifests(good + "a: [1,\n", "f.yaml")
    assert parse_manifests(good + "---\n" + good.replace("name: a", "name: b"), "f.yaml")[1].name == "b"
    assert isinstance(_same("d: 2026-01-02\n")[0]["d"], datetime.date)   # type: ignore[index]
