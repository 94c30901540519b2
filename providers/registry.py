"""Build adapters from configuration. SDKs are imported lazily: google.cloud.compute_v1 alone costs ~1 s."""

from __future__ import annotations

import importlib
import importlib.util

from providers.base import Provider
from providers.capabilities import (
    SupportsCapacityBlocks,
    SupportsClusterNetworks,
    SupportsFutureReservations,
    SupportsNodePools,
    SupportsPlacementGroups,
    SupportsQueuedResources,
    SupportsReservations,
    SupportsScaleSets,
)
from providers.config import AwanConfig, ConfigError, ProviderConfig

ADAPTERS = {
    "aws": "providers.aws.adapter:AWSProvider",
    "gcp": "providers.gcp.adapter:GCPProvider",
    "azure": "providers.azure.adapter:AzureProvider",
    "coreweave": "providers.coreweave.adapter:CoreWeaveProvider",
    "oci": "providers.oci.adapter:OCIProvider",
}

# What each cloud's extra (`pip install 'awan[aws]'`) brings: its SDK for the adapter, its Pulumi provider
# for the stacks. The adapters import them lazily, so they are looked for (not imported) when a provider
# is built: a missing extra is refused at start, in one line, not as an ImportError in the first call.
REQUIRES = {
    "aws": ("boto3", "pulumi_aws"),
    "gcp": ("google.cloud.compute_v1", "pulumi_gcp"),
    "azure": ("azure.mgmt.compute", "pulumi_azure_native"),
    "coreweave": ("kubernetes", "pulumi_kubernetes"),
    "oci": ("oci", "pulumi_oci"),
}


# The optional abilities each adapter is registered with (providers/capabilities.py). Checked when the
# provider is built: an adapter that lost one (a renamed method, a dropped base) is refused at start,
# not found out when the engine first needs it.
CAPABILITIES: dict[str, tuple[type, ...]] = {
    "aws": (SupportsPlacementGroups, SupportsReservations, SupportsCapacityBlocks),
    "gcp": (SupportsPlacementGroups, SupportsQueuedResources, SupportsFutureReservations),
    "azure": (SupportsScaleSets,),
    "coreweave": (SupportsNodePools,),
    "oci": (SupportsReservations, SupportsClusterNetworks),
}


class RegistrationError(ConfigError):
    """An adapter does not implement what it is registered with."""


def check_capabilities(name: str, provider: Provider, expected: tuple[type, ...]) -> None:
    """``expected`` Protocols must be implemented (runtime check of the methods; their signatures are
    checked by mypy, the adapters inherit the Protocols)."""
    missing = [c.__name__ for c in expected if not isinstance(provider, c)]
    if missing:
        raise RegistrationError(f"provider {name!r}: adapter {type(provider).__name__} does not implement "
                                f"{', '.join(missing)}")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):   # a parent package missing, or a module stubbed out
        return False


def build_provider(cfg: ProviderConfig) -> Provider:
    target = ADAPTERS.get(cfg.name)
    if target is None:
        raise ConfigError(f"unknown provider {cfg.name!r} (known: {', '.join(ADAPTERS)})")
    missing = [m for m in REQUIRES.get(cfg.name, ()) if not _installed(m)]
    if missing:
        raise ConfigError(f"provider {cfg.name!r}: its SDK ({missing[0]}) is not installed; "
                          f"install it with: pip install 'awan[{cfg.name}]'")
    module, cls = target.split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:   # the cloud's extra is not installed: name it, not a traceback
        if (e.name or "").startswith(("providers", "infra")):
            raise
        raise ConfigError(f"provider {cfg.name!r}: its SDK ({e.name}) is not installed; "
                          f"install it with: pip install 'awan[{cfg.name}]'") from None
    provider: Provider = getattr(mod, cls)(cfg)     # the adapter class named in ADAPTERS
    check_capabilities(cfg.name, provider, CAPABILITIES.get(cfg.name, ()))
    return provider


def build_providers(cfg: AwanConfig, only: list[str] | None = None) -> dict[str, Provider]:
    if only:
        unknown = [n for n in only if n not in ADAPTERS]
        if unknown:
            raise ConfigError(f"unknown provider {unknown[0]!r} (known: {', '.join(ADAPTERS)})")
        missing = [n for n in only if n not in cfg.providers]
        if missing:
            raise ConfigError(f"provider {missing[0]!r} is not configured")
    return {p.name: build_provider(p) for p in cfg.enabled() if not only or p.name in only}
