"""The mocks' request logs: who called (User-Agent app id, named bearer token, a GCP service account's
JWT), what (the operation and region the mock's fault injection names) and when. Real SDK clients through
the adapters where the identity is a credential or read when the client is made."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mockclouds.launcher import MOCK_SECRETS, MockClouds
from mockclouds.requestlog import Call, RequestLog, describe, named_token
from providers.config import parse_config
from providers.registry import build_provider
from tests.resilience import identities
from tests.resilience.replicas import overlapping


@pytest.fixture(scope="module")
def clouds() -> Iterator[MockClouds]:
    with MockClouds(clouds=("gcp", "azure", "coreweave")) as mc:   # AWS: test_replicas_sigkill.py
        yield mc


def test_a_request_is_logged_once_with_what_it_was_first_described_as() -> None:
    log = RequestLog()
    with log.serving("r1"):
        describe("instances.insert", "us-central1")
        describe("zoneOperations.get", "us-central1")
    with log.serving("r2"):
        pass                                       # nothing described: not a cloud call (a control request)
    describe("orphan", None)                       # outside any request: nothing to log
    [call] = log.entries()
    assert (call.operation, call.region, call.caller) == ("instances.insert", "us-central1", "r1")
    assert call.end >= call.start


def test_overlap_needs_two_callers_one_region_and_intersecting_times() -> None:
    a = Call("RunInstances", "us-east-1", "r0-i1", 0.0, 2.0)
    assert overlapping([a, Call("RunInstances", "us-east-1", "r1-i1", 1.0, 3.0)]) != []
    assert overlapping([a, Call("RunInstances", "us-east-1", "r0-i1", 1.0, 3.0)]) == []   # one caller
    assert overlapping([a, Call("RunInstances", "us-east-2", "r1-i1", 1.0, 3.0)]) == []   # another stack
    assert overlapping([a, Call("RunInstances", "us-east-1", "r1-i1", 2.0, 3.0)]) == []   # one after the other


@pytest.mark.parametrize(("cloud", "path", "headers"), [
    ("azure", "/subscriptions/00000000-0000-0000-0000-00000000a3a7/providers/Microsoft.Compute/skus?api-version=2021-07-01",
     {"User-Agent": "azsdk-python-mgmt-compute/39 app/r5-i2",
      "Authorization": f"Bearer {MOCK_SECRETS['azure']['token']}"}),
    ("coreweave", "/api/v1/nodes",
     {"Authorization": f"Bearer {named_token(MOCK_SECRETS['coreweave']['token'], 'r5-i2')}"}),
])
def test_the_caller_is_named_by_user_agent_or_bearer_token(clouds: MockClouds, cloud: str, path: str,
                                                           headers: dict[str, str]) -> None:
    clouds.backend(cloud).requests.clear()
    r = httpx.get(clouds.urls[cloud] + path, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert {c.caller for c in clouds.backend(cloud).requests.entries()} == {"r5-i2"}


def test_a_wrong_token_under_a_name_is_still_refused(clouds: MockClouds) -> None:
    r = httpx.get(clouds.urls["coreweave"] + "/api/v1/nodes",
                  headers={"Authorization": f"Bearer {named_token('not-the-token', 'r5')}"}, timeout=30)
    assert r.status_code == 401


@pytest.mark.slow      # each adapter lists its nodes in every region of the catalog
@pytest.mark.parametrize("cloud", ["gcp", "azure", "coreweave"])
def test_an_adapter_is_known_by_its_replica_identity(clouds: MockClouds, cloud: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # OCI reads its User-Agent setting when the SDK is imported: the replica test (subprocesses) covers it.
    for k, v in identities.env("r9-i1").items():
        monkeypatch.setenv(k, v)
    cfg = parse_config(identities.config_dict(clouds, "r9-i1"), "test")
    clouds.backend(cloud).requests.clear()
    prov = build_provider(cfg.providers[cloud])
    try:
        prov.list_nodes()
    finally:
        prov.close()
    calls = clouds.backend(cloud).requests.entries()
    assert calls and {c.caller for c in calls} == {"r9-i1"}, {c.caller for c in calls}
    assert all(c.operation for c in calls)


def test_gcp_token_endpoint_names_the_service_account(clouds: MockClouds) -> None:
    import base64
    import json

    claims = base64.urlsafe_b64encode(json.dumps({"iss": "r3@awan-lab.iam.gserviceaccount.com"}).encode())
    assertion = f"e30.{claims.decode().rstrip('=')}.sig"
    r = httpx.post(clouds.urls["gcp"] + "/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}, timeout=30)
    assert r.status_code == 200 and r.json()["access_token"].endswith("~r3")
    bad = httpx.post(clouds.urls["gcp"] + "/token", data={"grant_type": "password"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"] == "unsupported_grant_type"
