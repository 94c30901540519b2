"""schemathesis against /openapi.json: no 5xx, and every response matches its declared schema."""

from __future__ import annotations

import tempfile

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from controlplane.api import create_app
from controlplane.auth import create_token
from controlplane.settings import Settings
from controlplane.store.db import Database
from controlplane.store.migrate import upgrade
from tests.controlplane.reconcile.fakes import manifest

try:
    from controlplane.policy import load_policies  # noqa: F401
    HAVE_POLICY_LOADER = True
except ImportError:
    HAVE_POLICY_LOADER = False

schemathesis.openapi.media_type("application/yaml", __import__("hypothesis").strategies.just(
    manifest("fuzzed").encode()))


def _schema():  # type: ignore[no-untyped-def]
    # Module level: schemathesis parametrises at collection time (its from_fixture does not work with
    # this pytest). A throw-away SQLite file in a temp dir; no reconcile loop.
    url = f"sqlite:///{tempfile.mkdtemp(prefix='awan-fuzz-')}/awan.db"
    db = Database.from_url(url)
    upgrade(db.engine)
    with db.session() as s:
        token, _ = create_token(s, "ops", "cluster-admin")
    app = create_app(Settings(db_url=url, reconcile=False), db=db, providers={})
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.config.headers = {"Authorization": f"Bearer {token}"}
    return schema


schema = _schema()


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms(case):  # type: ignore[no-untyped-def]
    if case.method == "PUT" and case.path == "/v1/policies" and not HAVE_POLICY_LOADER:
        pytest.xfail("controlplane.policy.load_policies is not in the tree yet: PUT answers 503")
    case.call_and_validate(checks=[schemathesis.checks.not_a_server_error, response_schema_conformance,
                                   status_code_conformance])
