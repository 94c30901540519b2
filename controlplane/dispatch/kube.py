"""One cluster through the official ``kubernetes`` client: create-or-get objects by their deterministic
names, list what Awan owns by label, delete, read pod logs. Objects go in and come out as plain dicts
(the API's JSON), so rendering and status reading stay pure.

Errors: ``ClusterError`` with ``retryable`` for throttling, 5xx and connection failures; the loop
simply tries again next pass (every step is level-triggered), so there is no retry layer here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from providers.config import ClusterConfig

# kind -> (api class, create method, list method, delete method)
_KINDS: dict[str, tuple[str, str, str, str]] = {
    "Job": ("BatchV1Api", "create_namespaced_job", "list_namespaced_job", "delete_namespaced_job"),
    "Deployment": ("AppsV1Api", "create_namespaced_deployment", "list_namespaced_deployment",
                   "delete_namespaced_deployment"),
    "Service": ("CoreV1Api", "create_namespaced_service", "list_namespaced_service", "delete_namespaced_service"),
}
KINDS = tuple(_KINDS)
# Pods are listed apart and deleted only when their Job or Deployment is gone and a cluster did not
# cascade (garbage collection is the apiserver's job, but Awan must not leave a pod behind).
_POD = ("CoreV1Api", "", "list_namespaced_pod", "delete_namespaced_pod")


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
            kubeconfig.load_kube_config(config_file=path, client_configuration=c)  # type: ignore[no-untyped-call]
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
        self._apis = {n: getattr(client, n)(self.api) for n in ("BatchV1Api", "AppsV1Api", "CoreV1Api")}

    def _call(self, api: str, method: str, what: str, *args: Any, **kw: Any) -> Any:
        try:
            return getattr(self._apis[api], method)(*args, _request_timeout=self.timeout_s, **kw)
        except Exception as e:
            raise _error(e, f"{self.name}: {what}") from e

    def create(self, obj: dict[str, Any]) -> bool:
        api, create, _, _ = _KINDS[obj["kind"]]
        what = f"create {obj['kind']} {obj['metadata']['name']}"
        try:
            self._call(api, create, what, self.namespace, obj, _preload_content=False)
        except ClusterError as e:
            if e.status == 409:      # already there: created by an earlier pass (or one that was killed)
                return False
            raise
        return True

    def owned(self, selector: str) -> Owned:
        out = Owned()
        for kind, (api, _, lister, _) in _KINDS.items():
            resp = self._call(api, lister, f"list {kind}", self.namespace, label_selector=selector,
                              _preload_content=False)
            for o in json.loads(resp.data).get("items") or []:
                o.setdefault("kind", kind)
                out.objects.append(o)
        resp = self._call("CoreV1Api", "list_namespaced_pod", "list pods", self.namespace, label_selector=selector,
                          _preload_content=False)
        out.pods = list(json.loads(resp.data).get("items") or [])
        return out

    def delete(self, kind: str, name: str) -> None:
        api, _, _, deleter = _POD if kind == "Pod" else _KINDS[kind]
        try:
            # Background: the Job's (Deployment's) pods go with it.
            self._call(api, deleter, f"delete {kind} {name}", name, self.namespace, propagation_policy="Background",
                       _preload_content=False)
        except ClusterError as e:
            if e.status != 404:
                raise

    def log(self, pod: str, *, tail_lines: int | None = None) -> str:
        kw: dict[str, Any] = {"tail_lines": tail_lines} if tail_lines else {}
        resp = self._call("CoreV1Api", "read_namespaced_pod_log", f"log of {pod}", pod, self.namespace,
                          _preload_content=False, **kw)
        return bytes(resp.data).decode("utf-8", "replace")

    def follow(self, pod: str) -> Iterator[bytes]:
        try:
            resp = self._apis["CoreV1Api"].read_namespaced_pod_log(pod, self.namespace, follow=True,
                                                                   _preload_content=False)
        except Exception as e:
            raise _error(e, f"{self.name}: follow log of {pod}") from e
        try:
            yield from resp.stream(4096)
        finally:
            resp.release_conn()

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]
