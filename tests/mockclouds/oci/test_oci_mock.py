"""The fake OCI at the wire level: what the `oci` SDK (and a human with curl) sees. Requests carry an OCI
Signature header; the mock checks its keyId, not the signature."""

from __future__ import annotations

import httpx
import pytest

from mockclouds.faults import Fault
from mockclouds.oci.keys import TENANCY, key_id

H100 = "BM.GPU.H100.8"
REGION = "us-ashburn-1"


@pytest.fixture
def api(mock_oci):
    auth = f'Signature version="1",keyId="{key_id()}",algorithm="rsa-sha256",headers="date",signature="x"'
    with httpx.Client(base_url=f"{mock_oci.urls['oci']}/{REGION}", headers={"Authorization": auth}) as c:
        yield c


@pytest.fixture
def backend(mock_oci):
    return mock_oci.backend("oci")


def launch(api: httpx.Client, token: str | None = None, ad: str = "Awan:US-ASHBURN-AD-1", **extra: object) -> httpx.Response:
    body = {"compartmentId": TENANCY, "availabilityDomain": ad, "shape": H100, "displayName": "n",
            "freeformTags": {"awan-owner": "awan", "awan-workload": "w"}, **extra}
    return api.post("/20160918/instances", json=body, headers={"opc-retry-token": token} if token else {})


def test_unsigned_or_foreign_key_is_401_not_authenticated(mock_oci, api):
    url = f"{mock_oci.urls['oci']}/{REGION}/20160918/instances"
    assert httpx.get(url, params={"compartmentId": TENANCY}).json()["code"] == "NotAuthenticated"
    other = 'Signature version="1",keyId="ocid1.tenancy.oc1..x/ocid1.user.oc1..y/aa:bb",signature="x"'
    r = httpx.get(url, params={"compartmentId": TENANCY}, headers={"Authorization": other})
    assert r.status_code == 401 and "opc-request-id" in r.headers


def test_availability_domains_carry_the_tenancy_prefix_and_unknown_regions_are_404(mock_oci, api):
    ads = api.get("/20160918/availabilityDomains", params={"compartmentId": TENANCY}).json()
    assert [a["name"] for a in ads] == ["Awan:US-ASHBURN-AD-1", "Awan:US-ASHBURN-AD-2"]
    r = httpx.get(f"{mock_oci.urls['oci']}/mars-1/20160918/availabilityDomains", params={"compartmentId": TENANCY},
                  headers=api.headers)
    assert r.status_code == 404 and r.json()["code"] == "NotAuthorizedOrNotFound"


def test_retry_token_makes_launch_idempotent_and_lists_page(api, backend):
    a, b = launch(api, "tok-1").json(), launch(api, "tok-1").json()
    assert a["id"] == b["id"] and a["lifecycleState"] == "RUNNING"
    launch(api, "tok-2"), launch(api, "tok-3")
    first = api.get("/20160918/instances", params={"compartmentId": TENANCY, "limit": 2})
    assert len(first.json()) == 2 and first.headers["opc-next-page"]
    rest = api.get("/20160918/instances", params={"compartmentId": TENANCY, "limit": 2,
                                                  "page": first.headers["opc-next-page"]})
    assert len(rest.json()) == 1 and "opc-next-page" not in rest.headers
    assert backend.ledger.free("US-ASHBURN-AD-1", H100) == 13


def test_stock_out_is_500_out_of_host_capacity_and_limits_are_400_limit_exceeded(api, backend, mock_oci):
    backend.ledger.set_free(0, zone="US-ASHBURN-AD-1")
    r = launch(api)
    assert (r.status_code, r.json()["code"], r.json()["message"]) == (500, "InternalError", "Out of host capacity.")
    ctl = httpx.post(f"{mock_oci.urls['oci']}/_mock/oci/limit",
                     json={"zone": "US-ASHBURN-AD-2", "name": "gpu-h100-count", "value": 0})
    assert ctl.status_code == 200
    r = launch(api, ad="Awan:US-ASHBURN-AD-2")
    assert (r.status_code, r.json()["code"]) == (400, "LimitExceeded")
    avail = api.get("/20190729/services/compute/limits/gpu-h100-count/resourceAvailability",
                    params={"compartmentId": TENANCY, "availabilityDomain": "Awan:US-ASHBURN-AD-2"}).json()
    assert (avail["used"], avail["available"]) == (0, 0)


def test_faults_throttle_with_retry_after_and_outage_per_region(api, backend):
    backend.faults.add(Fault(kind="throttle", operation="ListInstances", times=1, retry_after=2))
    r = api.get("/20160918/instances", params={"compartmentId": TENANCY})
    assert (r.status_code, r.json()["code"], r.headers["retry-after"]) == (429, "TooManyRequests", "2")
    assert api.get("/20160918/instances", params={"compartmentId": TENANCY}).status_code == 200
    backend.faults.add(Fault(kind="outage", region=REGION))
    assert launch(api).status_code == 503
    report = backend.capacity_report(REGION, "US-ASHBURN-AD-1", [H100])
    assert report == [(H100, 0, "OUT_OF_HOST_CAPACITY")]


def test_revocation_terminates_without_refilling_and_inventory_shows_it(api, backend, mock_oci):
    iid = launch(api, "tok-r").json()["id"]
    r = httpx.post(f"{mock_oci.urls['oci']}/_mock/revoke", json={"zone": "US-ASHBURN-AD-1"})
    assert r.json()["nodes"] == [iid]
    assert api.get(f"/20160918/instances/{iid}").json()["lifecycleState"] == "TERMINATED"
    assert backend.ledger.free("US-ASHBURN-AD-1", H100) == 15
    (row,) = [x for x in backend.inventory() if x["id"] == iid]
    assert (row["kind"], row["state"], row["tags"]["awan-workload"]) == ("instance", "terminated", "w")
