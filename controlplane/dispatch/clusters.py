"""Which cluster runs the pods of nodes in a (provider, region), from configuration, with one client per
cluster (built on first use, closed with the service)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from controlplane.dispatch.kube import Cluster, KubeCluster
from providers.config import AwanConfig, ClusterConfig


class ClusterSet:
    def __init__(self, config: AwanConfig | None,
                 factory: Callable[[ClusterConfig], Cluster] = KubeCluster) -> None:
        self.config, self.factory = config, factory
        self._clients: dict[str, Cluster] = {}
        self._lock = threading.Lock()

    def config_for(self, provider: str, region: str) -> ClusterConfig | None:
        return self.config.cluster_for(provider, region) if self.config is not None else None

    def _client(self, cfg: ClusterConfig) -> Cluster:
        with self._lock:
            c = self._clients.get(cfg.name)
            if c is None:
                c = self._clients[cfg.name] = self.factory(cfg)
            return c

    def for_region(self, provider: str, region: str) -> Cluster | None:
        cfg = self.config_for(provider, region)
        return self._client(cfg) if cfg is not None else None

    def all(self) -> list[Cluster]:
        """Every configured cluster (garbage collection looks at each, not only those in use)."""
        if self.config is None:
            return []
        cfgs = list(self.config.clusters)
        cw = self.config.providers.get("coreweave")
        if cw is not None and cw.enabled:
            fallback = self.config.cluster_for("coreweave", "*")
            if fallback is not None and all(c.name != fallback.name for c in cfgs):
                cfgs.append(fallback)
        return [self._client(c) for c in cfgs]

    def close(self) -> None:
        with self._lock:
            for c in self._clients.values():
                c.close()
            self._clients.clear()
