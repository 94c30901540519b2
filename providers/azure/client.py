"""Build azure-mgmt-compute's ComputeManagementClient from a ProviderConfig (imported lazily: it is big).

Authentication:
* ``http://`` endpoints (mockclouds): the SDK refuses bearer tokens over plain http, so its
  authentication policy is replaced by ``StaticBearerPolicy``, which sets ``Authorization: Bearer
  <credentials.token>`` on every request;
* ``https://`` endpoints (real Azure): a TokenCredential drives the SDK's own ARM challenge policy,
  chosen by ``credential_for``: a service principal (``credentials.tenant_id``/``client_id``/
  ``client_secret``: ClientSecretCredential), else a pre-issued token (``credentials.token``, about an
  hour's life, no refresh: for short runs and CI), else ``DefaultAzureCredential`` (environment, workload
  or managed identity, Azure CLI), which refreshes tokens as they expire: what a long-running service needs.
"""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken
from azure.core.pipeline.policies import SansIOHTTPPolicy

from providers.config import ConfigError, ProviderConfig

PUBLIC_ENDPOINT = "https://management.azure.com"
ARM_SCOPE = "https://management.azure.com/.default"


class StaticBearerPolicy(SansIOHTTPPolicy):  # type: ignore[type-arg]  # generic in newer azure-core only
    """Sets a fixed ``Authorization: Bearer`` header; stands in for the SDK's challenge policy."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def on_request(self, request: Any) -> None:
        request.http_request.headers["Authorization"] = self._header


class StaticTokenCredential:
    """azure.core.credentials.TokenCredential over one pre-issued access token.

    ARM tokens last about an hour; this credential does not refresh, so it suits short-lived processes
    and CI. Long-running services should pass a refreshing credential (azure-identity) instead.
    """

    def __init__(self, token: str, expires_on: int | None = None) -> None:
        if not token:
            raise ConfigError("providers.azure.credentials.token: an ARM access token is required "
                              "(or pass credential= to AzureProvider)")
        self._token = token
        self._expires_on = expires_on or int(time.time()) + 3600

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, self._expires_on)


def credential_for(cfg: ProviderConfig) -> Any:
    """The TokenCredential for real ARM (see the module doc for the order)."""
    tenant, client_id, secret = cfg.secret("tenant_id"), cfg.secret("client_id"), cfg.secret("client_secret")
    if client_id and secret:
        if not tenant:
            raise ConfigError("providers.azure.credentials.tenant_id: required with client_id and client_secret")
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(tenant, client_id, secret)
    if cfg.secret("token"):
        return StaticTokenCredential(cfg.secret("token"))
    from azure.identity import DefaultAzureCredential

    # managed_identity_client_id: a user-assigned identity (None: the system-assigned one, if any).
    return DefaultAzureCredential(managed_identity_client_id=cfg.secret("managed_identity_client_id") or None)


def build_client(cfg: ProviderConfig, *, polling_interval: float, credential: Any | None = None) -> Any:
    from azure.mgmt.compute import ComputeManagementClient  # ~0.3 s: only when a client is needed

    if not cfg.subscription:
        raise ConfigError("providers.azure.subscription: a subscription id is required")
    endpoint = (cfg.endpoint or PUBLIC_ENDPOINT).rstrip("/")
    kwargs: dict[str, Any] = {
        "base_url": endpoint,
        "polling_interval": polling_interval,
        "retry_total": 0,                      # RetryPolicy in errors.py is the only retry loop
        "connection_timeout": cfg.timeout_s,
        "read_timeout": cfg.timeout_s,
    }
    if endpoint.startswith("http://"):
        kwargs["authentication_policy"] = StaticBearerPolicy(cfg.secret("token"))
        credential = credential or StaticTokenCredential(cfg.secret("token") or "-")
    else:
        credential = credential or credential_for(cfg)
        kwargs["credential_scopes"] = [ARM_SCOPE]
    return ComputeManagementClient(credential, cfg.subscription, **kwargs)
