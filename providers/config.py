"""Where each provider's API is and how to authenticate: the same adapter talks to the real cloud or
to mockclouds by configuration alone.

A YAML file (``awan.yaml``, or the path in ``AWAN_CONFIG``)::

    providers:
      aws:   {endpoint: http://127.0.0.1:5001, regions: [us-east-1], credentials: {access_key_id: .., secret_access_key: ..}}
      gcp:   {endpoint: http://127.0.0.1:5002, project: awan-lab, credentials: {anonymous: "true"}}
      azure: {endpoint: http://127.0.0.1:5003, subscription: 0000.., credentials: {token: ..}}
      coreweave: {endpoint: http://127.0.0.1:5004, credentials: {token: ..}}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

ProviderName = Literal["aws", "gcp", "azure", "coreweave"]


class ProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ProviderName
    enabled: bool = True
    endpoint: str | None = None            # None: the provider's public endpoint
    regions: list[str] | None = None       # None: every region the catalog knows for it
    project: str | None = None             # gcp
    subscription: str | None = None        # azure
    resource_group: str = "awan"           # azure
    namespace: str = "default"             # coreweave (kubernetes)
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    timeout_s: float = 10.0
    max_attempts: int = 4                  # for throttled/unavailable calls; capacity errors are never retried

    def secret(self, key: str, default: str = "") -> str:
        v = self.credentials.get(key)
        return v.get_secret_value() if v is not None else default

    @property
    def where(self) -> str:
        return self.endpoint or "(public endpoint)"


class AwanConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    providers: dict[str, ProviderConfig] = Field(default_factory=dict)

    def enabled(self) -> list[ProviderConfig]:
        return [p for p in self.providers.values() if p.enabled]


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the field."""


def parse_config(data: dict[str, Any], source: str = "<config>") -> AwanConfig:
    raw = dict(data or {})
    provs = raw.get("providers")
    if provs is None:
        provs = {}
    if not isinstance(provs, dict):
        raise ConfigError(f"{source}: providers: expected a mapping of provider name to settings")
    fixed = {}
    for name, body in provs.items():
        if body is not None and not isinstance(body, dict):
            raise ConfigError(f"{source}: providers.{name}: expected a mapping of settings, "
                              f"got {type(body).__name__}")
        body = dict(body or {})
        body.setdefault("name", name)
        fixed[name] = body
    raw["providers"] = fixed
    try:
        cfg = AwanConfig.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise ConfigError(f"{source}: {loc}: {err['msg']}") from None
    for key, p in cfg.providers.items():
        if key != p.name:
            raise ConfigError(f"{source}: providers.{key}: name {p.name!r} does not match its key")
    return cfg


def load_config(path: str | os.PathLike[str] | None = None) -> AwanConfig:
    p = Path(path or os.environ.get("AWAN_CONFIG", "awan.yaml"))
    if not p.exists():
        raise ConfigError(f"{p}: no such configuration file (set AWAN_CONFIG or run `awan mockclouds up`)")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        # Position and problem only: PyYAML's own text quotes the offending lines, which in this file
        # are likely to hold a credential.
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{p}: not valid YAML{where}: {getattr(e, 'problem', None) or 'syntax error'}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level")
    return parse_config(data, str(p))
