"""Compute Engine v1 wire format for reservations and future reservations (see reservations.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from werkzeug.wrappers import Request, Response

from mockclouds.gcp.backend import GCPBackend
from mockclouds.gcp.reservations import FutureReservation, Reservation
from mockclouds.gcp.responses_common import api_base, body_of, json_response
from mockclouds.gcp.responses_compute import operation_json


def _rfc3339(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _zone_url(base: str, project: str, zone: str) -> str:
    return f"{base}projects/{project}/zones/{zone}"


def reservation_json(r: Reservation, base: str) -> dict:
    zone = _zone_url(base, r.project, r.zone)
    out: dict = {"kind": "compute#reservation", "id": r.id, "name": r.name, "zone": zone, "status": "READY",
                 "creationTimestamp": r.created, "specificReservationRequired": True,
                 "specificReservation": {"count": str(r.count), "inUseCount": str(r.in_use),
                                         "instanceProperties": {"machineType": r.machine_type}},
                 "selfLink": f"{zone}/reservations/{r.name}"}
    if r.delete_at is not None:
        out["deleteAtTime"] = _rfc3339(r.delete_at)
    return out


def future_json(f: FutureReservation, base: str) -> dict:
    zone = _zone_url(base, f.project, f.zone)
    status: dict = {"procurementStatus": f.status}
    if f.auto_created:
        status["autoCreatedReservations"] = [f"{zone}/reservations/{n}" for n in f.auto_created]
        status["fulfilledCount"] = str(f.total_count)
    out: dict = {"kind": "compute#futureReservation", "id": f.id, "name": f.name, "zone": zone,
                 "creationTimestamp": f.created, "planningStatus": "SUBMITTED",
                 "specificSkuProperties": {"totalCount": str(f.total_count),
                                           "instanceProperties": {"machineType": f.machine_type}},
                 "timeWindow": {"startTime": _rfc3339(f.start), "endTime": _rfc3339(f.end)},
                 "autoDeleteAutoCreatedReservations": True, "autoCreatedReservationsDeleteTime": _rfc3339(f.end),
                 "status": status, "selfLink": f"{zone}/futureReservations/{f.name}"}
    if f.name_prefix:
        out["namePrefix"] = f.name_prefix
    if f.reservation_name:
        out["reservationName"] = f.reservation_name
    if f.mode:
        out["reservationMode"] = f.mode
    return out


# -- handlers ------------------------------------------------------------------------------------
def futures_insert(b: GCPBackend, r: Request, project: str, zone: str) -> Response:
    op = b.reservations.insert_future(project, zone, body_of(r), r.args.get("requestId"))
    return json_response(operation_json(op, api_base(r)))


def futures_get(b: GCPBackend, r: Request, project: str, zone: str, name: str) -> Response:
    return json_response(future_json(b.reservations.get_future(project, zone, name), api_base(r)))


def futures_list(b: GCPBackend, r: Request, project: str, zone: str) -> Response:
    return json_response({"kind": "compute#futureReservationsListResponse", "items": [
        future_json(f, api_base(r)) for f in b.reservations.list_futures(project, zone)]})


def futures_aggregated(b: GCPBackend, r: Request, project: str) -> Response:
    items: dict[str, dict] = {}
    for f in b.reservations.list_futures(project, None):
        items.setdefault(f"zones/{f.zone}", {"futureReservations": []})["futureReservations"].append(
            future_json(f, api_base(r)))
    return json_response({"kind": "compute#futureReservationsAggregatedListResponse", "items": items})


def futures_delete(b: GCPBackend, r: Request, project: str, zone: str, name: str) -> Response:
    return json_response(operation_json(b.reservations.delete_future(project, zone, name), api_base(r)))


def reservations_get(b: GCPBackend, r: Request, project: str, zone: str, name: str) -> Response:
    return json_response(reservation_json(b.reservations.get(project, zone, name), api_base(r)))


def reservations_list(b: GCPBackend, r: Request, project: str, zone: str) -> Response:
    return json_response({"kind": "compute#reservationList", "items": [
        reservation_json(x, api_base(r)) for x in b.reservations.list(project, zone)]})


def reservations_aggregated(b: GCPBackend, r: Request, project: str) -> Response:
    items: dict[str, dict] = {}
    for x in b.reservations.list(project, None):
        items.setdefault(f"zones/{x.zone}", {"reservations": []})["reservations"].append(
            reservation_json(x, api_base(r)))
    return json_response({"kind": "compute#reservationAggregatedList", "items": items})


HANDLERS: dict[str, Callable[..., Response]] = {
    "futureReservations.insert": futures_insert, "futureReservations.get": futures_get,
    "futureReservations.list": futures_list, "futureReservations.aggregatedList": futures_aggregated,
    "futureReservations.delete": futures_delete,
    "reservations.get": reservations_get, "reservations.list": reservations_list,
    "reservations.aggregatedList": reservations_aggregated,
}
