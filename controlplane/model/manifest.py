"""Read GPUWorkload manifests from YAML or JSON text (several documents per file), all or nothing."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from controlplane.model.workload import GPUWorkload, Spec
from controlplane.model.yamlload import FastSafeLoader


class ManifestError(ValueError):
    """A manifest that cannot be accepted; the message names the document and the field path."""


_FRIENDLY = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}


def _field_path(loc: Iterable[object]) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts[-1:] = [f"{parts[-1]}[{p}]"] if parts else [f"[{p}]"]
        else:
            parts.append(str(p))
    return ".".join(parts) or "(document)"


def describe_validation_error(e: ValidationError) -> str:
    """The first error as ``field.path: message``; the rest are usually consequences of it."""
    err = e.errors()[0]
    msg = _FRIENDLY.get(err["type"], err["msg"])
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return f"{_field_path(err['loc'])}: {msg}"


# libyaml's parser when PyYAML was built with it (the wheels are), and SafeConstructor's results built
# faster (model/yamlload.py): the same Python objects and the same errors.
_SafeLoader: type = FastSafeLoader


def load_yaml_documents(text: str) -> list[object]:
    """The non-empty documents of a YAML text (safe types only). Raises yaml.YAMLError."""
    return [d for d in yaml.load_all(text, Loader=_SafeLoader) if d is not None]


M = TypeVar("M", bound=BaseModel)


def yaml_documents_or(error: type[ValueError], text: str, source: str) -> list[object]:
    """load_yaml_documents, a YAML error raised as ``error`` naming the source, line and column."""
    try:
        return load_yaml_documents(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise error(f"{source}: not valid YAML{where}: {getattr(e, 'problem', None) or e}") from None


def documents_of_kind(error: type[ValueError], text: str, source: str, kind: str, model: type[M]
                      ) -> list[tuple[str, M]]:
    """The documents of one policy ``kind`` in a text that may hold several kinds (the others skipped),
    validated by ``model``, each with where it stands; the first bad one raises ``error`` naming the field."""
    raw = yaml_documents_or(error, text, source)
    out: list[tuple[str, M]] = []
    for i, d in enumerate(raw, start=1):
        if not isinstance(d, dict) or d.get("kind") != kind:
            continue
        where = f"{source} doc {i}" if len(raw) > 1 else source
        try:
            out.append((where, model.model_validate(d)))
        except ValidationError as e:
            raise error(f"{where}: {describe_validation_error(e)}") from None
    return out


def load_documents(text: str, source: str = "<input>") -> list[object]:
    """The manifest documents of a YAML or JSON text, a top-level list flattened; ManifestError if unreadable."""
    return _documents(text, source)


def _documents(text: str, source: str) -> list[object]:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{source}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        return list(data) if isinstance(data, list) else [data]
    try:
        docs = load_yaml_documents(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "syntax error"
        raise ManifestError(f"{source}: not valid YAML{where}: {problem}") from None
    # A YAML list of manifests is accepted as well as '---'-separated documents.
    out: list[object] = []
    for d in docs:
        out.extend(d if isinstance(d, list) else [d])
    return out


def _frozen(v: object) -> object:
    """A hashable form of a YAML/JSON value that tells apart what validation tells apart: the type is kept
    beside each scalar (``1``, ``1.0`` and ``true`` are equal in Python, not to the validator)."""
    if isinstance(v, dict):
        return (dict, tuple((k, _frozen(x)) for k, x in v.items()))
    if isinstance(v, list):
        return (list, tuple(_frozen(x) for x in v))
    if isinstance(v, (str, int, float, bool)) or v is None:
        return (type(v), v)
    return (type(v), id(v))      # anything else (a datetime is hashable, but be safe): never shared


def parse_manifests(text: str, source: str = "<input>") -> list[GPUWorkload]:
    """Every GPUWorkload in ``text``; raises ManifestError on the first bad document (nothing is returned
    half-way). Workload names must be unique within the input."""
    return parse_documents(_documents(text, source), source)


def parse_documents(docs: list[object], source: str = "<input>") -> list[GPUWorkload]:
    """``parse_manifests`` on documents already read (``load_documents``)."""
    if not docs:
        raise ManifestError(f"{source}: no GPUWorkload documents found")
    out: list[GPUWorkload] = []
    seen: dict[str, int] = {}
    # Bulk files repeat specs (a sweep, replicas of one service, a generated batch): a spec already
    # validated is reused as the validated (frozen) Spec, and only the rest of the document is validated.
    # A spec is validated, errors included, the first time it is met, as part of its whole document.
    specs: dict[object, Spec] = {}
    for i, doc in enumerate(docs, start=1):
        where = f"{source} doc {i}" if len(docs) > 1 else source
        if not isinstance(doc, dict):
            raise ManifestError(f"{where}: expected a mapping (a GPUWorkload), got {type(doc).__name__}")
        raw = doc.get("spec")
        key = _frozen(raw) if isinstance(raw, dict) else None
        known = specs.get(key) if key is not None else None
        try:
            w = GPUWorkload.model_validate(doc if known is None else {**doc, "spec": known})
        except ValidationError as e:
            raise ManifestError(f"{where}: {describe_validation_error(e)}") from None
        if key is not None and known is None:
            specs[key] = w.spec
        if w.name in seen:
            raise ManifestError(f"{where}: metadata.name: {w.name!r} already used by doc {seen[w.name]}")
        seen[w.name] = i
        out.append(w)
    return out
