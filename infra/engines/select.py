"""Pick the engine: the Pulumi Automation API where the CLI is installed, the local engine elsewhere."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from infra.engines.base import Engine, EngineError
from infra.engines.pulumi_auto import PulumiEngine, pulumi_cli
from infra.engines.state import StackStateStore
from providers.base import Provider
from providers.config import AwanConfig
from providers.registry import build_provider

EngineKind = Literal["auto", "pulumi", "local"]


def provider_factory(config: AwanConfig,
                     providers: Mapping[str, Provider] | None = None) -> Callable[[str], Provider]:
    """The process's providers when given (already wrapped once: breaker, retries, metrics), so the
    engine's create_nodes and capability calls go through the same breaker as the loop's; else adapters
    built on first use and kept for the engine's lifetime (the CLI, which has no service around it)."""
    cache: dict[str, Provider] = dict(providers or {})

    def get(name: str) -> Provider:
        if name not in cache:
            if providers is not None:
                raise KeyError(name)      # the process's set is the whole set: build no second adapter
            pc = config.providers.get(name)
            if pc is None or not pc.enabled:
                raise KeyError(name)
            cache[name] = build_provider(pc)
        return cache[name]

    return get


def select_engine(kind: EngineKind = "auto", *, config: AwanConfig | None = None,
                  store: StackStateStore | None = None, backend: str | None = None,
                  on_output: Callable[[str], None] | None = None,
                  providers: Mapping[str, Provider] | None = None) -> Engine:
    """``auto``: Pulumi when its CLI is on PATH, else local. ``config`` is needed by the local engine
    (it applies through the adapters); ``store`` defaults to JSON files under ~/.awan/stacks;
    ``providers``: the process's (guarded) providers, which the local engine then uses."""
    if kind not in ("auto", "pulumi", "local"):
        raise EngineError(f"engine: unknown {kind!r} (auto, pulumi or local)")
    if kind == "pulumi" or (kind == "auto" and pulumi_cli() is not None):
        return PulumiEngine(backend=backend, on_output=on_output)
    from infra.engines.local import LocalEngine

    if config is None:
        raise EngineError("the local engine needs a provider configuration (awan.yaml)")
    why = "Pulumi CLI not found" if kind == "auto" else "chosen with --engine local"
    return LocalEngine(provider_factory(config, providers), store=store, on_output=on_output, why=why)
