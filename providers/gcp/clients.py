"""Google SDK clients built from configuration, and the one retry policy every call goes through.

The SDKs' own retries are switched off (``retry=None``) so that this module is the only place that
retries: exponential backoff with full jitter, at least the server's Retry-After, at most
``cfg.max_attempts`` attempts, and only for throttled/unavailable errors, never capacity or quota.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from providers.config import ConfigError, ProviderConfig
from providers.errors import UnavailableError
from providers.gcp.errors import map_exception, operation_error
from providers.retry import with_retries

T = TypeVar("T")
MAX_BACKOFF_S = 30.0
OPERATION_DEADLINE_S = 900.0       # a VM or TPU create can take minutes on the real cloud
_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


class GoogleApis:
    """Lazily built SDK clients sharing credentials and endpoint, plus ``call``/``wait_*`` with retries."""

    def __init__(self, cfg: ProviderConfig) -> None:
        if not cfg.project:
            raise ConfigError("providers.gcp.project: a GCP project id is required")
        if cfg.endpoint and "://" not in cfg.endpoint:
            raise ConfigError(f"providers.gcp.endpoint: {cfg.endpoint!r} needs a scheme "
                              "(http:// for mockclouds, https:// otherwise)")
        self.cfg = cfg
        self.project = cfg.project
        self.endpoint = cfg.where
        self._clients: dict[str, Any] = {}
        # Clients are made on first use by whichever thread asks (stack runs, regions asked at once): one each.
        self._lock = threading.Lock()
        self._creds: Any = None

    # -- construction --------------------------------------------------------------------------
    def _credentials(self) -> Any:
        if self._creds is None:
            if self.cfg.secret("anonymous").lower() in ("true", "1", "yes"):
                from google.auth.credentials import AnonymousCredentials
                self._creds = AnonymousCredentials()  # type: ignore[no-untyped-call]
            elif info := self.cfg.secret("service_account_json"):
                from google.oauth2 import service_account
                try:
                    self._creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                        json.loads(info), scopes=_SCOPES)
                except (ValueError, KeyError) as e:
                    raise ConfigError(f"providers.gcp.credentials.service_account_json: not a usable "
                                      f"service-account key ({e})") from None
            else:
                import google.auth
                self._creds, _ = google.auth.default(scopes=_SCOPES)
        return self._creds

    def _options(self) -> dict[str, Any]:
        return {"credentials": self._credentials(),
                "client_options": {"api_endpoint": self.cfg.endpoint} if self.cfg.endpoint else None}

    def compute(self, kind: str) -> Any:
        """A compute_v1 client by class name (InstancesClient, ZoneOperationsClient, ...)."""
        built = self._clients.get(kind)   # without the lock: a call must not wait on another client's build
        if built is not None:
            return built
        with self._lock:
            if kind not in self._clients:
                from google.cloud import compute_v1
                self._clients[kind] = getattr(compute_v1, kind)(**self._options())
            return self._clients[kind]

    def tpu(self) -> Any:
        with self._lock:
            if "tpu" not in self._clients:
                from google.cloud import tpu_v2
                self._clients["tpu"] = tpu_v2.TpuClient(transport="rest", **self._options())
            return self._clients["tpu"]

    def close(self) -> None:
        for c in self._clients.values():
            transport = getattr(c, "transport", None)
            if transport is not None:
                transport.close()
        self._clients.clear()

    # -- calls ---------------------------------------------------------------------------------
    def call(self, fn: Callable[..., T], *args: Any, at: str = "", sdk_timeout: float | None = None,
             attempts: int | None = None, **kwargs: Any) -> T:
        """Call one SDK method with our retries; errors come out as providers.errors types naming region ``at``."""
        kwargs.setdefault("retry", None)
        kwargs.setdefault("timeout", sdk_timeout or self.cfg.timeout_s)

        def once() -> T:
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                raise map_exception(e, endpoint=self.endpoint, region=at) from e

        return with_retries(once, attempts or self.cfg.max_attempts, base_s=0.1, cap_s=MAX_BACKOFF_S)

    def wait_compute(self, scope: str, location: str, operation: str, region: str) -> Any:
        """Wait for a zone or region operation with our own *OperationsClient* (the SDK's ExtendedOperation
        polls through a client built without our endpoint), then raise its error if it failed."""
        from google.cloud import compute_v1
        zonal = scope == "zones"
        client = self.compute("ZoneOperationsClient" if zonal else "RegionOperationsClient")
        where: dict[str, Any] = {"zone": location} if zonal else {"region": location}
        deadline = time.monotonic() + OPERATION_DEADLINE_S
        while True:
            # wait blocks up to ~2 minutes server-side, so its HTTP timeout must outlast that.
            op = self.call(client.wait, project=self.project, operation=operation, at=region,
                           sdk_timeout=max(self.cfg.timeout_s, 130.0), **where)
            if op.status == compute_v1.Operation.Status.DONE:
                break
            if time.monotonic() > deadline:
                raise UnavailableError(f"operation {operation} did not finish in {OPERATION_DEADLINE_S:.0f}s",
                                       provider="gcp", endpoint=self.endpoint, region=region, code="timeout")
        errors = [(e.code, e.message) for e in op.error.errors] if op.error else []
        if errors or op.http_error_status_code >= 400:
            raise operation_error(errors, op.http_error_status_code, endpoint=self.endpoint, region=region)
        return op

    def wait_lro(self, name: str, region: str, poll_s: float = 0.05) -> Any:
        """Poll a google.longrunning operation (Cloud TPU) until done; return it (the caller reads error)."""
        from google.longrunning import operations_pb2
        deadline = time.monotonic() + OPERATION_DEADLINE_S
        delay = poll_s
        while True:
            op = self.call(self.tpu().get_operation, request=operations_pb2.GetOperationRequest(name=name),
                           at=region)
            if op.done:
                return op
            if time.monotonic() > deadline:
                raise UnavailableError(f"operation {name} did not finish in {OPERATION_DEADLINE_S:.0f}s",
                                       provider="gcp", endpoint=self.endpoint, region=region, code="timeout")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
