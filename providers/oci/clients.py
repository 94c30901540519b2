"""`oci` SDK clients per (service, region) built from ProviderConfig, and the one way to call them: the SDK's
own retries off, ours on (providers.retry, as every adapter), every failure mapped to a typed ProviderError.

Why our own retries: the SDK's default strategy retries HTTP 500, and OCI answers a stock-out as a 500
("Out of host capacity."); retrying it for minutes hides the signal placement needs.

OCI has one endpoint per region and service (``https://iaas.{region}.oraclecloud.com``). A configured
``endpoint`` may hold ``{region}``, filled per region (``http://127.0.0.1:5005/{region}`` for the mock);
``None`` lets the SDK choose the public endpoint of the region.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from providers.config import ProviderConfig
from providers.errors import AuthError
from providers.oci.errors import PROVIDER, from_exception
from providers.retry import BACKOFF_BASE_S, with_retries

Service = Literal["compute", "management", "identity", "limits", "network"]


class OciClients:
    def __init__(self, cfg: ProviderConfig, *, sleep: Callable[[float], None] = time.sleep,
                 backoff_base: float = BACKOFF_BASE_S) -> None:
        self.cfg = cfg
        self.endpoint = cfg.where
        self._sleep = sleep
        self._base = backoff_base
        self._lock = threading.Lock()
        self._clients: dict[tuple[Service, str], Any] = {}
        self._signer: Any = None

    @property
    def tenancy(self) -> str:
        if not self.cfg.tenancy:
            raise AuthError("providers.oci.tenancy: the tenancy OCID is required", provider=PROVIDER,
                            endpoint=self.endpoint, code="MissingTenancy")
        return self.cfg.tenancy

    @property
    def compartment(self) -> str:
        """Where Awan's instances, reservations and cluster networks live (the tenancy's root by default)."""
        return self.cfg.compartment or self.tenancy

    def sdk_config(self, region: str) -> dict[str, Any]:
        """The SDK's configuration: an API signing key from awan.yaml (``user``, ``fingerprint`` and
        ``key_content`` or ``key_file``), else the profile of ``~/.oci/config`` named by ``profile``."""
        import oci

        c = self.cfg
        if c.secret("key_content") or c.secret("key_file"):
            conf: dict[str, Any] = {"tenancy": self.tenancy, "user": c.secret("user"),
                                    "fingerprint": c.secret("fingerprint"), "region": region}
            if c.secret("key_content"):
                conf["key_content"] = c.secret("key_content")
            else:
                conf["key_file"] = c.secret("key_file")
            if c.secret("pass_phrase"):
                conf["pass_phrase"] = c.secret("pass_phrase")
        else:
            conf = dict(oci.config.from_file(profile_name=c.secret("profile", "DEFAULT")))
            conf["region"] = region
            if c.tenancy:
                conf["tenancy"] = c.tenancy
        oci.config.validate_config(conf)
        return conf

    def service_endpoint(self, region: str) -> str | None:
        return self.cfg.endpoint.replace("{region}", region) if self.cfg.endpoint else None

    def client(self, service: Service, region: str) -> Any:
        key = (service, region)
        built = self._clients.get(key)   # without the lock: a region asked at once must not wait on another's build
        if built is not None:
            return built
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._make(service, region)
            return self._clients[key]

    def _make(self, service: Service, region: str) -> Any:
        import oci  # lazy: the SDK is large and most commands never touch OCI

        try:
            conf = self.sdk_config(region)
            if self._signer is None:
                # One signer for every client: loading the RSA key is the costly part (~0.2 s each).
                self._signer = oci.signer.Signer(
                    conf["tenancy"], conf["user"], conf["fingerprint"], conf.get("key_file"),
                    pass_phrase=conf.get("pass_phrase"), private_key_content=conf.get("key_content"))
        except Exception as e:  # noqa: BLE001 - mapped: a bad key or config is an auth problem, named
            raise from_exception(e, endpoint=self.endpoint, region=region) from e
        kinds = {"compute": oci.core.ComputeClient, "management": oci.core.ComputeManagementClient,
                 "identity": oci.identity.IdentityClient, "limits": oci.limits.LimitsClient,
                 "network": oci.core.VirtualNetworkClient}
        kw: dict[str, Any] = {"signer": self._signer, "retry_strategy": oci.retry.NoneRetryStrategy(),
                              "timeout": (self.cfg.timeout_s, self.cfg.timeout_s)}
        endpoint = self.service_endpoint(region)
        if endpoint:
            kw["service_endpoint"] = endpoint
        return kinds[service](conf, **kw)

    def call(self, service: Service, region: str, op: str, *args: Any, attempts: int | None = None,
             **kwargs: Any) -> Any:
        """``op`` of the service's client; its ``.data``. Throttled/unavailable calls are retried with
        backoff + jitter, at most ``cfg.max_attempts`` times; other failures raise at once, typed."""
        return self._retrying(lambda: getattr(self.client(service, region), op)(*args, **kwargs).data,
                              region, attempts)

    def pages(self, service: Service, region: str, op: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Every item of a List operation across ``opc-next-page`` pages, each page called (and retried) on
        its own. Not ``oci.pagination``: it wraps every page in the SDK's default retry strategy, which
        retried a 429 for minutes whatever the client was built with."""
        out: list[Any] = []
        page: str | None = None
        while True:
            extra: dict[str, str] = {"page": page} if page else {}

            def one(e: dict[str, str] = extra) -> Any:
                return getattr(self.client(service, region), op)(*args, **kwargs, **e)

            resp = self._retrying(one, region, None)
            out.extend(resp.data or [])
            page = resp.next_page
            if not page:
                return out

    def _retrying(self, fn: Callable[[], Any], region: str, attempts: int | None) -> Any:
        def once() -> Any:
            try:
                return fn()
            except Exception as e:  # noqa: BLE001 - mapped to a typed error or re-raised
                raise from_exception(e, endpoint=self.endpoint, region=region) from e

        return with_retries(once, attempts or self.cfg.max_attempts, base_s=self._base, sleep=self._sleep)

    def close(self) -> None:
        with self._lock:
            for c in self._clients.values():
                session = getattr(c.base_client, "session", None)
                if session is not None:
                    session.close()
            self._clients.clear()
