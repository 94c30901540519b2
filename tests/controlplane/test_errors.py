"""The service layer speaks its own errors; HTTP status codes live at the edge only (issue 14).

An import walk over every module of ``controlplane``: only the HTTP edge (the app, the auth
dependencies, and modules that define a FastAPI router) may import ``HTTPException``. And every kind
of ``controlplane.errors`` has its own status at that edge, with the message as the body's detail."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from controlplane import errors
from controlplane.api import workload_service
from controlplane.api.app import _service_error, status_of
from controlplane.auth.tokens import Principal
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from controlplane.store.models import Role

ROOT = Path(__file__).resolve().parents[2] / "controlplane"
EDGE = {"controlplane/api/app.py", "controlplane/api/security.py"}
HTTP_EXCEPTION_HOMES = {"fastapi", "fastapi.exceptions", "starlette.exceptions"}


def _imports(tree: ast.AST) -> set[tuple[str, str]]:
    """(module, name) for every ``from module import name``, and (module, "") for ``import module``."""
    out: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out |= {(node.module, a.name) for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {(a.name, "") for a in node.names}
    return out


def _is_edge(rel: str, imports: set[tuple[str, str]]) -> bool:
    return rel in EDGE or ("fastapi", "APIRouter") in imports


def test_only_the_http_edge_imports_httpexception() -> None:
    modules = sorted(ROOT.rglob("*.py"))
    assert len(modules) > 50                       # the walk sees the package, not an empty directory
    offenders, edge = [], []
    for path in modules:
        rel = path.relative_to(ROOT.parent).as_posix()
        text = path.read_text()
        imports = _imports(ast.parse(text, filename=rel))
        named = any(m in HTTP_EXCEPTION_HOMES and n == "HTTPException" for m, n in imports)
        dotted = any(m in HTTP_EXCEPTION_HOMES and n == "" for m, n in imports) and ".HTTPException" in text
        if not (named or dotted):
            continue
        (edge if _is_edge(rel, imports) else offenders).append(rel)
    assert not offenders, f"raise controlplane.errors kinds here, not HTTPException: {offenders}"
    assert "controlplane/api/app.py" in edge        # the walk recognises an import when it sees one


def test_the_walk_catches_a_service_that_imports_httpexception() -> None:
    tree = ast.parse("from fastapi import HTTPException\n\ndef f() -> None:\n    raise HTTPException(404, 'x')\n")
    imports = _imports(tree)
    assert ("fastapi", "HTTPException") in imports
    assert not _is_edge("controlplane/api/workload_service.py", imports)


def _kinds() -> list[type[errors.ServiceError]]:
    return [c for _, c in inspect.getmembers(errors, inspect.isclass)
            if issubclass(c, errors.ServiceError) and c is not errors.ServiceError]


def test_every_kind_has_its_own_status() -> None:
    kinds = _kinds()
    assert {k.__name__ for k in kinds} >= {"NotFound", "Conflict", "Forbidden", "Invalid", "TooLarge",
                                          "Unavailable"}
    statuses = {k: status_of(k("f", "why") if k is errors.Invalid else k("why")) for k in kinds}
    assert 400 not in statuses.values(), statuses      # 400 is the fallback for a kind nobody mapped
    assert len(set(statuses.values())) == len(kinds)


@pytest.mark.parametrize(("exc", "status"), [
    (errors.NotFound("workload 'x' not found"), 404),
    (errors.Conflict("metadata.name: taken"), 409),
    (errors.Forbidden("metadata.team: not yours"), 403),
    (errors.Invalid("spec.gpus.count", "must be > 0"), 422),
    (errors.TooLarge("body: too many documents"), 413),
    (errors.Unavailable("policies: not available"), 503),
    (workload_service.TooManyDocuments(3, 2), 413),
])
def test_the_edge_answers_status_and_detail(exc: errors.ServiceError, status: int) -> None:
    app = FastAPI()
    app.add_exception_handler(errors.ServiceError, _service_error)  # type: ignore[arg-type]

    @app.get("/x")
    def x() -> None:
        raise exc

    got = TestClient(app).get("/x")
    assert got.status_code == status and got.json() == {"detail": str(exc)}


def test_invalid_from_a_message_keeps_its_text() -> None:
    e = errors.Invalid.from_message("body: metadata.name: required field is missing")
    assert (e.field, str(e)) == ("body", "body: metadata.name: required field is missing")
    assert str(errors.Invalid.from_message("no field here")) == "no field here"


def test_the_service_raises_its_own_kinds(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'awan.db'}")
    upgrade(db.engine)
    member = Principal("t-a", "a", Role.MEMBER)
    with pytest.raises(errors.NotFound, match="workload 'nope' not found"):
        workload_service.get(db, member, "nope")
    with pytest.raises(errors.Invalid) as bad:
        workload_service.submit(db, member, "kind: GPUWorkload\n", "body")
    assert str(bad.value).startswith("body")
    with pytest.raises(errors.TooLarge):
        workload_service.submit(db, member, "---\n".join(["a: 1\n"] * 3), "body", max_documents=2)
