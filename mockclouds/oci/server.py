"""A small fake of OCI (Core Services compute, Identity availability domains, Limits) over HTTP for the `oci` SDK.

Every region has its own endpoint, as in OCI (``https://iaas.{region}.oraclecloud.com``): here the region is
the first path segment, so the SDK is pointed at ``http://HOST:PORT/{region}``. Requests must carry an OCI
``Signature`` Authorization header whose keyId names the mock's tenancy, user and key fingerprint; the
signature itself is not verified. Fault ``operation`` names are OCI's operation names::

    ListAvailabilityDomains, ListShapes, ListImages, ListSubnets, CreateComputeCapacityReport, ListLimitValues, GetResourceAvailability,
    LaunchInstance, GetInstance, ListInstances, TerminateInstance,
    CreateComputeCapacityReservation, GetComputeCapacityReservation, ListComputeCapacityReservations,
    DeleteComputeCapacityReservation, CreateInstanceConfiguration, GetInstanceConfiguration,
    ListInstanceConfigurations, DeleteInstanceConfiguration, CreateClusterNetwork, GetClusterNetwork,
    ListClusterNetworks, UpdateClusterNetwork, TerminateClusterNetwork, ListClusterNetworkInstances

Besides the shared ``/_mock/*`` control API, one OCI-only control::

    POST /_mock/oci/limit {"zone": "US-ASHBURN-AD-1", "name": "gpu-h100-count", "value": 0}
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from mockclouds.control import handle_control
from mockclouds.oci import wire as w
from mockclouds.oci.backend import PROVIDER, OciBackend
from mockclouds.oci.keys import key_id, parse_key_id
from mockclouds.oci.models import OciError, ad_name, now, zone_of
from mockclouds.requestlog import caller_of_request
from mockclouds.serving import RunningServer, serve_in_thread

_CORE, _LIMITS = r"/(?P<region>[a-z0-9-]+)/20160918", r"/(?P<region>[a-z0-9-]+)/20190729"
_ROUTES: list[tuple[re.Pattern[str], str]] = [(re.compile(p + r"/?\Z"), name) for p, name in (
    (_CORE + r"/availabilityDomains", "ads"),
    (_CORE + r"/shapes", "shapes"),
    (_CORE + r"/computeCapacityReports", "capacity_report"),
    (_CORE + r"/images", "images"),
    (_CORE + r"/subnets", "subnets"),
    (_CORE + r"/instances", "instances"),
    (_CORE + r"/instances/(?P<id>[^/]+)", "instance"),
    (_CORE + r"/computeCapacityReservations", "reservations"),
    (_CORE + r"/computeCapacityReservations/(?P<id>[^/]+)", "reservation"),
    (_CORE + r"/instanceConfigurations", "configs"),
    (_CORE + r"/instanceConfigurations/(?P<id>[^/]+)", "config"),
    (_CORE + r"/clusterNetworks", "networks"),
    (_CORE + r"/clusterNetworks/(?P<id>[^/]+)", "network"),
    (_CORE + r"/clusterNetworks/(?P<id>[^/]+)/instances", "network_instances"),
    (_LIMITS + r"/limitValues", "limit_values"),
    (_LIMITS + r"/services/(?P<service>[^/]+)/limits/(?P<limit>[^/]+)/resourceAvailability", "availability"),
)]


class OciApp:
    """The WSGI application: one request -> auth -> fault check -> handler -> OCI JSON."""

    def __init__(self, backend: OciBackend) -> None:
        self.backend = backend

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        with self.backend.requests.serving(caller_of_request(request.headers)):
            resp = self.dispatch(request)
        return resp(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        control = self._oci_control(request) or handle_control(request, self.backend)
        if control is not None:
            return control
        try:
            for pattern, name in _ROUTES:
                m = pattern.match(request.path)
                if m:
                    self._authenticate(request)
                    args = m.groupdict()
                    self.backend.check_region(args["region"])
                    handler: Callable[..., Response] = getattr(self, f"_{name}")
                    return handler(request, **args)
            raise OciError(404, "NotAuthorizedOrNotFound", f"No route for {request.method} {request.path}.")
        except OciError as e:
            return w.error_response(e)

    # -- cross-cutting ---------------------------------------------------------------------------
    @staticmethod
    def _authenticate(request: Request) -> None:
        got = parse_key_id(request.headers.get("Authorization", ""))
        if got != key_id():
            raise OciError(401, "NotAuthenticated", "The required information to complete authentication "
                           "was not provided or was incorrect.")

    def _faults(self, operation: str, region: str | None) -> None:
        hit = self.backend.faults.check(operation, region)
        if hit is None:
            return
        if hit.kind == "throttle":
            raise OciError(hit.status, "TooManyRequests", f"Too many requests for the user: {hit.message}",
                           {"retry-after": f"{hit.retry_after:g}"})
        if hit.kind == "outage":
            raise OciError(hit.status, "ServiceUnavailable",
                           f"The service is currently unavailable in {region or 'this region'}: {hit.message}")
        raise OciError(hit.status, hit.code or "InternalError", hit.message)

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.get_data(as_text=True) or "{}")
        except json.JSONDecodeError as e:
            raise OciError(400, "InvalidParameter", f"The request body is not valid JSON: {e}.") from None
        if not isinstance(body, dict):
            raise OciError(400, "InvalidParameter", "The request body must be a JSON object.")
        return body

    @staticmethod
    def _compartment(request: Request) -> str:
        c = request.args.get("compartmentId")
        if not c:
            raise OciError(400, "MissingParameter", "compartmentId is required.")
        return c

    @staticmethod
    def _method(request: Request, *allowed: str) -> None:
        if request.method not in allowed:
            raise OciError(405, "NotAllowed", f"{request.method} is not allowed on {request.path}.")

    def _oci_control(self, request: Request) -> Response | None:
        if not request.path.startswith("/_mock/oci/") or request.method != "POST":
            return None
        body = request.get_json(silent=True) or {}
        if request.path.rstrip("/") == "/_mock/oci/limit":
            try:
                self.backend.set_limit(str(body["zone"]), str(body["name"]), float(body["value"]))
            except (KeyError, TypeError, ValueError):
                return w.json_response({"error": "zone, name and a numeric value are required"}, 400)
            return w.json_response({"ok": True})
        return w.json_response({"error": f"no such control endpoint: {request.path}"}, 404)

    def _list(self, request: Request, items: list[Any]) -> Response:
        chunk, headers = w.page(items, request.args.get("page"), request.args.get("limit"))
        return w.json_response(chunk, 200, headers)

    # -- identity, shapes, capacity, limits --------------------------------------------------------
    def _ads(self, request: Request, region: str) -> Response:
        self._faults("ListAvailabilityDomains", region)
        c = self._compartment(request)
        return w.json_response([{"name": ad_name(z), "id": f"ocid1.availabilitydomain.oc1..{z.lower()}",
                                 "compartmentId": c} for z in self.backend.zones(region)])

    def _shapes(self, request: Request, region: str) -> Response:
        self._faults("ListShapes", region)
        self._compartment(request)
        ad = request.args.get("availabilityDomain")
        cat = self.backend.catalog
        rows = []
        for _zone, s in self.backend.shapes(region, zone_of(ad) if ad else None):
            it = cat.instance_type(PROVIDER, s)
            rows.append({"shape": s, "gpus": it.gpus, "gpuDescription": f"NVIDIA {it.gpu_model}",
                         "ocpus": float(it.vcpus // 2 if it.gpu_model not in ("GB200", "GB300") else it.vcpus),
                         "memoryInGBs": float(it.memory_gib), "networkingBandwidthInGbps": float(it.fabric_gbps),
                         "rdmaPorts": 16 if it.fabric == "rdma" else 0, "rdmaBandwidthInGbps": it.fabric_gbps,
                         "isBilledForStoppedInstance": False, "billingType": "PAID"})
        return self._list(request, list({r["shape"]: r for r in rows}.values()))

    def _images(self, request: Request, region: str) -> Response:
        self._faults("ListImages", region)
        self._compartment(request)
        image = {"id": f"ocid1.image.oc1.{region}.awangpuubuntu2204", "compartmentId": None,
                 "displayName": "Canonical-Ubuntu-22.04-GPU-2026.10.31-0", "operatingSystem": "Canonical Ubuntu",
                 "operatingSystemVersion": "22.04", "lifecycleState": "AVAILABLE", "createImageAllowed": True,
                 "timeCreated": "2026-10-31T00:00:00.000Z"}
        return self._list(request, [image])

    def _subnets(self, request: Request, region: str) -> Response:
        # The mock has no virtual networks (the local engine keeps VCNs and subnets in state only).
        self._faults("ListSubnets", region)
        self._compartment(request)
        return self._list(request, [])

    def _capacity_report(self, request: Request, region: str) -> Response:
        self._method(request, "POST")
        self._faults("CreateComputeCapacityReport", region)
        body = self._body(request)
        ad = str(body.get("availabilityDomain") or "")
        wanted = [str(s.get("instanceShape") or "") for s in body.get("shapeAvailabilities") or []]
        rows = [{"instanceShape": s, "faultDomain": None, "availableCount": n, "availabilityStatus": status}
                for s, n, status in self.backend.capacity_report(region, zone_of(ad), wanted)]
        return w.json_response({"compartmentId": body.get("compartmentId"), "availabilityDomain": ad,
                                "shapeAvailabilities": rows, "timeCreated": w.ts(now())})

    def _limit_values(self, request: Request, region: str) -> Response:
        self._faults("ListLimitValues", region)
        self._compartment(request)
        if request.args.get("serviceName") != "compute":
            return self._list(request, [])
        ad, name = request.args.get("availabilityDomain"), request.args.get("name")
        rows = [{"name": n, "scopeType": "AD", "availabilityDomain": ad_name(z), "value": int(v)}
                for n, z, v in self.backend.limits(region)
                if (ad is None or zone_of(ad) == z) and (name is None or name == n)]
        return self._list(request, rows)

    def _availability(self, request: Request, region: str, service: str, limit: str) -> Response:
        self._faults("GetResourceAvailability", region)
        self._compartment(request)
        ad = request.args.get("availabilityDomain")
        if service != "compute" or not ad:
            raise OciError(400, "InvalidParameter", "availabilityDomain is required for AD-scoped compute limits.")
        zone = zone_of(ad)
        used, value = self.backend.used_gpus(zone, limit), self.backend.limit_of(zone, limit)
        return w.json_response({"used": int(used), "available": int(max(0.0, value - used)),
                                "effectiveQuotaValue": None, "fractionalUsage": None, "fractionalAvailability": None})

    # -- instances -------------------------------------------------------------------------------
    def _instances(self, request: Request, region: str) -> Response:
        b = self.backend
        if request.method == "POST":
            self._faults("LaunchInstance", region)
            inst = b.launch(region, self._body(request), request.headers.get("opc-retry-token"))
            return w.json_response(w.instance(inst), 200, {"etag": inst.id[-12:]})
        self._method(request, "GET")
        self._faults("ListInstances", region)
        ad = request.args.get("availabilityDomain")
        rows = b.list_instances(region, self._compartment(request), zone_of(ad) if ad else None,
                                request.args.get("lifecycleState"), request.args.get("capacityReservationId"))
        return self._list(request, [w.instance(i) for i in rows])

    def _instance(self, request: Request, region: str, id: str) -> Response:  # noqa: A002 - the route's name
        b = self.backend
        if request.method == "GET":
            self._faults("GetInstance", region)
            return w.json_response(w.instance(b.get_instance(region, id)))
        self._method(request, "DELETE")
        self._faults("TerminateInstance", region)
        b.terminate(region, id)
        return w.json_response(None, 204)

    # -- capacity reservations -------------------------------------------------------------------
    def _reservations(self, request: Request, region: str) -> Response:
        b = self.backend
        if request.method == "POST":
            self._faults("CreateComputeCapacityReservation", region)
            r = b.create_reservation(region, self._body(request), request.headers.get("opc-retry-token"))
            return w.json_response(w.reservation(r, b.reservation_used(r.id)))
        self._method(request, "GET")
        self._faults("ListComputeCapacityReservations", region)
        ad = request.args.get("availabilityDomain")
        rows = b.list_reservations(region, self._compartment(request), zone_of(ad) if ad else None)
        return self._list(request, [w.reservation(r, b.reservation_used(r.id)) for r in rows])

    def _reservation(self, request: Request, region: str, id: str) -> Response:  # noqa: A002
        b = self.backend
        if request.method == "GET":
            self._faults("GetComputeCapacityReservation", region)
            r = b.get_reservation(region, id)
            return w.json_response(w.reservation(r, b.reservation_used(r.id)))
        self._method(request, "DELETE")
        self._faults("DeleteComputeCapacityReservation", region)
        b.delete_reservation(region, id)
        return w.json_response(None, 202)

    # -- instance configurations and cluster networks ----------------------------------------------
    def _configs(self, request: Request, region: str) -> Response:
        b = self.backend
        if request.method == "POST":
            self._faults("CreateInstanceConfiguration", region)
            return w.json_response(w.config(b.create_config(region, self._body(request),
                                                            request.headers.get("opc-retry-token"))))
        self._method(request, "GET")
        self._faults("ListInstanceConfigurations", region)
        return self._list(request, [w.config(c) for c in b.list_configs(region, self._compartment(request))])

    def _config(self, request: Request, region: str, id: str) -> Response:  # noqa: A002
        if request.method == "GET":
            self._faults("GetInstanceConfiguration", region)
            return w.json_response(w.config(self.backend.get_config(id)))
        self._method(request, "DELETE")
        self._faults("DeleteInstanceConfiguration", region)
        self.backend.delete_config(id)
        return w.json_response(None, 204)

    def _networks(self, request: Request, region: str) -> Response:
        b = self.backend
        if request.method == "POST":
            self._faults("CreateClusterNetwork", region)
            n = b.create_network(region, self._body(request), request.headers.get("opc-retry-token"))
            return w.json_response(w.network(n))
        self._method(request, "GET")
        self._faults("ListClusterNetworks", region)
        return self._list(request, [w.network(n) for n in b.list_networks(region, self._compartment(request))])

    def _network(self, request: Request, region: str, id: str) -> Response:  # noqa: A002
        b = self.backend
        if request.method == "GET":
            self._faults("GetClusterNetwork", region)
            return w.json_response(w.network(b.get_network(region, id)))
        if request.method == "PUT":
            self._faults("UpdateClusterNetwork", region)
            pools = self._body(request).get("instancePools") or []
            n = b.get_network(region, id)
            for p in pools if isinstance(pools, list) else []:
                if p.get("id") == n.pool_id and p.get("size") is not None:
                    n = b.resize_network(region, id, int(p["size"]))
            return w.json_response(w.network(n))
        self._method(request, "DELETE")
        self._faults("TerminateClusterNetwork", region)
        b.terminate_network(region, id)
        return w.json_response(None, 204)

    def _network_instances(self, request: Request, region: str, id: str) -> Response:  # noqa: A002
        self._faults("ListClusterNetworkInstances", region)
        self._compartment(request)
        n = self.backend.get_network(region, id)
        return self._list(request, [w.instance_summary(i) for i in self.backend.members(n)])


def start(host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    from mockclouds.kubernetes.regional import mount

    backend = OciBackend()
    # Running instances register as Nodes of their region's cluster, served under /_k8s/<region>/ (as OKE
    # self-managed nodes that joined with bootstrap user-data would); see mockclouds/kubernetes/regional.py.
    wsgi = mount(PROVIDER, OciApp(backend), backend, backend.catalog, backend.faults)
    return serve_in_thread("oci", wsgi, backend, host, port)
