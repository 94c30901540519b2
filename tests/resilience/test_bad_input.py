"""Malformed and hostile manifests, policies and CEL rules: a clear 4xx each, and nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.policy import MAX_EXPRESSION_CHARS
from controlplane.store.db import Database
from tests.resilience import badinput
from tests.resilience.inputs import GOOD


@pytest.fixture
def api(tmp_path) -> Iterator[tuple[TestClient, Database, str, str]]:
    with badinput.api_on_fresh_db(tmp_path) as ctx:
        yield ctx


def test_every_bad_input_gets_a_4xx_and_changes_nothing(api):
    c, db, member, admin = api
    rep = badinput.run(c, db, member, admin)
    assert rep.tried >= 30
    assert rep.failures == []
    assert rep.statuses["huge payload (2 MiB)"] == 413
    assert rep.statuses["policy huge payload"] == 413


def test_a_good_manifest_still_goes_through(api):
    # The limit and the checks must not refuse ordinary input (else the test above proves nothing).
    c, db, member, _ = api
    before = badinput.store_fingerprint(db)
    r = c.post("/v1/workloads", content=GOOD, headers={"Authorization": f"Bearer {member}",
                                                       "Content-Type": "application/yaml"})
    assert r.status_code == 201, r.text
    assert badinput.store_fingerprint(db)[0] == before[0] + 1


def test_chunked_body_over_the_limit_is_refused(api):
    c, db, member, _ = api
    before = badinput.store_fingerprint(db)

    def chunks() -> Iterator[bytes]:   # no Content-Length: the limit counts the stream
        yield GOOD.encode()
        for _ in range(40):
            yield b"#" + b"z" * 65536 + b"\n"

    r = c.post("/v1/workloads", content=chunks(), headers={"Authorization": f"Bearer {member}",
                                                           "Content-Type": "application/yaml"})
    assert r.status_code == 413
    assert badinput.store_fingerprint(db) == before


def test_cel_size_limit_is_the_policy_module_s():
    # The bound the API relies on: an expression over the limit does not compile.
    from controlplane.policy import compile_rule

    with pytest.raises(Exception, match="over the limit"):
        compile_rule("r", " || ".join(["true"] * (MAX_EXPRESSION_CHARS // 4)), "m")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=2000), st.text(max_size=2000).map(str.encode),
                      st.recursive(st.one_of(st.integers(), st.text(max_size=20), st.none()),
                                   lambda ch: st.lists(ch, max_size=4) | st.dictionaries(st.text(max_size=8), ch,
                                                                                          max_size=4),
                                   max_leaves=40).map(lambda v: __import__("json").dumps(v).encode())))
def test_fuzzed_bodies_never_5xx_and_never_write_partially(api, body: bytes) -> None:
    c, db, member, admin = api
    for path, token, method in (("/v1/workloads", member, c.post), ("/v1/policies", admin, c.put)):
        before = badinput.store_fingerprint(db)
        r: Any = method(path, content=body, headers={"Authorization": f"Bearer {token}",
                                                     "Content-Type": "application/yaml"})
        assert r.status_code < 500, (path, r.status_code, r.text[:300])
        if r.status_code >= 400:
            assert badinput.store_fingerprint(db) == before
