"""Reading ARM request bodies: the ``properties`` envelope, the zone, and secrets never to echo back."""

from __future__ import annotations

from typing import Any

from mockclouds.azure.models import ArmError

_SECRET_KEYS = ("adminPassword", "customData")


def props_of(body: dict[str, Any]) -> dict[str, Any]:
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise ArmError(400, "InvalidRequestContent", "properties: expected an object")
    return props


def zone_of(body: dict[str, Any]) -> str | None:
    zones = body.get("zones") or []
    if not isinstance(zones, list) or len(zones) > 1:
        raise ArmError(400, "InvalidParameter", "zones: at most one availability zone may be given")
    return str(zones[0]) if zones else None


def redact(props: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(props.get("osProfile"), dict):
        return dict(props)
    return {**props, "osProfile": {k: v for k, v in props["osProfile"].items() if k not in _SECRET_KEYS}}
