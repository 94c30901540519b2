"""A small fake of Azure Resource Manager for Microsoft.Compute, served over HTTP for azure-mgmt-compute.

Routing, bearer-token auth and fault injection live here; state changes are in ``backend.py`` and JSON
in ``responses.py``. Fault ``operation`` names are ARM's operationIds::

    ResourceSkus_List, Usage_List, Operations_Get,
    VirtualMachines_CreateOrUpdate | _Get | _Delete | _List | _ListAll | _ListByLocation,
    VirtualMachineScaleSets_CreateOrUpdate | _Get | _Delete | _List, VirtualMachineScaleSetVMs_List

Besides the shared ``/_mock/*`` control API, two Azure-only controls::

    POST /_mock/azure/quota {"region": "eastus", "name": "standardNDSH100v5Family", "limit": 0}
    POST /_mock/azure/async {"enabled": true}   # PUT/DELETE answer 201/202 + Azure-AsyncOperation
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from mockclouds.azure import responses as r
from mockclouds.azure.backend import AzureBackend
from mockclouds.azure.models import ArmError
from mockclouds.control import handle_control
from mockclouds.launcher import MOCK_SECRETS
from mockclouds.requestlog import caller_of_request
from mockclouds.serving import RunningServer, serve_in_thread

_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_RG = _SUB + r"/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Compute"
_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p + r"\Z", re.IGNORECASE), name) for p, name in (
        (_SUB + r"/providers/Microsoft\.Compute/skus", "skus"),
        (_SUB + r"/providers/Microsoft\.Compute/locations/(?P<loc>[^/]+)/usages", "usages"),
        (_SUB + r"/providers/Microsoft\.Compute/locations/(?P<loc>[^/]+)/operations/(?P<op>[^/]+)", "operation"),
        (_SUB + r"/providers/Microsoft\.Compute/virtualMachines", "vms_all"),
        (_SUB + r"/providers/Microsoft\.Compute/locations/(?P<loc>[^/]+)/virtualMachines", "vms_at"),
        (_RG + r"/virtualMachines", "vms"),
        (_RG + r"/virtualMachines/(?P<name>[^/]+)", "vm"),
        (_RG + r"/virtualMachineScaleSets", "scale_sets"),
        (_RG + r"/virtualMachineScaleSets/(?P<name>[^/]+)", "scale_set"),
        (_RG + r"/virtualMachineScaleSets/(?P<name>[^/]+)/virtualMachines", "scale_set_vms"),
    )
]
_LOCATION_FILTER = re.compile(r"location\s+eq\s+'([^']+)'", re.IGNORECASE)
_SCALE_SET_FILTER = re.compile(r"'virtualMachineScaleSet/id'\s+eq\s+'([^']+)'", re.IGNORECASE)


class AzureApp:
    """The WSGI application: one request -> auth -> fault check -> handler -> ARM JSON."""

    def __init__(self, backend: AzureBackend) -> None:
        self.backend = backend

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        with self.backend.requests.serving(caller_of_request(request.headers)):
            resp = self.dispatch(request)
        return resp(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        control = self._azure_control(request) or handle_control(request, self.backend)
        if control is not None:
            return control
        try:
            self._authenticate(request)
            if not request.args.get("api-version"):
                raise ArmError(400, "MissingApiVersionParameter",
                               "The api-version query parameter (?api-version=) is required for all requests.")
            self.backend.settle_due()
            for pattern, name in _ROUTES:
                m = pattern.match(request.path)
                if m:
                    return getattr(self, f"_{name}")(request, **m.groupdict())
            raise ArmError(404, "InvalidResourceType", f"No route for {request.method} {request.path}.")
        except ArmError as e:
            return r.error_response(e)

    # -- cross-cutting ---------------------------------------------------------------------------
    def _authenticate(self, request: Request) -> None:
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {self.backend.token}":
            raise ArmError(401, "InvalidAuthenticationToken" if auth else "AuthenticationFailed",
                           "The access token is invalid." if auth else
                           "Authentication failed. The 'Authorization' header is missing.",
                           {"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/'
                            'common", error="invalid_token"'})

    def _faults(self, operation: str, region: str | None) -> None:
        hit = self.backend.faults.check(operation, region)
        if hit is None:
            return
        if hit.kind == "throttle":
            raise ArmError(hit.status, "TooManyRequests",
                           f"The request is being throttled: {hit.message}.",
                           {"Retry-After": f"{hit.retry_after:g}"})
        if hit.kind == "outage":
            raise ArmError(hit.status, "ServiceUnavailable",
                           f"The service is temporarily unavailable in region '{region or 'global'}': "
                           f"{hit.message}.")
        raise ArmError(hit.status, hit.code or "InjectedError", hit.message)

    def _async_headers(self, request: Request, sub: str, location: str, op_id: str) -> dict[str, str]:
        url = (f"{request.host_url}subscriptions/{sub}/providers/Microsoft.Compute/locations/{location}"
               f"/operations/{op_id}?api-version={request.args['api-version']}")
        return {"Azure-AsyncOperation": url, "Location": url}

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.get_data(as_text=True) or "{}")
        except json.JSONDecodeError as e:
            raise ArmError(400, "InvalidRequestContent", f"The request content was invalid: {e}.") from None
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
        return body

    def _azure_control(self, request: Request) -> Response | None:
        if not request.path.startswith("/_mock/azure/") or request.method != "POST":
            return None
        body = request.get_json(silent=True) or {}
        what = request.path.removeprefix("/_mock/azure/").strip("/")
        if what == "async":
            self.backend.async_mode = bool(body.get("enabled", True))
            return r.json_response({"async": self.backend.async_mode})
        if what == "quota":
            try:
                self.backend.set_quota(str(body["region"]), str(body["name"]), float(body["limit"]))
            except (KeyError, TypeError, ValueError):
                return r.json_response({"error": "region, name and a numeric limit are required"}, 400)
            return r.json_response({"ok": True})
        return r.json_response({"error": f"no such control endpoint: {request.path}"}, 404)

    # -- catalog and quota ----------------------------------------------------------------------
    def _skus(self, request: Request, sub: str) -> Response:
        # The resource-SKU API is global: a region outage shows up as a Location restriction, not a 503.
        self._faults("ResourceSkus_List", None)
        m = _LOCATION_FILTER.search(request.args.get("$filter", ""))
        return r.json_response({"value": [r.sku_json(v) for v in self.backend.skus(m.group(1) if m else None)]})

    def _usages(self, request: Request, sub: str, loc: str) -> Response:
        self._faults("Usage_List", loc)
        self.backend.check_location(loc)
        return r.json_response(r.usages_json(self.backend.usages(loc)))

    def _operation(self, request: Request, sub: str, loc: str, op: str) -> Response:
        self._faults("Operations_Get", loc)
        return r.json_response(r.operation_json(self.backend.poll_operation(op)))

    # -- virtual machines -----------------------------------------------------------------------
    def _vms_all(self, request: Request, sub: str) -> Response:
        if request.method != "GET":
            raise ArmError(405, "MethodNotAllowed", f"{request.method} is not supported here.")
        self._faults("VirtualMachines_ListAll", None)
        expand = request.args.get("$expand", "").lower() == "instanceview"
        return r.json_response({"value": [r.vm_json(vm, expand) for vm in self.backend.list_vms(sub, None)]})

    def _vms_at(self, request: Request, sub: str, loc: str) -> Response:
        # ARM's ListByLocation: the subscription's VMs in one region, without instance views ($expand is
        # not an option there); regional, so a fault in that region fails it.
        if request.method != "GET":
            raise ArmError(405, "MethodNotAllowed", f"{request.method} is not supported here.")
        self._faults("VirtualMachines_ListByLocation", loc)
        self.backend.check_location(loc)
        vms = [vm for vm in self.backend.list_vms(sub, None) if vm.location.lower() == loc.lower()]
        return r.json_response({"value": [r.vm_json(vm) for vm in vms]})

    def _vms(self, request: Request, sub: str, rg: str) -> Response:
        if request.method != "GET":
            raise ArmError(405, "MethodNotAllowed", f"{request.method} is not supported here.")
        self._faults("VirtualMachines_List", None)
        m = _SCALE_SET_FILTER.search(request.args.get("$filter", ""))
        expand = request.args.get("$expand", "").lower() == "instanceview"
        vms = self.backend.list_vms(sub, rg, m.group(1) if m else "")
        return r.json_response({"value": [r.vm_json(vm, expand) for vm in vms]})

    def _vm(self, request: Request, sub: str, rg: str, name: str) -> Response:
        b = self.backend
        if request.method == "PUT":
            body = self._body(request)
            self._faults("VirtualMachines_CreateOrUpdate", str(body.get("location") or "") or None)
            created, vm, op = b.put_vm(sub, rg, name, body)
            headers = self._async_headers(request, sub, vm.location, op.id) if op else {}
            return r.json_response(r.vm_json(vm), 201 if created else 200, headers)
        existing = b.find_vm(sub, rg, name)
        region = existing.location if existing else None
        if request.method == "GET":
            self._faults("VirtualMachines_Get", region)
            expand = request.args.get("$expand", "").lower() == "instanceview"
            return r.json_response(r.vm_json(b.get_vm(sub, rg, name), expand))
        if request.method == "DELETE":
            self._faults("VirtualMachines_Delete", region)
            op = b.delete_vm(sub, rg, name)
            if op is not None:
                return r.json_response(None, 202, self._async_headers(request, sub, op.location, op.id))
            return Response(status=200 if existing else 204)
        raise ArmError(405, "MethodNotAllowed", f"{request.method} is not supported here.")

    # -- Flexible scale sets ----------------------------------------------------------------------
    def _scale_sets(self, request: Request, sub: str, rg: str) -> Response:
        self._faults("VirtualMachineScaleSets_List", None)
        return r.json_response({"value": [r.scale_set_json(s) for s in self.backend.list_scale_sets(sub, rg)]})

    def _scale_set(self, request: Request, sub: str, rg: str, name: str) -> Response:
        b = self.backend
        if request.method == "PUT":
            body = self._body(request)
            self._faults("VirtualMachineScaleSets_CreateOrUpdate", str(body.get("location") or "") or None)
            created, ss, op = b.put_scale_set(sub, rg, name, body)
            headers = self._async_headers(request, sub, ss.location, op.id) if op else {}
            return r.json_response(r.scale_set_json(ss), 201 if created else 200, headers)
        existing = b.scale_sets.get((sub.lower(), rg.lower(), name.lower()))
        region = existing.location if existing else None
        if request.method == "GET":
            self._faults("VirtualMachineScaleSets_Get", region)
            return r.json_response(r.scale_set_json(b.get_scale_set(sub, rg, name)))
        if request.method == "DELETE":
            self._faults("VirtualMachineScaleSets_Delete", region)
            op = b.delete_scale_set(sub, rg, name)
            if op is not None:
                return r.json_response(None, 202, self._async_headers(request, sub, op.location, op.id))
            return Response(status=200 if existing else 204)
        raise ArmError(405, "MethodNotAllowed", f"{request.method} is not supported here.")

    def _scale_set_vms(self, request: Request, sub: str, rg: str, name: str) -> Response:
        ss = self.backend.get_scale_set(sub, rg, name)
        self._faults("VirtualMachineScaleSetVMs_List", ss.location)
        rows = []
        for i, vm in enumerate(self.backend.list_vms(sub, rg, ss.id)):
            rows.append({**r.vm_json(vm), "instanceId": str(i)})
        return r.json_response({"value": rows})


def start(host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    from mockclouds.kubernetes.regional import mount

    backend = AzureBackend(MOCK_SECRETS["azure"]["token"])
    wsgi = mount("azure", AzureApp(backend), backend, backend.catalog, backend.faults)   # + /_k8s/<region>/
    return serve_in_thread("azure", wsgi, backend, host, port)
