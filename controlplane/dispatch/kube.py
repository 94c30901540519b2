"""One cluster through the official ``kubernetes`` client: create-or-get objects by their deterministic
names, list what Awan owns by label, delete, read pod logs; for a gang's start (gang.py) list its nodes,
resume its suspended Job and ungate its pods. Objects go in and come out as plain dicts (the API's JSON),
so rendering and status reading stay pure. The SDK methods are bound once per cluster in a typed table
(``KindOps``), never looked up by name.

Errors: ``ClusterError`` with ``retryable`` for throttling, 5xx and connection failures; the loop
simply tries again next pass (every step is level-triggered), so there is no retry layer here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import urllib3

from providers.config import ClusterConfig

KINDS = ("Job", "Deployment", "Service")
T = TypeVar("T")


# The SDK calls Awan makes, as typed callables: each Protocol names exactly the parameters passed, so a
# bound SDK method (``BatchV1Api.create_namespaced_job``...) type-checks against it and a wrong one does not.
class _Create(Protocol):
    def __call__(self, namespace: str, body: Any, *, _preload_content: bool = ...,
                 _request_timeout: float | None = ...) -> object: ...


class _List(Protocol):
    def __call__(self, namespace: str, *, label_selector: str | None = ..., _preload_content: bool = ...,
                 _request_timeout: float | None = ...) -> object: ...


class _Delete(Protocol):
    def __call__(self, name: str, namespace: str, *, propagation_policy: str | None = ...,
                 _preload_content: bool = ..., _request_timeout: float | None = ...) -> object: ...


def _raw(resp: object, what: str) -> bytes:
    """The body of a call made with ``_preload_content=False``: the client then returns the urllib3
    response itself, whatever the method's declared model type."""
    if not isinstance(resp, urllib3.BaseHTTPResponse):
        raise ClusterError(f"{what}: unexpected response {type(resp).__name__}")
    return bytes(resp.data)


def _items(resp: object, what: str) -> list[dict[str, Any]]:
    return list(json.loads(_raw(resp, what)).get("items") or [])


@dataclass(frozen=True, slots=True)
class KindOps:
    """The SDK calls of one kind, bound to one cluster's client (no method looked up by name)."""

    list: _List
    delete: _Delete
    create: _Create | None = None     # pods are made by their Job or Deployment, never by Awan


class ClusterError(Exception):
    def __init__(self, message: str, *, status: int = 0, retryable: bool = False) -> None:
        super().__init__(message)
        self.status, self.retryable = status, retryable


@dataclass
class Owned:
    """What a cluster holds of Awan's, as returned by its API."""

    objects: list[dict[str, Any]] = field(default_factory=list)   # Jobs, Deployments, Services
    pods: list[dict[str, Any]] = field(default_factory=list)


class Cluster(Protocol):
    """The operations dispatch needs of a cluster (a fake in unit tests, ``KubeCluster`` for real)."""

    name: str
    namespace: str

    def create(self, obj: dict[str, Any]) -> bool: ...              # True: created, False: already there
    def owned(self, selector: str) -> Owned: ...
    def delete(self, kind: str, name: str) -> None: ...
    def nodes(self, selector: str) -> list[dict[str, Any]]: ...
    def resume(self, job: str) -> None: ...                         # spec.suspend: false
    def ungate(self, pod: dict[str, Any], gate: str, node_selector: dict[str, str]) -> None: ...
    def log(self, pod: str, *, tail_lines: int | None = None) -> str: ...
    def follow(self, pod: str) -> Iterator[bytes]: ...
    def close(self) -> None: ...


def _error(e: BaseException, what: str) -> ClusterError:
    from kubernetes.client.exceptions import ApiException

    if isinstance(e, ApiException):
        status = int(e.status or 0)
        message = ""
        try:
            message = str(json.loads(e.body or "{}").get("message") or "")
        except (ValueError, AttributeError):
            message = str(e.body or "")[:200]
        return ClusterError(f"{what}: HTTP {status}: {message or e.reason}", status=status,
                            retryable=status in (0, 429) or status >= 500)
    return ClusterError(f"{what}: {type(e).__name__}: {e}", retryable=True)


class KubeCluster:
    def __init__(self, cfg: ClusterConfig) -> None:
        from kubernetes import client
        from kubernetes import config as kubeconfig

        c = client.Configuration()
        path = cfg.secret("kubeconfig")
        if path:
            kubeconfig.load_kube_config(  # type: ignore[no-untyped-call]  # unannotated in the SDK
                config_file=path, client_configuration=c)
        if cfg.endpoint:
            c.host = cfg.endpoint.rstrip("/")
        token = cfg.secret("token")
        if token:
            c.api_key = {"authorization": token}
            c.api_key_prefix = {"authorization": "Bearer"}
        if cfg.secret("ca_file"):
            c.ssl_ca_cert = cfg.secret("ca_file")
        c.retries = False
        self.name, self.namespace, self.timeout_s = cfg.name, cfg.namespace, cfg.timeout_s
        self.api = client.ApiClient(c)
        batch, apps = client.BatchV1Api(self.api), client.AppsV1Api(self.api)
        self.core = core = client.CoreV1Api(self.api)
        self.batch = batch
        self.ops: dict[str, KindOps] = {
            "Job": KindOps(batch.list_namespaced_job, batch.delete_namespaced_job, batch.create_namespaced_job),
            "Deployment": KindOps(apps.list_namespaced_deployment, apps.delete_namespaced_deployment,
                                  apps.create_namespaced_deployment),
            "Service": KindOps(core.list_namespaced_service, core.delete_namespaced_service,
                               core.create_namespaced_service),
            # Pods are listed apart and deleted only when their Job or Deployment is gone and a cluster did
            # not cascade (garbage collection is the apiserver's job, but Awan must not leave a pod behind).
            "Pod": KindOps(core.list_namespaced_pod, core.delete_namespaced_pod),
        }

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        try:
            return fn(*args, _request_timeout=self.timeout_s, **kw)
        except Exception as e:
            raise _error(e, f"{self.name}: {what}") from e

    def _ops(self, kind: str) -> KindOps:
        ops = self.ops.get(kind)
        if ops is None:
            raise ClusterError(f"{self.name}: kind {kind!r} is not one Awan manages")
        return ops

    def create(self, obj: dict[str, Any]) -> bool:
        create = self._ops(obj["kind"]).create
        assert create is not None
        what = f"create {obj['kind']} {obj['metadata']['name']}"
        try:
            self._call(what, create, self.namespace, obj, _preload_content=False)
        except ClusterError as e:
            if e.status == 409:      # already there: created by an earlier pass (or one that was killed)
                return False
            raise
        return True

    def _list(self, kind: str, selector: str) -> list[dict[str, Any]]:
        resp = self._call(f"list {kind}", self._ops(kind).list, self.namespace, label_selector=selector,
                          _preload_content=False)
        return _items(resp, f"{self.name}: list {kind}")

    def owned(self, selector: str) -> Owned:
        out = Owned()
        for kind in KINDS:
            for o in self._list(kind, selector):
                o.setdefault("kind", kind)
                out.objects.append(o)
        out.pods = self._list("Pod", selector)
        return out

    def delete(self, kind: str, name: str) -> None:
        try:
            # Background: the Job's (Deployment's) pods go with it.
            self._call(f"delete {kind} {name}", self._ops(kind).delete, name, self.namespace,
                       propagation_policy="Background", _preload_content=False)
        except ClusterError as e:
            if e.status != 404:
                raise

    def nodes(self, selector: str) -> list[dict[str, Any]]:
        resp = self._call("list nodes", self.core.list_node, label_selector=selector, _preload_content=False)
        return _items(resp, f"{self.name}: list nodes")

    def resume(self, job: str) -> None:
        self._call(f"resume Job {job}", self.batch.patch_namespaced_job, job, self.namespace,
                   {"spec": {"suspend": False}}, _preload_content=False)

    def ungate(self, pod: dict[str, Any], gate: str, node_selector: dict[str, str]) -> None:
        """Narrow a gated pod's nodeSelector and remove ``gate`` in one JSON patch (the scheduling
        directives a gated pod may still change, KEP-3838). ``pod`` is the pod as last listed; a ``test``
        op makes the patch fail (422, tried again next pass) if its gates changed since."""
        name = str(pod["metadata"]["name"])
        spec = pod.get("spec") or {}
        gates = [g for g in spec.get("schedulingGates") or [] if g.get("name") != gate]
        if len(gates) == len(spec.get("schedulingGates") or []):
            return
        patch: list[dict[str, Any]] = []
        if "nodeSelector" not in spec and node_selector:
            patch.append({"op": "add", "path": "/spec/nodeSelector", "value": {}})
        for k, v in sorted(node_selector.items()):
            patch.append({"op": "add", "path": "/spec/nodeSelector/" + k.replace("~", "~0").replace("/", "~1"),
                          "value": v})
        patch.insert(0, {"op": "test", "path": "/spec/schedulingGates", "value": spec.get("schedulingGates")})
        patch.append({"op": "replace", "path": "/spec/schedulingGates", "value": gates} if gates
                     else {"op": "remove", "path": "/spec/schedulingGates"})
        self._call(f"ungate Pod {name}", self.core.patch_namespaced_pod, name, self.namespace, patch,
                   _preload_content=False)

    def log(self, pod: str, *, tail_lines: int | None = None) -> str:
        kw: dict[str, Any] = {"tail_lines": tail_lines} if tail_lines else {}
        resp = self._call(f"log of {pod}", self.core.read_namespaced_pod_log, pod, self.namespace,
                          _preload_content=False, **kw)
        return _raw(resp, f"{self.name}: log of {pod}").decode("utf-8", "replace")

    def follow(self, pod: str) -> Iterator[bytes]:
        try:
            resp = self.core.read_namespaced_pod_log(pod, self.namespace, follow=True, _preload_content=False)
        except Exception as e:
            raise _error(e, f"{self.name}: follow log of {pod}") from e
        if not isinstance(resp, urllib3.BaseHTTPResponse):
            raise ClusterError(f"{self.name}: follow log of {pod}: unexpected response {type(resp).__name__}")
        try:
            yield from resp.stream(4096)
        finally:
            resp.release_conn()

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]  # the SDK leaves this one unannotated
