"""``moto_plus``: a WSGI layer in front of moto's server app that adds what EC2 does and moto does not.

Order for every request: ``/_mock/*`` control -> credentials -> fault injection -> the mock's own
actions (placement groups, capacity reservations/blocks, ec2 quotas) -> RunInstances/TerminateInstances
with finite capacity, quotas and ClientToken idempotency -> everything else to moto unchanged.
"""

from __future__ import annotations

import io
import json
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from werkzeug.wrappers import Request, Response

from mockclouds.aws import quotas
from mockclouds.aws.handlers import HANDLERS
from mockclouds.aws.models import Ec2Error
from mockclouds.aws.wire import ParamError, Params, ec2_error, ec2_response, json_error
from mockclouds.control import handle_control
from mockclouds.faults import FaultHit
from mockclouds.requestlog import Call, caller_of

if TYPE_CHECKING:
    from mockclouds.aws.backend import AwsMockBackend

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_INSTANCE_ID = re.compile(rb"<instanceId>(i-[0-9a-f]+)</instanceId>")
_CR_TARGET = "CapacityReservationSpecification.CapacityReservationTarget.CapacityReservationId"


def _signing(req: Request) -> tuple[str, str, str]:
    """(access key, region, service) from the SigV4 Authorization header; empty when unsigned."""
    m = _CREDENTIAL.search(req.headers.get("Authorization", ""))
    return (m.group(1), m.group(2), m.group(3)) if m else ("", "", "")


def _forward(app: Any, environ: dict[str, Any], body: bytes) -> Response:
    env = dict(environ)
    env["wsgi.input"] = io.BytesIO(body)
    env["CONTENT_LENGTH"] = str(len(body))
    return Response.from_app(app, env)


class MotoPlus:
    def __init__(self, moto_app: Any, backend: AwsMockBackend) -> None:
        self.moto = moto_app
        self.backend = backend

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        req = Request(environ)
        self.backend.tick()
        resp = handle_control(req, self.backend)
        if resp is not None:
            self.backend.tick()      # a clock move takes effect before the next answer
        else:
            body = req.get_data(cache=True)
            environ["wsgi.input"] = io.BytesIO(body)      # moto reads the body again
            start = time.monotonic()
            resp = self._dispatch(req, environ, body)
            form = dict(parse_qsl(body.decode("utf-8", "replace"))) if body else {}
            self.backend.requests.add(Call(form.get("Action") or req.headers.get("X-Amz-Target", ""),
                                           _signing(req)[1] or "us-east-1",
                                           caller_of(req.headers.get("User-Agent", "")), start, time.monotonic()))
        return resp(environ, start_response)

    def _dispatch(self, req: Request, environ: dict[str, Any], body: bytes) -> Response:
        key, region, service = _signing(req)
        region = region or "us-east-1"
        target = req.headers.get("X-Amz-Target", "")
        if target.startswith(quotas.TARGET_PREFIX):
            return self._quotas(key, region, target[len(quotas.TARGET_PREFIX):], environ, body)
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)) if body else {}
        form.update(req.args.to_dict())
        if service == "ec2" or (form.get("Action") and form.get("Version")):
            return self._ec2(key, region, form, environ)
        return _forward(self.moto, environ, body)

    # -- Service Quotas ------------------------------------------------------------------------
    def _quotas(self, key: str, region: str, op: str, environ: dict[str, Any], body: bytes) -> Response:
        if key not in self.backend.access_keys:
            return json_error("UnrecognizedClientException",
                              "The security token included in the request is invalid.", 400)
        hit = self.backend.faults.check(op, region)
        if hit is not None:
            code, status, headers = _fault_answer(hit, json_api=True)
            return json_error(code, hit.message, status, headers)
        try:
            parsed = json.loads(body or b"{}")
        except ValueError:
            return json_error("SerializationException", "request body is not JSON")
        return quotas.handle(self.backend.state, region, op, parsed) or _forward(self.moto, environ, body)

    # -- EC2 -----------------------------------------------------------------------------------
    def _ec2(self, key: str, region: str, form: dict[str, str], environ: dict[str, Any]) -> Response:
        action = form.get("Action", "")
        if key not in self.backend.access_keys:
            return ec2_error("AuthFailure", "AWS was not able to validate the provided access credentials", 401)
        hit = self.backend.faults.check(action, region)
        if hit is not None:
            code, status, headers = _fault_answer(hit, json_api=False)
            return ec2_error(code, hit.message, status, headers)
        p = Params(form)
        try:
            if action in HANDLERS:
                return ec2_response(action, HANDLERS[action](self.backend.state, region, p))
            if action == "RunInstances":
                return self._run_instances(region, p, environ)
            if action == "TerminateInstances":
                return self._terminate_instances(p, environ)
        except Ec2Error as e:
            return ec2_error(e.code, e.message, e.status)
        except ParamError as e:
            return ec2_error("InvalidParameterValue", str(e))
        return _forward(self.moto, environ, urlencode(form).encode())

    def _run_instances(self, region: str, p: Params, environ: dict[str, Any]) -> Response:
        st = self.backend.state
        token = p.get("ClientToken")
        if len(token) > 64:
            raise Ec2Error("InvalidParameterValue", "ClientToken must be at most 64 characters")
        fingerprint = urlencode(sorted((k, v) for k, v in p.raw.items() if k != "ClientToken"))
        with st.lock:      # one launch at a time: a ClientToken must never launch twice
            if token and (region, token) in st.tokens:
                seen, reply = st.tokens[(region, token)]
                if seen != fingerprint:
                    raise Ec2Error("IdempotentParameterMismatch",
                                   "The client token you have provided is associated with a request that "
                                   "had different parameters.")
                return Response(reply, status=200, mimetype="text/xml")
            market = "spot" if p.get("InstanceMarketOptions.MarketType") == "spot" else "on-demand"
            plan = st.plan_launch(region, p.get("Placement.AvailabilityZone"), p.get("InstanceType", "m1.small"),
                                  p.int("MinCount", 1), p.int("MaxCount", 1), market, p.get(_CR_TARGET),
                                  p.get("Placement.GroupName"))
            form = dict(p.raw)
            if p.get("InstanceMarketOptions.MarketType") == "capacity-block":
                # moto would mark any market option as spot; a capacity-block instance is on-demand.
                form = {k: v for k, v in form.items() if not k.startswith("InstanceMarketOptions.")}
            form.update(MinCount=str(plan.count), MaxCount=str(plan.count))
            if plan.zone:
                form["Placement.AvailabilityZone"] = plan.zone
            resp = _forward(self.moto, environ, urlencode(form).encode())
            if resp.status_code != 200:
                st.undo(plan)
                return resp
            reply = resp.get_data()
            st.commit(plan, [m.decode() for m in _INSTANCE_ID.findall(reply)])
            if token:
                st.tokens[(region, token)] = (fingerprint, reply)
            return resp

    def _terminate_instances(self, p: Params, environ: dict[str, Any]) -> Response:
        resp = _forward(self.moto, environ, urlencode(p.raw).encode())
        if resp.status_code == 200:
            self.backend.state.release(p.list("InstanceId"))
        return resp


def _fault_answer(hit: FaultHit, json_api: bool) -> tuple[str, int, dict[str, str]]:
    """The AWS error code, HTTP status and headers for an injected fault."""
    if hit.kind == "throttle":
        # EC2 throttles with 503 RequestLimitExceeded; 429 is the FaultBook's cloud-neutral default.
        status = 503 if hit.status == 429 else hit.status
        return ("ThrottlingException" if json_api else "RequestLimitExceeded", status,
                {"Retry-After": f"{hit.retry_after:g}"})
    if hit.kind == "outage":
        return ("ServiceUnavailableException" if json_api else "Unavailable", hit.status, {})
    return (hit.code or "InternalError", hit.status, {})
