"""Large submit bodies are parsed and validated in a worker process (controlplane/api/parsepool.py), with the
same result and the same refusals as inline; small ones stay in the API process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from controlplane.api import create_app
from controlplane.api import workload_service as svc
from controlplane.api.gcguard import LARGE_SUBMIT_CHARS
from controlplane.api.parsepool import ParsePool
from controlplane.auth.tokens import Principal, Role
from controlplane.errors import Forbidden, Invalid, TooLarge
from controlplane.settings import Settings
from controlplane.store.db import Database
from tests.controlplane.api.conftest import auth

MEMBER = Principal("t1", "research", Role("member"))


def documents(n: int, prefix: str = "w", extra: str = "") -> str:
    return "".join(f"- {{metadata: {{name: {prefix}{i}{extra}}}, spec: {{kind: inference, gpus: {{model: H100, "
                   f"count: 1}}}}}}\n" for i in range(n))


def large(extra: str = "") -> str:
    body = documents(1000, extra=extra)
    assert len(body) >= LARGE_SUBMIT_CHARS
    return body


@pytest.fixture
def pool() -> Iterator[ParsePool]:
    p = ParsePool(1)
    yield p
    p.close()


def _inline_forbidden(*a: object, **k: object) -> list[svc.Prepared]:
    raise AssertionError("parsed in the API process")


def test_a_large_body_is_prepared_in_the_worker_as_inline(pool, monkeypatch):
    body = large()
    expected = svc.prepare(MEMBER, body, "request body")
    # The worker is a fresh interpreter: this patch reaches only the API process's own parsing.
    monkeypatch.setattr(svc, "prepare", _inline_forbidden)
    assert pool.prepare(MEMBER, body, "request body") == expected
    with pytest.raises(AssertionError, match="parsed in the API process"):   # small bodies stay inline
        pool.prepare(MEMBER, documents(3), "request body")


def test_refusals_from_the_worker_keep_their_kind_and_message(pool):
    bad = large() + "- {metadata: {name: x}, spec: {kind: inference, gpus: {model: H100, count: -1}}}\n"
    for body, kind in [(bad, Invalid), (large(), TooLarge),
                       (large().replace("{name: w0}", "{name: w0, team: other}"), Forbidden)]:
        limit = 10 if kind is TooLarge else None
        with pytest.raises(kind) as inline:
            svc.prepare(MEMBER, body, "request body", max_documents=limit)
        with pytest.raises(kind) as worker:
            pool.prepare(MEMBER, body, "request body", max_documents=limit)
        assert str(worker.value) == str(inline.value)
        assert "\n" not in str(worker.value)


def test_policies_unreadable_are_unavailable_only_when_a_document_needs_them(pool):
    def broken() -> object:
        raise RuntimeError("store down")

    assert len(pool.prepare(MEMBER, large(), "request body", broken)) == 1000   # type: ignore[arg-type]
    labelled = large().replace("{name: w0}", "{name: w0, labels: {data-class: pii}}")
    with pytest.raises(Exception, match="policies: not available"):
        pool.prepare(MEMBER, labelled, "request body", broken)   # type: ignore[arg-type]


def test_the_api_stores_a_large_submit_parsed_in_the_worker(db: Database, db_url: str, tokens, monkeypatch):
    monkeypatch.setattr(svc, "prepare", _inline_forbidden)
    app = create_app(Settings(db_url=db_url, reconcile=False), db=db, providers={})
    with TestClient(app) as c:
        r = c.post("/v1/workloads", content=large(), headers=auth(tokens["research"]))
        assert r.status_code == 201, r.text
        assert len(r.json()["created"]) == 1000
        bad = c.post("/v1/workloads", content=large(extra="X"), headers=auth(tokens["research"]))
        assert bad.status_code == 422 and "metadata.name" in bad.json()["detail"], bad.text


def test_zero_processes_keeps_every_body_inline(db: Database, db_url: str, tokens, monkeypatch):
    inline: list[int] = []
    real = svc.prepare
    monkeypatch.setattr(svc, "prepare", lambda p, text, *a: inline.append(len(text)) or real(p, text, *a))
    app = create_app(Settings(db_url=db_url, reconcile=False, submit_parse_processes=0), db=db, providers={})
    with TestClient(app) as c:
        assert c.post("/v1/workloads", content=large(), headers=auth(tokens["research"])).status_code == 201
    assert inline == [len(large())]
