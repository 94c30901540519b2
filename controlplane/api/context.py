"""What the routers share: the store, the providers, the policy source, the loop (if this replica runs
one) and its metrics. Built by ``create_app``; tests may pass their own pieces."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from fastapi import Request
from prometheus_client import CollectorRegistry

from controlplane.reconcile.metrics import LoopMetrics
from controlplane.reconcile.policy_source import PolicySource
from controlplane.settings import Settings
from controlplane.store.db import Database
from providers.base import Provider

if TYPE_CHECKING:   # the dispatch and provider-config packages load on first use, not with the API
    from controlplane.api.parsepool import ParsePool
    from controlplane.dispatch.clusters import ClusterSet
    from providers.config import AwanConfig


class Closeable(Protocol):
    def close(self) -> None: ...


class Leadership(Protocol):
    @property
    def is_leader(self) -> bool: ...


class ServiceLoop(Protocol):
    """What the service asks of its reconcile loop (controlplane.reconcile.controller.Controller):
    start it, stop it with a grace period, and whether its replica holds the lease."""

    @property
    def elector(self) -> Leadership: ...

    def start(self) -> None: ...

    def stop(self, release_lease: bool = True, grace_s: float = 60.0) -> bool: ...


@dataclass
class ServiceContext:
    settings: Settings
    db: Database
    providers: Mapping[str, Provider]
    policies: PolicySource
    metrics: LoopMetrics
    config: AwanConfig | None = None        # what the providers were built from
    controller: ServiceLoop | None = None   # when this replica reconciles
    clusters: ClusterSet | None = None      # built on first use (logs)
    closers: list[Closeable] = field(default_factory=list)
    parsing: ParsePool | None = None        # large submit bodies parsed in a worker process
    # The Prometheus text of this replica's other processes (the controller process), merged into /metrics.
    metrics_sources: list[Callable[[], bytes]] = field(default_factory=list)
    # The other API worker processes' expositions (``awan serve --workers N``), merged as peers.
    metrics_peers: list[Callable[[], list[bytes]]] = field(default_factory=list)
    # Gauges computed from the store at scrape time: apart from ``metrics.registry`` so that what one worker
    # exports to the others (its counters) does not repeat the store scan each of them makes itself.
    scrape: CollectorRegistry = field(default_factory=lambda: CollectorRegistry())


# Builds the loop of a service from its context (create_app's ``controller_factory``).
LoopFactory = Callable[[ServiceContext], ServiceLoop]


async def ctx(request: Request) -> ServiceContext:
    """``async``: it only reads app state, and FastAPI runs a plain ``def`` dependency in its thread pool (a
    thread hand-over, both ways, on every request)."""
    c: ServiceContext = request.app.state.ctx
    return c
