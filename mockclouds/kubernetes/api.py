"""HTTP routing of the fake apiserver: auth, faults, discovery, and the REST verbs on resources.

Fault operations are named ``"<verb> <resource>"`` as in the Kubernetes audit log, e.g.
``"create nodepools"``, ``"list nodes"``, ``"patch nodepools/status"``; discovery and /version
are ``"get discovery"`` and ``"get version"``. A fault without an operation hits every call.
"""

from __future__ import annotations

import base64
import hmac
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from werkzeug.wrappers import Request, Response

from mockclouds.control import MockBackend, handle_control
from mockclouds.kubernetes import openapi, render
from mockclouds.kubernetes.cluster import Cluster
from mockclouds.kubernetes.controls import finish_request
from mockclouds.kubernetes.errors import ApiError, bad_request
from mockclouds.kubernetes.patches import json_patch, merge_patch, strip_directives
from mockclouds.kubernetes.resources import (
    PODS,
    ResourceType,
    api_group,
    api_group_list,
    api_resource_list,
    api_versions,
    lookup,
    version_info,
)
from mockclouds.kubernetes.selectors import (
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from mockclouds.kubernetes.store import Obj
from mockclouds.requestlog import RequestLog, caller_of_request, split_token

DEFAULT_WATCH_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class Target:
    rt: ResourceType
    namespace: str            # "" for cluster-scoped kinds or a cross-namespace list
    name: str
    subresource: str


def _accepts_plain_json(accept: str) -> bool:
    """True unless every offered media type is one we cannot produce (aggregated discovery, protobuf)."""
    if not accept.strip():
        return True
    for part in accept.split(","):
        base, *params = [p.strip() for p in part.split(";")]
        if base in ("application/json", "*/*", "application/*") and not any(
                p.startswith("g=apidiscovery") for p in params):
            return True
    return False


def _wants_table(accept: str) -> bool:
    return any("as=Table" in part for part in accept.split(","))


def _parse_target(path: str) -> Target | None:
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        gv, rest = "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    ns = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        ns, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    rt = lookup(gv, rest[0])
    if rt is None or (ns and not rt.namespaced):
        return None
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub and not ((sub == "status" and rt.status_subresource) or (sub == "log" and rt is PODS)):
        return None
    return Target(rt, ns, name, sub)


class KubeApi:
    """The WSGI application."""

    def __init__(self, backend: Cluster, token: str, control: MockBackend | None = None,
                 clusters: list[dict[str, str]] | None = None, requests: RequestLog | None = None) -> None:
        """``control``: the backend answering ``/_mock/*`` (None when mounted inside another mock that
        does); ``clusters``: what ``GET /_mock/clusters`` lists, with ``{server}`` for this server's URL."""
        self.backend = backend
        self.token = token
        self.control = control
        self.clusters = clusters or []
        self.requests = requests     # the cloud's request log (CoreWeave's API); None for workload clusters

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        req = Request(environ)
        if self.requests is None:
            return self.handle(req)(environ, start_response)
        with self.requests.serving(caller_of_request(req.headers)):
            resp = self.handle(req)
        return resp(environ, start_response)

    # -- entry -----------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        if self.control is not None and req.path.rstrip("/") == "/_mock/clusters":
            base = req.host_url.rstrip("/")
            return render.json_response({"clusters": [{**c, "server": c["server"].format(server=base)}
                                                      for c in self.clusters]})
        if self.control is not None and req.path.rstrip("/") == "/_mock/pods/finish" and req.method == "POST":
            body = req.get_json(silent=True)
            return finish_request(body if isinstance(body, dict) else {}, self.backend)
        control = handle_control(req, self.control) if self.control is not None else None
        if control is not None:
            return control
        if not self._authorized(req):
            return render.error_response(ApiError(401, "Unauthorized", "Unauthorized"))
        try:
            return self._route(req)
        except ApiError as e:
            return render.error_response(e)

    def _authorized(self, req: Request) -> bool:
        scheme, _, token = req.headers.get("Authorization", "").partition(" ")
        # The token alone, or under a caller's name (``<token>~<name>``: the same account, a named identity).
        presented = split_token(token.strip())[0]
        return scheme.lower() == "bearer" and hmac.compare_digest(presented.encode(), self.token.encode())

    def _fault(self, operation: str, region: str | None) -> None:
        hit = self.backend.faults.check(operation, region)
        if hit is None:
            return
        if hit.kind == "throttle":
            secs = hit.retry_after
            header = str(int(secs)) if float(secs).is_integer() else f"{secs:g}"
            raise ApiError(hit.status, "TooManyRequests", hit.message or "Too many requests, please try again later.",
                           {"retryAfterSeconds": math.ceil(secs)}, {"Retry-After": header})
        reason = hit.code or ("ServiceUnavailable" if hit.status == 503 else "InternalError")
        raise ApiError(hit.status, reason, hit.message)

    # -- routing ---------------------------------------------------------------------------------
    def _route(self, req: Request) -> Response:
        path = req.path.rstrip("/") or "/"
        if req.method == "GET":
            doc = self._discovery(req, path)
            if doc is not None:
                return doc
        target = _parse_target(path)
        if target is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        verb = self._verb(req, target)
        if target.subresource == "log" and verb != "get":
            raise ApiError(405, "MethodNotAllowed", f"{req.method} is not supported on {req.path}")
        body = self._body(req) if req.method in ("POST", "PUT", "PATCH", "DELETE") else None
        rt_name = f"{target.rt.plural}/{target.subresource}" if target.subresource else target.rt.plural
        self._fault(f"{verb} {rt_name}", self.backend.region_of(target.rt, target.namespace, target.name, body))
        if req.args.get("dryRun"):
            raise bad_request("dryRun is not supported by this fake apiserver")
        if target.subresource == "log":
            return self._log(req, target)
        return getattr(self, f"_{verb}")(req, target, body)

    def _discovery(self, req: Request, path: str) -> Response | None:
        accept = req.headers.get("Accept", "")
        doc: Any = None
        if path == "/version":
            self._fault("get version", None)
            return render.json_response(version_info())
        if path in ("/healthz", "/readyz", "/livez"):
            return Response("ok", mimetype="text/plain")
        if path == "/openapi/v2":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if path.startswith("/openapi/v3"):
            doc = openapi.index() if path == "/openapi/v3" else openapi.spec(path[len("/openapi/v3/"):])
            if doc is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return render.json_response(doc)
        segs = [p for p in path.split("/") if p]
        if path == "/api":
            doc = api_versions(req.host)
        elif path == "/apis":
            doc = api_group_list()
        elif path == "/api/v1":
            doc = api_resource_list("v1")
        elif segs[:1] == ["apis"] and len(segs) == 2:
            doc = api_group(segs[1])
        elif segs[:1] == ["apis"] and len(segs) == 3:
            doc = api_resource_list(f"{segs[1]}/{segs[2]}")
        else:
            return None                     # not a discovery path
        if doc is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        self._fault("get discovery", None)
        if not _accepts_plain_json(accept):
            raise ApiError(406, "NotAcceptable", f"only application/json is served here, not {accept}")
        return render.json_response(doc)

    @staticmethod
    def _verb(req: Request, t: Target) -> str:
        m = req.method
        if m == "GET":
            if not t.name:
                return "watch" if req.args.get("watch", "").lower() in ("true", "1") else "list"
            return "get"
        if m == "POST" and not t.name:
            if t.rt.namespaced and not t.namespace:
                raise ApiError(405, "MethodNotAllowed", "create needs a namespace in the path")
            return "create"
        if t.name and m in ("PUT", "PATCH", "DELETE"):
            return {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}[m]
        if m == "DELETE" and not t.name:
            return "deletecollection"
        raise ApiError(405, "MethodNotAllowed", f"{m} is not supported on {req.path}")

    @staticmethod
    def _body(req: Request) -> Any:
        raw = req.get_data(cache=True)
        ctype = (req.mimetype or "").lower()
        try:
            if ctype == "application/apply-patch+yaml":
                return yaml.safe_load(raw) if raw else {}
            return json.loads(raw) if raw else None
        except (ValueError, yaml.YAMLError) as e:
            raise bad_request(f"the body of the request could not be decoded as {ctype or 'JSON'}: {e}") from None

    # -- verbs -----------------------------------------------------------------------------------
    def _matcher(self, req: Request, t: Target) -> Callable[[Obj], bool]:
        labels = parse_label_selector(req.args.get("labelSelector"))
        fields = parse_field_selector(req.args.get("fieldSelector"), t.rt.kind)
        return lambda o: labels_match(labels, o["metadata"].get("labels")) and fields_match(fields, o)

    def _get(self, req: Request, t: Target, _body: Any) -> Response:
        obj = self.backend.get(t.rt, t.namespace, t.name)
        if _wants_table(req.headers.get("Accept", "")):
            return render.json_response(render.table(t.rt, [obj], int(obj["metadata"]["resourceVersion"]),
                                                     req.args.get("includeObject", "PartialObjectMetadata")))
        return render.json_response(obj)

    def _list(self, req: Request, t: Target, _body: Any) -> Response:
        items, rv = self.backend.list(t.rt, t.namespace or None, self._matcher(req, t))
        start = 0
        if req.args.get("continue"):
            try:
                start = int(base64.urlsafe_b64decode(req.args["continue"].encode()).decode())
            except ValueError:
                raise ApiError(410, "Expired", "the provided continue parameter is too old or malformed") from None
        limit = req.args.get("limit", type=int) or 0
        page = items[start:start + limit] if limit > 0 else items[start:]
        end = start + len(page)
        cont = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else ""
        if _wants_table(req.headers.get("Accept", "")):
            doc = render.table(t.rt, page, rv, req.args.get("includeObject", "PartialObjectMetadata"))
            if cont:
                doc["metadata"]["continue"] = cont
            return render.json_response(doc)
        return render.json_response(render.object_list(t.rt, page, rv, cont, len(items) - end))

    def _watch(self, req: Request, t: Target, _body: Any) -> Response:
        match = self._matcher(req, t)
        rv_arg = req.args.get("resourceVersion", "")
        try:
            since = int(rv_arg) if rv_arg else None
        except ValueError:
            raise bad_request(f"invalid resourceVersion {rv_arg!r}") from None
        timeout = req.args.get("timeoutSeconds", type=float) or DEFAULT_WATCH_TIMEOUT_S
        events = self.backend.watch(t.rt, t.namespace or None, match, since, timeout)

        def stream() -> Iterator[bytes]:
            yield b""        # the headers go out now, as from a real apiserver, not with the first event
            try:
                for type_, obj in events:
                    yield render.watch_line(type_, obj)
            except ApiError as e:     # as the apiserver does: 200, then an ERROR event (410 Expired)
                yield render.watch_line("ERROR", render.status_object(e))

        return Response(stream(), mimetype="application/json", direct_passthrough=True)

    def _create(self, req: Request, t: Target, body: Any) -> Response:
        return render.json_response(self.backend.create(t.rt, t.namespace, body), 201)

    def _update(self, req: Request, t: Target, body: Any) -> Response:
        return render.json_response(self.backend.replace(t.rt, t.namespace, t.name, body,
                                                         status=t.subresource == "status"))

    def _patch(self, req: Request, t: Target, body: Any) -> Response:
        ctype = (req.mimetype or "").lower()
        apply_fn: Callable[[Obj], Obj]
        if ctype == "application/merge-patch+json":
            apply_fn = lambda cur: merge_patch(cur, body)  # noqa: E731
        elif ctype == "application/strategic-merge-patch+json":
            apply_fn = lambda cur: merge_patch(cur, strip_directives(body))  # noqa: E731
        elif ctype == "application/json-patch+json":
            apply_fn = lambda cur: json_patch(cur, body)  # noqa: E731
        elif ctype == "application/apply-patch+yaml":
            # Server-side apply without field ownership: the applied configuration is merged in.
            if not req.args.get("fieldManager"):
                raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: "
                               "Required value: is required for apply patch")
            if not isinstance(body, dict):
                raise bad_request("apply patch: the body must be an object")
            apply_fn = lambda cur: merge_patch(cur, body)  # noqa: E731
        else:
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                           f"accepted media types include: application/json-patch+json, application/merge-patch+json, "
                           f"application/apply-patch+yaml (got {ctype!r})")
        if ctype != "application/json-patch+json" and not isinstance(body, dict):
            raise bad_request("the patch must be a JSON object")
        obj, created = self.backend.patch(t.rt, t.namespace, t.name, apply_fn, status=t.subresource == "status",
                                          create_missing=ctype == "application/apply-patch+yaml")
        return render.json_response(obj, 201 if created else 200)

    @staticmethod
    def _propagation(req: Request, body: Any) -> str | None:
        if req.args.get("propagationPolicy"):
            return req.args["propagationPolicy"]
        if isinstance(body, dict) and body.get("propagationPolicy"):
            return str(body["propagationPolicy"])
        if req.args.get("orphanDependents", "").lower() == "true" or (
                isinstance(body, dict) and body.get("orphanDependents") is True):
            return "Orphan"
        return None

    def _delete(self, req: Request, t: Target, body: Any) -> Response:
        obj = self.backend.delete(t.rt, t.namespace, t.name, self._propagation(req, body))
        # Pods are deleted gracefully and answer with the object; immediate deletes answer a Status.
        return render.json_response(obj if t.rt is PODS else render.success_status(t.rt, obj))

    def _deletecollection(self, req: Request, t: Target, body: Any) -> Response:
        gone = self.backend.delete_collection(t.rt, t.namespace or None, self._matcher(req, t),
                                              self._propagation(req, body))
        return render.json_response(render.object_list(t.rt, gone, self.backend.store.resource_version()))

    def _log(self, req: Request, t: Target) -> Response:
        pod, container, lines = self.backend.pod_logs(t.namespace, t.name, req.args.get("container"))
        total = len(lines)
        tail = req.args.get("tailLines", type=int)
        if tail is not None and tail >= 0:
            lines = lines[len(lines) - tail:] if tail else []
        if req.args.get("follow", "").lower() in ("true", "1"):
            return Response(self._follow(t, container, total, lines), mimetype="text/plain",
                            direct_passthrough=True)
        text = "".join(line + "\n" for line in lines)
        limit = req.args.get("limitBytes", type=int)
        if limit is not None and limit > 0:
            text = text[:limit]
        return Response(text, mimetype="text/plain")

    def _follow(self, t: Target, container: str, seen: int, first: list[str]) -> Iterator[bytes]:
        """Lines as they appear until the pod ends or is deleted (a simulated container prints at its start
        and at its exit, so this mostly waits for the exit)."""
        for line in first:
            yield (line + "\n").encode()
        deadline = time.monotonic() + DEFAULT_WATCH_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                pod, _, lines = self.backend.pod_logs(t.namespace, t.name, container)
            except ApiError:
                return
            for line in lines[seen:]:
                yield (line + "\n").encode()
            seen = len(lines)
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return
            time.sleep(0.1)
