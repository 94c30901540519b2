"""Wire the controller to clouds: a configuration file if there is one, else embedded mock clouds.

This is the one place in the product that may start ``mockclouds`` (the local environment); it says so
whenever it does, so nobody mistakes mock capacity for a real cloud.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from controlplane.logs import redact
from providers.base import Provider
from providers.config import AwanConfig, load_config
from providers.registry import build_providers


@dataclass
class Environment:
    config: AwanConfig
    providers: dict[str, Provider]
    note: str          # where the answers come from, for the user


def config_path(explicit: str | None) -> Path | None:
    """The configuration file to use, or None when there is none (then mock clouds are embedded)."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("AWAN_CONFIG")
    if env:
        return Path(env)
    default = Path("awan.yaml")
    return default if default.exists() else None


def register_secrets(cfg: AwanConfig) -> None:
    """Whatever command loaded the configuration (serve, providers, plan...), its credentials are never
    written to a log line, an error or a response (until now only `awan demo` registered its own)."""
    redact(v.get_secret_value() for p in cfg.providers.values() for v in p.credentials.values())


@contextmanager
def open_environment(config: str | None = None, only: list[str] | None = None) -> Iterator[Environment]:
    path = config_path(config)
    mocks = None
    if path is None:
        from mockclouds.launcher import MockClouds  # local environment only

        mocks = MockClouds().start()
        cfg = mocks.config()
        note = "no awan.yaml: using embedded mock clouds on " + ", ".join(
            f"{k} {v}" for k, v in mocks.urls.items())
    else:
        cfg = load_config(path)
        note = f"configuration {path}"
    register_secrets(cfg)
    providers: dict[str, Provider] = {}
    try:
        providers = build_providers(cfg, only)
        yield Environment(cfg, providers, note)
    finally:
        for p in providers.values():
            p.close()
        if mocks is not None:
            mocks.stop()
