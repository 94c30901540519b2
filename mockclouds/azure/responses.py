"""ARM JSON for the fake's state: VMs, scale sets, resource SKUs, usages, async operations, errors.

Shapes follow the Microsoft.Compute REST specs closely enough that azure-mgmt-compute deserialises them
into its models (camelCase keys, ``properties`` envelope, ``{"value": [...]}`` for lists).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Response

from mockclouds.azure import skus
from mockclouds.azure.backend import SkuView
from mockclouds.azure.models import ArmError, AsyncOperation, ScaleSet, VirtualMachine


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    resp = Response("" if body is None else json.dumps(body), status=status, mimetype="application/json")
    resp.headers["x-ms-request-id"] = str(uuid.uuid4())
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def error_response(err: ArmError) -> Response:
    return json_response({"error": {"code": err.code, "message": err.message}}, err.status, err.headers)


def instance_view(vm: VirtualMachine) -> dict[str, Any]:
    prov = {"code": f"ProvisioningState/{vm.provisioning_state.lower()}", "level": "Info",
            "displayStatus": f"Provisioning {vm.provisioning_state.lower()}"}
    if vm.error:
        prov = {"code": f"ProvisioningState/failed/{vm.error[0]}", "level": "Error",
                "displayStatus": "Provisioning failed", "message": vm.error[1]}
    if vm.evicted:
        power = {"code": "PowerState/deallocated", "level": "Info", "displayStatus": "VM deallocated"}
    elif vm.provisioning_state == "Succeeded":
        power = {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"}
    else:
        power = {"code": "PowerState/starting", "level": "Info", "displayStatus": "VM starting"}
    statuses = [prov, power]
    if vm.evicted:
        statuses.append({"code": "Evicted", "level": "Warning", "displayStatus": "VM evicted (Spot)"})
    return {"statuses": statuses}


def vm_json(vm: VirtualMachine, expand_instance_view: bool = False) -> dict[str, Any]:
    props: dict[str, Any] = dict(vm.properties)
    props.update({
        "vmId": vm.vm_id,
        "hardwareProfile": {**(props.get("hardwareProfile") or {}), "vmSize": vm.size},
        "provisioningState": vm.provisioning_state,
        "timeCreated": _iso(vm.created_at),
        "priority": "Spot" if vm.spot else "Regular",
    })
    if vm.spot:
        props["evictionPolicy"] = vm.eviction_policy
    if vm.scale_set_id:
        props["virtualMachineScaleSet"] = {"id": vm.scale_set_id}
    if expand_instance_view:
        props["instanceView"] = instance_view(vm)
    body: dict[str, Any] = {"id": vm.id, "name": vm.name, "type": "Microsoft.Compute/virtualMachines",
                            "location": vm.location, "tags": vm.tags, "properties": props}
    if vm.zone:
        body["zones"] = [vm.zone]
    return body


def scale_set_json(ss: ScaleSet) -> dict[str, Any]:
    props = dict(ss.properties)
    props.update({"orchestrationMode": "Flexible", "provisioningState": ss.provisioning_state,
                  "uniqueId": ss.unique_id})
    body: dict[str, Any] = {"id": ss.id, "name": ss.name, "type": "Microsoft.Compute/virtualMachineScaleSets",
                            "location": ss.location, "tags": ss.tags,
                            "sku": {"name": ss.size, "tier": "Standard", "capacity": ss.capacity},
                            "properties": props}
    if ss.zone:
        body["zones"] = [ss.zone]
    return body


def sku_json(view: SkuView) -> dict[str, Any]:
    f = view.facts
    restrictions = []
    if view.restriction == "Location":
        restrictions.append({"type": "Location", "values": [view.location],
                             "restrictionInfo": {"locations": [view.location]},
                             "reasonCode": "NotAvailableForSubscription"})
    elif view.restriction == "Zone":
        restrictions.append({"type": "Zone", "values": [view.location],
                             "restrictionInfo": {"locations": [view.location], "zones": list(view.zones)},
                             "reasonCode": "NotAvailableForSubscription"})
    return {"resourceType": "virtualMachines", "name": f.name, "tier": f.tier, "size": f.size,
            "family": f.family, "locations": [view.location],
            "locationInfo": [{"location": view.location, "zones": list(view.zones), "zoneDetails": []}],
            "capabilities": f.capabilities(view.spot_capable), "restrictions": restrictions}


def usages_json(rows: list[tuple[str, float, float]]) -> dict[str, Any]:
    return {"value": [{"unit": "Count", "currentValue": int(used), "limit": int(limit),
                       "name": {"value": name, "localizedValue": skus.family_label(name)}}
                      for name, used, limit in rows]}


def operation_json(op: AsyncOperation) -> dict[str, Any]:
    body: dict[str, Any] = {"name": op.id, "status": op.status, "startTime": _iso(op.started)}
    if op.status != "InProgress":
        body["endTime"] = _iso(op.started)
    if op.status == "Failed" and op.error:
        body["error"] = {"code": op.error[0], "message": op.error[1]}
    return body
