"""The EC2 query protocol on the wire: flat form parameters in, ``<XxxResponse>`` XML out, and the
``<Response><Errors>`` error document; plus the JSON 1.1 protocol of Service Quotas.

Rendering is generic: a nested dict keyed by the API's ``locationName``s becomes XML, lists become
``<item>`` children, exactly as boto3's EC2 parser expects.
"""

from __future__ import annotations

import builtins
import json
import uuid
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from werkzeug.wrappers import Response

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"


def request_id() -> str:
    return str(uuid.uuid4())


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return escape(str(v))


def to_xml(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        inner = "".join(to_xml(k, v) for k, v in value.items())
        return f"<{name}>{inner}</{name}>"
    if isinstance(value, list | tuple):
        inner = "".join(to_xml("item", v) for v in value)
        return f"<{name}>{inner}</{name}>"
    return f"<{name}>{_scalar(value)}</{name}>"


def ec2_response(action: str, body: dict[str, Any]) -> Response:
    inner = "".join(to_xml(k, v) for k, v in body.items())
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{EC2_NS}">'
           f"<requestId>{request_id()}</requestId>{inner}</{action}Response>")
    return Response(xml, status=200, mimetype="text/xml")


def ec2_error(code: str, message: str, status: int = 400, headers: dict[str, str] | None = None) -> Response:
    xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
           f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error></Errors>"
           f"<RequestID>{request_id()}</RequestID></Response>")
    return Response(xml, status=status, mimetype="text/xml", headers=headers or {})


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body, default=_json_default), status=status,
                    mimetype="application/x-amz-json-1.1")


def json_error(code: str, message: str, status: int = 400, headers: dict[str, str] | None = None) -> Response:
    h = {"x-amzn-RequestId": request_id(), **(headers or {})}
    return Response(json.dumps({"__type": code, "message": message}), status=status,
                    mimetype="application/x-amz-json-1.1", headers=h)


def _json_default(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.timestamp()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def tag_set(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


class Params:
    """The flat EC2 query parameters of one request (``Filter.1.Value.2=...``), with typed accessors."""

    def __init__(self, form: dict[str, str]) -> None:
        self.raw = form

    def get(self, key: str, default: str = "") -> str:
        return self.raw.get(key, default)

    def int(self, key: str, default: int = 0) -> int:
        v = self.raw.get(key)
        if v is None or v == "":
            return default
        try:
            return int(v)
        except ValueError:
            raise ParamError(f"{key}: expected an integer, got {v!r}") from None

    def time(self, key: str) -> datetime | None:
        v = self.raw.get(key)
        if not v:
            return None
        try:
            return datetime.fromisoformat(v.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            raise ParamError(f"{key}: expected an ISO 8601 timestamp, got {v!r}") from None

    def list(self, prefix: str) -> list[str]:
        """``Prefix.1``, ``Prefix.2``...; in index order."""
        out = []
        i = 1
        while f"{prefix}.{i}" in self.raw:
            out.append(self.raw[f"{prefix}.{i}"])
            i += 1
        return out

    def filters(self) -> dict[str, builtins.list[str]]:     # builtins.: ``list`` here is the method above
        out: dict[str, list[str]] = {}
        i = 1
        while f"Filter.{i}.Name" in self.raw:
            out[self.raw[f"Filter.{i}.Name"]] = self.list(f"Filter.{i}.Value")
            i += 1
        return out

    def tags(self, resource_type: str) -> dict[str, str]:
        """Tags of ``TagSpecification.N`` (RunInstances) or ``TagSpecifications.N`` (CreateCapacityReservation
        and others: the EC2 model names the list differently per action) whose ResourceType matches."""
        out: dict[str, str] = {}
        for prefix in ("TagSpecification", "TagSpecifications"):
            i = 1
            while f"{prefix}.{i}.ResourceType" in self.raw:
                if self.raw[f"{prefix}.{i}.ResourceType"] == resource_type:
                    j = 1
                    while f"{prefix}.{i}.Tag.{j}.Key" in self.raw:
                        out[self.raw[f"{prefix}.{i}.Tag.{j}.Key"]] = self.raw.get(f"{prefix}.{i}.Tag.{j}.Value", "")
                        j += 1
                i += 1
        return out


class ParamError(ValueError):
    """A malformed request parameter: answered as InvalidParameterValue."""
