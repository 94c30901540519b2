"""Bulk manifests: a spec met again is reused as validated, and what validation tells apart stays apart."""

from __future__ import annotations

import pytest

from controlplane.model.manifest import ManifestError, parse_manifests

DOC = "---\nmetadata: {{name: {name}}}\nspec: {{gpus: {{model: H100, count: {count}}}, priority: {prio}}}\n"


def test_a_repeated_spec_is_validated_once_and_shared():
    text = "".join(DOC.format(name=f"w{i}", count=8, prio=i % 2) for i in range(6))
    ws = parse_manifests(text)
    assert [w.name for w in ws] == [f"w{i}" for i in range(6)]
    assert ws[0].spec is ws[2].spec is ws[4].spec and ws[1].spec is ws[3].spec
    assert ws[0].spec is not ws[1].spec and ws[1].spec.priority == 1


@pytest.mark.parametrize("counts", [(1, "true"), (1, "1.0"), (8, "'8'"), ("true", 1), (1, "1.5")])
def test_specs_equal_in_python_but_not_in_type_are_validated_on_their_own(counts):
    """``true == 1 == 1.0`` in Python: each document parses together as it parses alone (value or error)."""
    def alone(i: int, c: object) -> object:
        try:
            return parse_manifests(DOC.format(name=f"w{i}", count=c, prio=0))[0].spec
        except ManifestError as e:
            return str(e).split(": ", 1)[1]
    want = [alone(i, c) for i, c in enumerate(counts)]
    text = "".join(DOC.format(name=f"w{i}", count=c, prio=0) for i, c in enumerate(counts))
    try:
        got: list[object] = [w.spec for w in parse_manifests(text)]
    except ManifestError as e:
        got = [str(e).split(": ", 1)[1]]
        want = [w for w in want if isinstance(w, str)][:1]
    assert got == want


def test_a_bad_spec_repeated_fails_at_its_first_document():
    text = DOC.format(name="a", count=8, prio=0) + DOC.format(name="b", count=-1, prio=0) * 1 \
        + DOC.format(name="c", count=-1, prio=0)
    with pytest.raises(ManifestError, match=r"doc 2: spec\.gpus\.count"):
        parse_manifests(text)


def test_metadata_is_still_validated_when_the_spec_is_shared():
    text = DOC.format(name="a", count=8, prio=0) + DOC.format(name="Bad_Name!", count=8, prio=0)
    with pytest.raises(ManifestError, match=r"doc 2: metadata\.name"):
        parse_manifests(text)
