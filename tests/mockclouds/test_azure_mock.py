"""The fake ARM at the wire level: what azure-mgmt-compute (and a human with curl) would see."""

from __future__ import annotations

import httpx
import pytest

from mockclouds.launcher import AZURE_SUBSCRIPTION as SUB
from mockclouds.launcher import MOCK_SECRETS

API = {"api-version": "2026-04-01"}
H100 = "Standard_ND96isr_H100_v5"
RG = f"/subscriptions/{SUB}/resourceGroups/awan/providers/Microsoft.Compute"


@pytest.fixture
def arm(mock_azure):
    with httpx.Client(base_url=mock_azure.urls["azure"],
                      headers={"Authorization": f"Bearer {MOCK_SECRETS['azure']['token']}"}) as c:
        yield c


@pytest.fixture
def backend(mock_azure):
    return mock_azure.backend("azure")


def vm_body(spot: bool = False, zone: str = "1", size: str = H100) -> dict:
    props: dict = {"hardwareProfile": {"vmSize": size}, "osProfile": {"adminPassword": "hunter2"}}
    if spot:
        props.update(priority="Spot", evictionPolicy="Delete")
    return {"location": "eastus", "zones": [zone], "tags": {"awan:owner": "awan"}, "properties": props}


def test_missing_or_wrong_token_is_401_invalid_authentication_token(mock_azure):
    url = mock_azure.urls["azure"] + f"/subscriptions/{SUB}/providers/Microsoft.Compute/skus"
    wrong = httpx.get(url, params=API, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert httpx.get(url, params=API).status_code == 401


def test_api_version_is_required(arm):
    r = arm.get(f"{RG}/virtualMachines")
    assert r.status_code == 400 and r.json()["error"]["code"] == "MissingApiVersionParameter"


def test_skus_list_region_gpu_sizes_with_capabilities_and_restrictions(arm, backend):
    params = {"api-version": "2021-07-01", "$filter": "location eq 'eastus'"}
    skus = {s["name"]: s for s in arm.get(f"/subscriptions/{SUB}/providers/Microsoft.Compute/skus",
                                          params=params).json()["value"]}
    assert H100 in skus and "Standard_ND96isr_MI300X_v5" not in skus   # MI300X is not sold in eastus
    caps = {c["name"]: c["value"] for c in skus[H100]["capabilities"]}
    assert (caps["GPUs"], caps["vCPUs"], caps["RdmaEnabled"]) == ("8", "96", "True")
    assert skus[H100]["family"] == "standardNDSH100v5Family" and skus[H100]["restrictions"] == []

    backend.ledger.set_free(0, zone="eastus-1", instance_type=H100)
    sku = next(s for s in arm.get(f"/subscriptions/{SUB}/providers/Microsoft.Compute/skus",
                                  params=params).json()["value"] if s["name"] == H100)
    assert sku["restrictions"][0]["type"] == "Zone"
    assert sku["restrictions"][0]["reasonCode"] == "NotAvailableForSubscription"
    assert sku["restrictions"][0]["restrictionInfo"]["zones"] == ["1"]


def test_usages_follow_the_vms(arm):
    def used(name: str) -> int:
        rows = arm.get(f"/subscriptions/{SUB}/providers/Microsoft.Compute/locations/eastus/usages",
                       params=API).json()["value"]
        return next(u["currentValue"] for u in rows if u["name"]["value"] == name)

    arm.put(f"{RG}/virtualMachines/a", params=API, json=vm_body())
    arm.put(f"{RG}/virtualMachines/b", params=API, json=vm_body(spot=True))
    assert (used("standardNDSH100v5Family"), used("cores"), used("lowPriorityCores")) == (96, 96, 96)
    arm.delete(f"{RG}/virtualMachines/a", params=API)
    assert used("standardNDSH100v5Family") == 0


def test_put_is_idempotent_by_name_and_hides_secrets(arm, backend):
    first = arm.put(f"{RG}/virtualMachines/n-0", params=API, json=vm_body())
    second = arm.put(f"{RG}/virtualMachines/n-0", params=API, json=vm_body())
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["properties"]["provisioningState"] == "Succeeded"
    assert first.json()["properties"]["vmId"] == second.json()["properties"]["vmId"]
    assert "adminPassword" not in first.text
    assert len(arm.get(f"{RG}/virtualMachines", params=API).json()["value"]) == 1
    assert backend.ledger.free("eastus-1", H100) == 15


def test_delete_missing_vm_is_204_and_get_is_404(arm):
    assert arm.delete(f"{RG}/virtualMachines/ghost", params=API).status_code == 204
    r = arm.get(f"{RG}/virtualMachines/ghost", params=API)
    assert r.status_code == 404 and r.json()["error"]["code"] == "ResourceNotFound"


def test_capacity_and_sku_errors_are_arm_codes(arm, mock_azure):
    httpx.post(mock_azure.urls["azure"] + "/_mock/capacity", json={"free": 0, "zone": "eastus-1"})
    r = arm.put(f"{RG}/virtualMachines/x", params=API, json=vm_body())
    assert r.status_code == 409 and r.json()["error"]["code"] == "ZonalAllocationFailed"
    r = arm.put(f"{RG}/virtualMachines/y", params=API, json=vm_body(zone="2"))
    assert r.json()["error"]["code"] == "SkuNotAvailable"


def test_quota_error_is_operation_not_allowed(arm, mock_azure):
    httpx.post(mock_azure.urls["azure"] + "/_mock/azure/quota",
               json={"region": "eastus", "name": "standardNDSH100v5Family", "limit": 0})
    r = arm.put(f"{RG}/virtualMachines/q", params=API, json=vm_body())
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "OperationNotAllowed" and "quota" in r.json()["error"]["message"]


def test_async_mode_answers_with_an_absolute_operation_url(arm, mock_azure):
    base = mock_azure.urls["azure"]
    httpx.post(base + "/_mock/azure/async", json={"enabled": True})
    r = arm.put(f"{RG}/virtualMachines/slow", params=API, json=vm_body())
    op_url = r.headers["Azure-AsyncOperation"]
    assert r.status_code == 201 and op_url.startswith(base + "/")
    assert r.json()["properties"]["provisioningState"] == "Creating"
    statuses = [arm.get(op_url).json()["status"] for _ in range(2)]
    assert statuses == ["InProgress", "Succeeded"]
    assert arm.get(f"{RG}/virtualMachines/slow", params=API).json()["properties"]["provisioningState"] == "Succeeded"
    d = arm.delete(f"{RG}/virtualMachines/slow", params=API)
    assert d.status_code == 202 and "Azure-AsyncOperation" in d.headers


def test_faults_throttle_and_outage(arm, mock_azure):
    base = mock_azure.urls["azure"]
    httpx.post(base + "/_mock/faults", json={"kind": "throttle", "times": 1, "retry_after": 3})
    r = arm.get(f"{RG}/virtualMachines", params=API)
    assert r.status_code == 429 and r.headers["Retry-After"] == "3"
    assert r.json()["error"]["code"] == "TooManyRequests"
    assert arm.get(f"{RG}/virtualMachines", params=API).status_code == 200     # times: 1

    httpx.post(base + "/_mock/faults", json={"kind": "outage", "region": "eastus"})
    r = arm.put(f"{RG}/virtualMachines/o", params=API, json=vm_body())
    assert r.status_code == 503 and r.json()["error"]["code"] == "ServiceUnavailable"
    usages = f"/subscriptions/{SUB}/providers/Microsoft.Compute/locations/westus3/usages"
    assert arm.get(usages, params=API).status_code == 200     # other regions still answer


def test_preempt_evicts_spot_only_and_revoke_takes_everything(arm, mock_azure):
    base = mock_azure.urls["azure"]
    spot = arm.put(f"{RG}/virtualMachines/s", params=API, json=vm_body(spot=True)).json()["id"]
    steady = arm.put(f"{RG}/virtualMachines/r", params=API, json=vm_body()).json()["id"]
    assert httpx.post(base + "/_mock/preempt", json={"region": "eastus"}).json()["nodes"] == [spot]
    inventory = httpx.get(base + "/_mock/inventory").json()["resources"]
    assert [r["id"] for r in inventory] == [steady] and inventory[0]["tags"] == {"awan:owner": "awan"}
    assert httpx.post(base + "/_mock/revoke", json={"instanceType": H100}).json()["nodes"] == [steady]
    assert arm.get(f"{RG}/virtualMachines", params=API).json()["value"] == []


def test_flexible_scale_set_members_are_vms(arm, backend):
    body = {"location": "eastus", "zones": ["1"], "sku": {"name": H100, "capacity": 2},
            "properties": {"orchestrationMode": "Flexible",
                           "virtualMachineProfile": {"priority": "Spot", "evictionPolicy": "Delete"}}}
    ss = arm.put(f"{RG}/virtualMachineScaleSets/g", params=API, json=body).json()
    assert ss["sku"]["capacity"] == 2 and ss["properties"]["provisioningState"] == "Succeeded"
    members = arm.get(f"{RG}/virtualMachines", params={**API, "$filter":
                      f"'virtualMachineScaleSet/id' eq '{ss['id']}'"}).json()["value"]
    assert len(members) == 2 and all(m["properties"]["virtualMachineScaleSet"]["id"] == ss["id"] for m in members)
    backend.preempt(None, None, None)
    assert arm.get(f"{RG}/virtualMachineScaleSets/g", params=API).json()["sku"]["capacity"] == 0
    assert arm.delete(f"{RG}/virtualMachineScaleSets/g", params=API).status_code == 200
    assert backend.inventory() == []
