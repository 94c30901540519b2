"""Compute Engine v1 wire format: renders the models as the JSON the google-cloud-compute client parses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from mockclouds.gcp.backend import GCPBackend
from mockclouds.gcp.compute import Instance, Operation, PlacementPolicy
from mockclouds.gcp.machines import MachineSpec
from mockclouds.gcp.responses_common import api_base, body_of, json_response

_HTTP_TEXT = {403: "FORBIDDEN", 503: "SERVICE UNAVAILABLE", 400: "BAD REQUEST"}


def operation_json(op: Operation, base: str) -> dict:
    out: dict[str, Any] = {"kind": "compute#operation", "id": op.id, "name": op.name, "operationType": op.op_type,
           "targetLink": base + op.target, "status": op.status, "progress": 100 if op.status == "DONE" else 0,
           "insertTime": op.started, "startTime": op.started,
           "selfLink": f"{base}projects/{op.project}/{op.scope}/{op.location}/operations/{op.name}",
           op.scope[:-1]: f"{base}projects/{op.project}/{op.scope}/{op.location}"}
    if op.status == "DONE":
        out["endTime"] = op.started
        if op.errors:
            out["httpErrorStatusCode"] = op.http_status
            out["httpErrorMessage"] = _HTTP_TEXT.get(op.http_status, "ERROR")
            out["error"] = {"errors": op.errors}
    return out


def instance_json(i: Instance, base: str) -> dict:
    zone_url = f"{base}projects/{i.project}/zones/{i.zone}"
    sched = {"provisioningModel": "SPOT" if i.spot else "STANDARD", "preemptible": i.spot,
             "automaticRestart": not i.spot, "onHostMaintenance": "TERMINATE"}
    if i.spot:
        sched["instanceTerminationAction"] = i.termination_action
    out = {"kind": "compute#instance", "id": i.id, "name": i.name, "zone": zone_url,
           "machineType": f"{zone_url}/machineTypes/{i.spec.name}", "status": i.status, "labels": i.labels,
           "scheduling": sched, "creationTimestamp": i.created, "selfLink": f"{zone_url}/instances/{i.name}",
           "guestAccelerators": [{"acceleratorType": f"{zone_url}/acceleratorTypes/{i.spec.accelerator}",
                                  "acceleratorCount": i.spec.cards}],
           "networkInterfaces": [{"name": "nic0", "network": f"{base}projects/{i.project}/global/networks/default"}]}
    if i.resource_policies:
        out["resourcePolicies"] = i.resource_policies
    if i.status_message:
        out["statusMessage"] = i.status_message
    if i.reservation:
        out["reservationAffinity"] = {"consumeReservationType": "SPECIFIC_RESERVATION",
                                      "key": "compute.googleapis.com/reservation-name", "values": [i.reservation]}
    return out


def machine_type_json(s: MachineSpec, project: str, zone: str, base: str) -> dict:
    return {"kind": "compute#machineType", "name": s.name, "zone": zone, "guestCpus": s.vcpus,
            "memoryMb": s.memory_mb, "isSharedCpu": False,
            "accelerators": [{"guestAcceleratorType": s.accelerator, "guestAcceleratorCount": s.cards}],
            "selfLink": f"{base}projects/{project}/zones/{zone}/machineTypes/{s.name}"}


def policy_json(p: PlacementPolicy, base: str) -> dict:
    gp: dict = {"collocation": p.collocation}
    if p.vm_count:
        gp["vmCount"] = p.vm_count
    return {"kind": "compute#resourcePolicy", "id": p.id, "name": p.name, "status": "READY",
            "region": f"{base}projects/{p.project}/regions/{p.region}", "creationTimestamp": p.created,
            "groupPlacementPolicy": gp,
            "selfLink": f"{base}projects/{p.project}/regions/{p.region}/resourcePolicies/{p.name}"}


# -- handlers: (backend, request, **url args) -> Response ----------------------------------------
def zones_list(b: GCPBackend, r: Request, project: str) -> Response:
    return json_response({"kind": "compute#zoneList",
                          "items": [_zone(b, r, project, z) for z in b.compute.zones]})


def zones_get(b: GCPBackend, r: Request, project: str, zone: str) -> Response:
    b.compute.check_zone(zone)
    return json_response(_zone(b, r, project, zone))


def _zone(b: GCPBackend, r: Request, project: str, zone: str) -> dict:
    region = b.compute.zones[zone]
    return {"kind": "compute#zone", "name": zone, "status": "DOWN" if b.faults.region_down(region) else "UP",
            "region": f"{api_base(r)}projects/{project}/regions/{region}",
            "selfLink": f"{api_base(r)}projects/{project}/zones/{zone}"}


def _region(b: GCPBackend, r: Request, project: str, region: str) -> dict:
    base = api_base(r)
    return {"kind": "compute#region", "name": region, "status": "DOWN" if b.faults.region_down(region) else "UP",
            "zones": [f"{base}projects/{project}/zones/{z}" for z, rg in b.compute.zones.items() if rg == region],
            "quotas": [{"metric": m, "limit": lim, "usage": use} for m, lim, use in b.compute.quotas(project, region)],
            "selfLink": f"{base}projects/{project}/regions/{region}"}


def regions_list(b: GCPBackend, r: Request, project: str) -> Response:
    return json_response({"kind": "compute#regionList", "items": [_region(b, r, project, g) for g in b.compute.regions]})


def regions_get(b: GCPBackend, r: Request, project: str, region: str) -> Response:
    return json_response(_region(b, r, project, region))


def machine_types_list(b: GCPBackend, r: Request, project: str, zone: str) -> Response:
    return json_response({"kind": "compute#machineTypeList", "items": [
        machine_type_json(s, project, zone, api_base(r)) for s in b.compute.machine_types(zone)]})


def machine_types_aggregated(b: GCPBackend, r: Request, project: str) -> Response:
    items = {f"zones/{z}": {"machineTypes": [machine_type_json(s, project, z, api_base(r))
                                             for s in b.compute.machine_types(z)]}
             for z in b.compute.zones if b.compute.zone_types.get(z)}
    return json_response({"kind": "compute#machineTypeAggregatedList", "items": items})


def accelerator_types_list(b: GCPBackend, r: Request, project: str, zone: str) -> Response:
    base = api_base(r)
    return json_response({"kind": "compute#acceleratorTypeList", "items": [
        {"kind": "compute#acceleratorType", "name": name, "description": name.upper().replace("-", " "),
         "maximumCardsPerInstance": cards, "zone": f"{base}projects/{project}/zones/{zone}",
         "selfLink": f"{base}projects/{project}/zones/{zone}/acceleratorTypes/{name}"}
        for name, cards in sorted(b.compute.accelerator_types(zone).items())]})


def instances_insert(b: GCPBackend, r: Request, project: str, zone: str) -> Response:
    op = b.compute.insert(project, zone, body_of(r), r.args.get("requestId"))
    return json_response(operation_json(op, api_base(r)))


def instances_get(b: GCPBackend, r: Request, project: str, zone: str, name: str) -> Response:
    return json_response(instance_json(b.compute.get(project, zone, name), api_base(r)))


def instances_list(b: GCPBackend, r: Request, project: str, zone: str) -> Response:
    found = b.compute.list(project, zone, r.args.get("filter"))
    return json_response({"kind": "compute#instanceList", "items": [instance_json(i, api_base(r)) for i in found]})


def instances_aggregated(b: GCPBackend, r: Request, project: str) -> Response:
    items: dict[str, dict] = {}
    for i in b.compute.list(project, None, r.args.get("filter")):
        items.setdefault(f"zones/{i.zone}", {"instances": []})["instances"].append(instance_json(i, api_base(r)))
    return json_response({"kind": "compute#instanceAggregatedList", "items": items})


def instances_delete(b: GCPBackend, r: Request, project: str, zone: str, name: str) -> Response:
    return json_response(operation_json(b.compute.delete(project, zone, name, r.args.get("requestId")), api_base(r)))


def zone_operation_get(b: GCPBackend, r: Request, project: str, zone: str, operation: str) -> Response:
    return json_response(operation_json(b.compute.operation(project, "zones", zone, operation), api_base(r)))


def region_operation_get(b: GCPBackend, r: Request, project: str, region: str, operation: str) -> Response:
    return json_response(operation_json(b.compute.operation(project, "regions", region, operation), api_base(r)))


def policies_insert(b: GCPBackend, r: Request, project: str, region: str) -> Response:
    op = b.compute.insert_policy(project, region, body_of(r), r.args.get("requestId"))
    return json_response(operation_json(op, api_base(r)))


def policies_get(b: GCPBackend, r: Request, project: str, region: str, name: str) -> Response:
    return json_response(policy_json(b.compute.get_policy(project, region, name), api_base(r)))


def policies_delete(b: GCPBackend, r: Request, project: str, region: str, name: str) -> Response:
    return json_response(operation_json(b.compute.delete_policy(project, region, name), api_base(r)))


HANDLERS: dict[str, Callable[..., Response]] = {
    "zones.list": zones_list, "zones.get": zones_get, "regions.list": regions_list, "regions.get": regions_get,
    "machineTypes.list": machine_types_list, "machineTypes.aggregatedList": machine_types_aggregated,
    "acceleratorTypes.list": accelerator_types_list,
    "instances.insert": instances_insert, "instances.get": instances_get, "instances.list": instances_list,
    "instances.aggregatedList": instances_aggregated, "instances.delete": instances_delete,
    "zoneOperations.get": zone_operation_get, "zoneOperations.wait": zone_operation_get,
    "regionOperations.get": region_operation_get, "regionOperations.wait": region_operation_get,
    "resourcePolicies.insert": policies_insert, "resourcePolicies.get": policies_get,
    "resourcePolicies.delete": policies_delete,
}
