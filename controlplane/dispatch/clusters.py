"""Which cluster runs the pods of nodes in a (provider, region), from configuration, with one client per
cluster (built on first use, closed with the service)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

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

    def for_regions(self, where: Iterable[tuple[str, str]]) -> list[Cluster]:
        """The distinct clusters of these (provider, region) pairs (several regions may share one)."""
        out: dict[str, Cluster] = {}
        for provider, region in sorted(set(where)):
            c = self.for_region(provider, region)
            if c is not None:
                out.setdefault(c.name, c)
        return list(out.values())

    def close(self) -> None:
        with self._lock:
            for c in self._clients.values():
                c.close()
            self._clients.clear()
