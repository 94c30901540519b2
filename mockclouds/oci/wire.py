"""OCI's JSON for the fake's resources (camelCase, RFC 3339 times), as the `oci` SDK deserializes it."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from werkzeug.wrappers import Response

from mockclouds.oci.models import (
    CapacityReservation,
    ClusterNetwork,
    Instance,
    InstanceConfiguration,
    OciError,
    ad_name,
)


def ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    h = {"opc-request-id": uuid.uuid4().hex.upper(), **(headers or {})}
    if body is None:
        return Response(status=status, headers=h)
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=h)


def error_response(e: OciError) -> Response:
    return json_response({"code": e.code, "message": e.message}, e.status, e.headers)


def page(items: list[Any], start: str | None, limit: str | None) -> tuple[list[Any], dict[str, str]]:
    """OCI paging: ``limit`` items from the opaque ``page`` token (an offset here), ``opc-next-page`` if more."""
    try:
        offset = int(start) if start else 0
        size = max(1, min(1000, int(limit))) if limit else 1000
    except ValueError:
        raise OciError(400, "InvalidParameter", "page and limit must be integers.") from None
    chunk = items[offset:offset + size]
    more = offset + size < len(items)
    return chunk, ({"opc-next-page": str(offset + size)} if more else {})


def instance(i: Instance) -> dict[str, Any]:
    return {"id": i.id, "availabilityDomain": ad_name(i.zone), "compartmentId": i.compartment,
            "displayName": i.display_name, "faultDomain": "FAULT-DOMAIN-1", "freeformTags": dict(i.tags),
            "definedTags": {}, "lifecycleState": i.state, "region": i.region, "shape": i.shape,
            "timeCreated": ts(i.created), "capacityReservationId": i.capacity_reservation_id or None,
            "instanceConfigurationId": i.instance_configuration_id or None,
            "preemptibleInstanceConfig": ({"preemptionAction": {"type": "TERMINATE", "preserveBootVolume": False}}
                                          if i.preemptible else None)}


def instance_summary(i: Instance) -> dict[str, Any]:
    """InstanceSummary, as ListClusterNetworkInstances answers (``state``, not ``lifecycleState``)."""
    return {"id": i.id, "availabilityDomain": ad_name(i.zone), "compartmentId": i.compartment,
            "displayName": i.display_name, "faultDomain": "FAULT-DOMAIN-1", "region": i.region, "shape": i.shape,
            "state": i.state, "timeCreated": ts(i.created),
            "instanceConfigurationId": i.instance_configuration_id or None}


def reservation(r: CapacityReservation, used: int) -> dict[str, Any]:
    return {"id": r.id, "compartmentId": r.compartment, "availabilityDomain": ad_name(r.zone),
            "displayName": r.display_name, "freeformTags": dict(r.tags), "definedTags": {},
            "lifecycleState": r.state, "isDefaultReservation": False, "reservedInstanceCount": r.reserved,
            "usedInstanceCount": used, "timeCreated": ts(r.created),
            "instanceReservationConfigs": [{"instanceShape": r.shape, "reservedCount": r.reserved,
                                            "usedCount": used}]}


def config(c: InstanceConfiguration) -> dict[str, Any]:
    return {"id": c.id, "compartmentId": c.compartment, "displayName": c.display_name,
            "freeformTags": dict(c.tags), "definedTags": {}, "instanceDetails": c.details,
            "timeCreated": ts(c.created)}


def network(n: ClusterNetwork) -> dict[str, Any]:
    placement = {"availabilityDomain": ad_name(n.zone), "primarySubnetId": n.subnet_id or None}
    return {"id": n.id, "compartmentId": n.compartment, "displayName": n.display_name,
            "freeformTags": dict(n.tags), "definedTags": {}, "lifecycleState": n.state,
            "timeCreated": ts(n.created), "timeUpdated": ts(n.created), "placementConfiguration": placement,
            "instancePools": [{"id": n.pool_id, "compartmentId": n.compartment, "displayName": n.pool_name,
                               "instanceConfigurationId": n.instance_configuration_id, "size": n.size,
                               "lifecycleState": "TERMINATED" if n.state == "TERMINATED" else "RUNNING",
                               "placementConfigurations": [placement], "freeformTags": {}, "definedTags": {},
                               "timeCreated": ts(n.created)}],
            "hpcIslandId": None, "networkBlockIds": []}
