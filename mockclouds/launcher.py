"""Start all five mock clouds on loopback and describe them as an Awan provider configuration.

    with MockClouds().start() as mc:
        cfg = mc.config()          # providers.config.AwanConfig pointing at the mocks
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml

from mockclouds.serving import RunningServer
from providers.config import AwanConfig, parse_config

CLOUDS = ("aws", "gcp", "azure", "coreweave", "oci")
# Each mock package exposes start(host, port) -> RunningServer.
_MODULES = {"aws": "mockclouds.aws.server", "gcp": "mockclouds.gcp.server",
            "azure": "mockclouds.azure.server", "coreweave": "mockclouds.kubernetes.server",
            "oci": "mockclouds.oci.server"}

GCP_PROJECT = "awan-lab"
AZURE_SUBSCRIPTION = "00000000-0000-0000-0000-00000000a3a7"
# Fixed, fake credentials the mocks accept; they are secrets as far as Awan's logs are concerned.
MOCK_SECRETS = {
    "aws": {"access_key_id": "AKIAAWANMOCK0000KEY", "secret_access_key": "awan-mock-aws-secret-9f1c"},
    "gcp": {"anonymous": "true"},
    "azure": {"token": "awan-mock-azure-token-77d2"},
    "coreweave": {"token": "awan-mock-k8s-token-41be"},
    "oci": {"user": "ocid1.user.oc1..aaaaaaaaawanmockuser"},   # + fingerprint and key_content, made per process
}


def _oci_settings(url: str) -> dict[str, Any]:
    """OCI has one endpoint per region; the mock serves each under its own path. The SDK signs with an RSA
    key, so the mock's configuration carries a throwaway one (the mock checks only the keyId)."""
    from mockclouds.oci.keys import TENANCY, USER, throwaway_key

    pem, fingerprint = throwaway_key()
    return {"endpoint": url + "/{region}", "tenancy": TENANCY,
            "credentials": {"user": USER, "fingerprint": fingerprint, "key_content": pem}}


class MockClouds:
    def __init__(self, host: str = "127.0.0.1", ports: dict[str, int] | None = None,
                 clouds: tuple[str, ...] = CLOUDS) -> None:
        self.host = host
        self.ports = ports or {}
        self.clouds = clouds
        self.servers: dict[str, RunningServer] = {}

    def start(self) -> MockClouds:
        for cloud in self.clouds:
            mod = importlib.import_module(_MODULES[cloud])
            self.servers[cloud] = mod.start(self.host, self.ports.get(cloud, 0))
        # Started clouds hold nothing yet. The AWS mock's EC2 state is moto's, which is global to the process:
        # a second AWS mock in one process (a test's own beside the session's) would otherwise start with the
        # first one's instances, seen as orphans by whoever compares the inventory with its store.
        self.reset()
        return self

    def stop(self) -> None:
        for s in self.servers.values():
            s.stop()
        self.servers.clear()

    def __enter__(self) -> MockClouds:
        return self if self.servers else self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def urls(self) -> dict[str, str]:
        return {name: s.url for name, s in self.servers.items()}

    def backend(self, cloud: str) -> Any:
        return self.servers[cloud].backend

    def reset(self) -> None:
        from mockclouds.kubernetes.regional import ClusterMount

        for s in self.servers.values():
            s.backend.reset()
            if isinstance(s.server.app, ClusterMount):      # the cloud's regional Kubernetes clusters
                s.server.app.clusters.reset()

    def clusters(self) -> list[dict[str, str]]:
        """Every Kubernetes cluster the mocks serve: {name, provider, region, server, token}, as listed by
        each mock's ``GET /_mock/clusters``."""
        import json
        import urllib.request

        out: list[dict[str, str]] = []
        for url in self.urls.values():
            with urllib.request.urlopen(f"{url}/_mock/clusters", timeout=10) as r:
                out += json.loads(r.read())["clusters"]
        return out

    def config_dict(self) -> dict[str, Any]:
        provs: dict[str, Any] = {}
        for name, url in self.urls.items():
            p: dict[str, Any] = {"endpoint": url, "credentials": dict(MOCK_SECRETS[name])}
            if name == "gcp":
                p["project"] = GCP_PROJECT
            if name == "azure":
                p["subscription"] = AZURE_SUBSCRIPTION
            if name == "oci":
                p.update(_oci_settings(url))
            provs[name] = p
        # Where workloads run: the AWS, GCP, Azure and OCI mocks serve a Kubernetes cluster per region under
        # /_k8s/<region>/ that their running machines join; CoreWeave's is the CKS endpoint itself.
        clusters = [{"name": name, "provider": name, "regions": ["*"], "endpoint": f"{url}/_k8s/{{region}}",
                     "credentials": {"token": MOCK_SECRETS["coreweave"]["token"]}}
                    for name, url in self.urls.items() if name in ("aws", "gcp", "azure", "oci")]
        return {"providers": provs, "clusters": clusters} if clusters else {"providers": provs}

    def config(self) -> AwanConfig:
        return parse_config(self.config_dict(), "mockclouds")

    def write_config(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(yaml.safe_dump(self.config_dict(), sort_keys=False))
        return p
