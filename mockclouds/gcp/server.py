"""The GCP fake as a WSGI app: /_mock/* control, fault injection, then routing to the REST handlers.

    rs = start("127.0.0.1", 0)        # rs.url, rs.backend (a GCPBackend: MockBackend)

GCP-only control endpoint, beside the shared ones: ``POST /_mock/quotas {"region", "metric", "limit"}``
sets a regional quota limit (e.g. NVIDIA_H100_GPUS) to provoke QUOTA_EXCEEDED.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.wrappers import Request, Response

from mockclouds.control import handle_control
from mockclouds.gcp import responses_compute, responses_reservations, responses_tpu
from mockclouds.gcp.backend import GCPBackend
from mockclouds.gcp.errors import GoogleApiError, invalid
from mockclouds.gcp.machines import region_of
from mockclouds.gcp.responses_common import error_response, fault_error, json_response
from mockclouds.gcp.tokens import TOKEN_PATH, caller_of_jwt, token_grant
from mockclouds.gcp.urls import URL_MAP
from mockclouds.requestlog import caller_of_request
from mockclouds.serving import RunningServer, serve_in_thread

HANDLERS = {**responses_compute.HANDLERS, **responses_tpu.HANDLERS, **responses_reservations.HANDLERS}


def _region(args: Mapping[str, str]) -> str | None:
    """The region a call touches, for regional faults; None for global calls (aggregated lists, zone '-')."""
    if "region" in args:
        return args["region"]
    zone = args.get("zone")
    return region_of(zone) if zone and zone != "-" else None


class GCPApp:
    def __init__(self, backend: GCPBackend) -> None:
        self.backend = backend

    def __call__(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        with self.backend.requests.serving(caller_of_request(request.headers) or caller_of_jwt(request.headers)):
            resp = self.dispatch(request)
        return resp(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        if request.path.rstrip("/") == "/_mock/quotas" and request.method == "POST":
            return self._set_quota(request)
        if request.path.rstrip("/") == TOKEN_PATH and request.method == "POST":
            return token_grant(request)
        control = handle_control(request, self.backend)
        if control is not None:
            return control
        try:
            endpoint, args = URL_MAP.bind_to_environ(request.environ).match()
        except (NotFound, MethodNotAllowed):
            return error_response(GoogleApiError(404, "notFound",
                                                 f"The requested URL {request.method} {request.path} was not found"))
        try:
            hit = self.backend.faults.check(endpoint, _region(args))
            if hit is not None:
                raise fault_error(hit)
            self.backend.tick()       # a clock move takes effect before the next answer
            return HANDLERS[endpoint](self.backend, request, **args)
        except GoogleApiError as e:
            return error_response(e)

    def _set_quota(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        try:
            region, metric, limit = body.get("region"), body.get("metric"), body.get("limit")
            if not isinstance(region, str) or not isinstance(metric, str) or not isinstance(limit, int | float):
                raise invalid("region (string), metric (string) and limit (number) are required")
            self.backend.compute.check_region(region)
            self.backend.compute.set_limit(region, metric, float(limit))
        except GoogleApiError as e:
            return json_response({"error": e.message}, e.status)
        return json_response({"ok": True})


def start(host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    from mockclouds.kubernetes.regional import mount
    from providers.catalog import default_catalog

    backend = GCPBackend()
    wsgi = mount("gcp", GCPApp(backend), backend, default_catalog(), backend.faults)   # + /_k8s/<region>/
    return serve_in_thread("gcp", wsgi, backend, host, port)
