"""Routing: the REST paths google-cloud-compute and google-cloud-tpu (transport="rest") send.

Each endpoint is named after the API method it serves; that name is also what ``FaultBook`` faults
match on (``{"kind": "throttle", "operation": "instances.insert"}``).
"""

from __future__ import annotations

from werkzeug.routing import Map, Rule

_C = "/compute/v1/projects/<project>"
_T = "/v2/projects/<project>/locations/<zone>"

_RULES = [
    (f"{_C}/zones", "GET", "zones.list"),
    (f"{_C}/zones/<zone>", "GET", "zones.get"),
    (f"{_C}/regions", "GET", "regions.list"),
    (f"{_C}/regions/<region>", "GET", "regions.get"),
    (f"{_C}/zones/<zone>/machineTypes", "GET", "machineTypes.list"),
    (f"{_C}/aggregated/machineTypes", "GET", "machineTypes.aggregatedList"),
    (f"{_C}/zones/<zone>/acceleratorTypes", "GET", "acceleratorTypes.list"),
    (f"{_C}/zones/<zone>/instances", "POST", "instances.insert"),
    (f"{_C}/zones/<zone>/instances", "GET", "instances.list"),
    (f"{_C}/zones/<zone>/instances/<name>", "GET", "instances.get"),
    (f"{_C}/zones/<zone>/instances/<name>", "DELETE", "instances.delete"),
    (f"{_C}/aggregated/instances", "GET", "instances.aggregatedList"),
    (f"{_C}/zones/<zone>/operations/<operation>", "GET", "zoneOperations.get"),
    (f"{_C}/zones/<zone>/operations/<operation>/wait", "POST", "zoneOperations.wait"),
    (f"{_C}/regions/<region>/operations/<operation>", "GET", "regionOperations.get"),
    (f"{_C}/regions/<region>/operations/<operation>/wait", "POST", "regionOperations.wait"),
    (f"{_C}/regions/<region>/resourcePolicies", "POST", "resourcePolicies.insert"),
    (f"{_C}/regions/<region>/resourcePolicies/<name>", "GET", "resourcePolicies.get"),
    (f"{_C}/regions/<region>/resourcePolicies/<name>", "DELETE", "resourcePolicies.delete"),
    (f"{_C}/zones/<zone>/futureReservations", "POST", "futureReservations.insert"),
    (f"{_C}/zones/<zone>/futureReservations", "GET", "futureReservations.list"),
    (f"{_C}/zones/<zone>/futureReservations/<name>", "GET", "futureReservations.get"),
    (f"{_C}/zones/<zone>/futureReservations/<name>", "DELETE", "futureReservations.delete"),
    (f"{_C}/aggregated/futureReservations", "GET", "futureReservations.aggregatedList"),
    (f"{_C}/zones/<zone>/reservations", "GET", "reservations.list"),
    (f"{_C}/zones/<zone>/reservations/<name>", "GET", "reservations.get"),
    (f"{_C}/aggregated/reservations", "GET", "reservations.aggregatedList"),
    (f"{_T}/nodes", "POST", "nodes.create"),
    (f"{_T}/nodes", "GET", "nodes.list"),
    (f"{_T}/nodes/<node>", "GET", "nodes.get"),
    (f"{_T}/nodes/<node>", "DELETE", "nodes.delete"),
    (f"{_T}/queuedResources", "POST", "queuedResources.create"),
    (f"{_T}/queuedResources", "GET", "queuedResources.list"),
    (f"{_T}/queuedResources/<qr>", "GET", "queuedResources.get"),
    (f"{_T}/queuedResources/<qr>", "DELETE", "queuedResources.delete"),
    (f"{_T}/acceleratorTypes", "GET", "acceleratorTypes.tpuList"),
    (f"{_T}/operations/<operation>", "GET", "operations.get"),
]

URL_MAP = Map([Rule(path, methods=[method], endpoint=endpoint) for path, method, endpoint in _RULES],
              strict_slashes=False)
