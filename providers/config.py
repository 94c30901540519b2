"""Where each provider's API is and how to authenticate: the same adapter talks to the real cloud or
to mockclouds by configuration alone.

A YAML file (``awan.yaml``, or the path in ``AWAN_CONFIG``)::

    providers:
      aws:   {endpoint: http://127.0.0.1:5001, regions: [us-east-1], credentials: {access_key_id: .., secret_access_key: ..}}
      gcp:   {endpoint: http://127.0.0.1:5002, project: awan-lab, credentials: {anonymous: "true"}}
      azure: {endpoint: http://127.0.0.1:5003, subscription: 0000.., credentials: {token: ..}}
      coreweave: {endpoint: http://127.0.0.1:5004, credentials: {token: ..}}
      oci:   {endpoint: "http://127.0.0.1:5005/{region}", tenancy: ocid1.tenancy.., regions: [us-chicago-1],
              credentials: {user: ocid1.user.., fingerprint: .., key_content: "-----BEGIN PRIVATE KEY-----.."}}
    clusters:            # where workloads run: the Kubernetes cluster each (provider, region)'s nodes join
      - {name: eks-use1, provider: aws, regions: [us-east-1], endpoint: https://..., credentials: {token: ..}}

A CoreWeave region needs no entry: its CKS cluster is the provider's own endpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

ProviderName = Literal["aws", "gcp", "azure", "coreweave", "oci"]


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
    tenancy: str | None = None             # oci: the tenancy OCID (credentials: user, fingerprint, key_content)
    compartment: str | None = None         # oci: where Awan's resources live (None: the tenancy's root)
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    timeout_s: float = 10.0
    max_attempts: int = 4                  # for throttled/unavailable calls; capacity errors are never retried

    def secret(self, key: str, default: str = "") -> str:
        v = self.credentials.get(key)
        return v.get_secret_value() if v is not None else default

    @property
    def where(self) -> str:
        return self.endpoint or "(public endpoint)"


class ClusterConfig(BaseModel):
    """A Kubernetes cluster that the nodes Awan provisions in some regions of one provider join, and
    where their workloads run. Several per provider kind (accounts, subscriptions, regions)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=63)
    provider: ProviderName
    regions: list[str] = Field(default_factory=lambda: ["*"], min_length=1)   # globs of region names
    # None: the server of credentials.kubeconfig. ``{region}`` in it makes one entry stand for a cluster
    # per region (https://k8s.example/{region}, as the mock clouds serve theirs).
    endpoint: str | None = None
    namespace: str = "default"
    credentials: dict[str, SecretStr] = Field(default_factory=dict)   # token, kubeconfig, ca_file
    timeout_s: float = 10.0

    def secret(self, key: str, default: str = "") -> str:
        v = self.credentials.get(key)
        return v.get_secret_value() if v is not None else default

    def serves(self, provider: str, region: str) -> bool:
        from fnmatch import fnmatchcase

        return provider == self.provider and any(fnmatchcase(region, g) for g in self.regions)

    def for_region(self, region: str) -> ClusterConfig:
        """This entry for one region: itself, or with ``{region}`` filled in (and named after it)."""
        if not self.endpoint or "{region}" not in self.endpoint:
            return self
        return self.model_copy(update={"name": f"{self.name}-{region}", "regions": [region],
                                       "endpoint": self.endpoint.replace("{region}", region)})


class AwanConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    clusters: list[ClusterConfig] = Field(default_factory=list)

    def cluster_for(self, provider: str, region: str) -> ClusterConfig | None:
        """The cluster whose nodes in (provider, region) join: the first entry that serves it, else for
        CoreWeave the CKS cluster at the provider's own endpoint."""
        for c in self.clusters:
            if c.serves(provider, region):
                return c.for_region(region)
        p = self.providers.get(provider)
        if p is not None and p.name == "coreweave":
            # One CKS API server serves every region of the account: one cluster, whatever the region.
            return ClusterConfig(name="coreweave", provider="coreweave", regions=["*"],
                                 endpoint=p.endpoint, namespace=p.namespace, credentials=dict(p.credentials),
                                 timeout_s=p.timeout_s)
        return None

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
    names = [c.name for c in cfg.clusters]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"{source}: clusters: name {dup!r} is used twice")
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
