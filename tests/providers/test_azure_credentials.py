"""Real ARM takes a refreshing azure-identity credential: a service principal, DefaultAzureCredential
(environment, managed identity, CLI), or, for short runs, a static token; the mock keeps its static token."""

from __future__ import annotations

import pytest
from azure.identity import ClientSecretCredential, DefaultAzureCredential

from providers.azure.client import StaticTokenCredential, build_client, credential_for
from providers.config import ConfigError, ProviderConfig


def _cfg(**creds: str) -> ProviderConfig:
    return ProviderConfig(name="azure", subscription="00000000-0000-0000-0000-000000000001",
                          credentials=creds)  # type: ignore[arg-type]


def test_service_principal_then_static_token_then_default_chain() -> None:
    sp = credential_for(_cfg(tenant_id="t-1", client_id="c-1", client_secret="s-1"))
    assert isinstance(sp, ClientSecretCredential)
    assert isinstance(credential_for(_cfg(token="eyJ.static")), StaticTokenCredential)
    assert isinstance(credential_for(_cfg()), DefaultAzureCredential)


def test_a_service_principal_without_tenant_names_the_field() -> None:
    with pytest.raises(ConfigError, match="providers.azure.credentials.tenant_id: required"):
        credential_for(_cfg(client_id="c-1", client_secret="s-1"))


def test_real_arm_client_is_built_with_the_refreshing_credential() -> None:
    client = build_client(_cfg(tenant_id="t-1", client_id="c-1", client_secret="s-1"), polling_interval=30)
    try:
        assert client._config.credential.__class__ is ClientSecretCredential   # no network until first call
    finally:
        client.close()
