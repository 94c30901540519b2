"""The kubernetes client for one CKS cluster, the mapping of its errors onto providers.errors, and the
retry policy (throttled/unavailable only, Retry-After honoured, bounded by ``max_attempts``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from providers.config import ProviderConfig
from providers.errors import (
    AuthError,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    ThrottledError,
    UnavailableError,
)
from providers.retry import with_retries

T = TypeVar("T")
PROVIDER = "coreweave"
MAX_RETRY_AFTER_S = 30.0


def build_api_client(cfg: ProviderConfig) -> Any:
    """An ApiClient for ``cfg``: a kubeconfig file (credentials.kubeconfig) if given, then
    ``cfg.endpoint`` as host and credentials.token as bearer token, which override it."""
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
    ca = cfg.secret("ca_file")
    if ca:
        c.ssl_ca_cert = ca
    c.retries = False           # tenacity below is the only retry layer
    return client.ApiClient(c)


def _status_body(body: Any) -> tuple[str, str]:
    """(reason, message) from a Kubernetes Status body, when there is one."""
    try:
        doc = json.loads(body) if isinstance(body, (str, bytes)) else {}
    except ValueError:
        return "", str(body or "")[:200]
    if not isinstance(doc, dict):
        return "", ""
    return str(doc.get("reason") or ""), str(doc.get("message") or "")


def _retry_after(headers: Any) -> float | None:
    raw = (headers or {}).get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except (TypeError, ValueError):
        return None


def map_error(e: BaseException, *, endpoint: str, region: str = "", what: str = "") -> ProviderError | None:
    """The typed error for a kubernetes-client or urllib3 failure; None for anything else."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    kw: dict[str, Any] = {"provider": PROVIDER, "endpoint": endpoint, "region": region}
    prefix = f"{what}: " if what else ""
    if isinstance(e, ApiException):
        reason, message = _status_body(e.body)
        status = int(e.status or 0)
        text = f"{prefix}{message or e.reason or 'HTTP ' + str(status)}"
        code = reason or str(status)
        if status == 429:
            return ThrottledError(text, code=code, retry_after=_retry_after(e.headers), **kw)
        if status == 0 or status >= 500:
            return UnavailableError(text, code=code, retry_after=_retry_after(e.headers), **kw)
        if status in (401, 403):
            return AuthError(text, code=code, **kw)
        if status == 404:
            return NotFoundError(text, code=code, **kw)
        return InvalidRequestError(text, code=code, **kw)
    if isinstance(e, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)):
        return UnavailableError(f"{prefix}{type(e).__name__}: {e}", code=type(e).__name__, **kw)
    return None


class KubeCaller:
    """Runs one API call with error mapping and bounded retries."""

    def __init__(self, cfg: ProviderConfig) -> None:
        self.endpoint = cfg.where
        self.max_attempts = max(1, cfg.max_attempts)
        self.timeout_s = cfg.timeout_s

    def call(self, fn: Callable[..., T], *args: Any, what: str = "", region: str = "", attempts: int | None = None,
             **kwargs: Any) -> T:
        def once() -> T:
            try:
                return fn(*args, _request_timeout=self.timeout_s, **kwargs)
            except Exception as e:
                mapped = map_error(e, endpoint=self.endpoint, region=region, what=what)
                if mapped is None:
                    raise
                raise mapped from e

        return with_retries(once, attempts or self.max_attempts, cap_s=MAX_RETRY_AFTER_S)
