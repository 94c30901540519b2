"""What the routers share: the store, the providers, the policy source, the loop (if this replica runs
one) and its metrics. Built by ``create_app``; tests may pass their own pieces."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from controlplane.reconcile.metrics import LoopMetrics
from controlplane.reconcile.policy_source import PolicySource
from controlplane.settings import Settings
from controlplane.store.db import Database
from providers.base import Provider


@dataclass
class ServiceContext:
    settings: Settings
    db: Database
    providers: Mapping[str, Provider]
    policies: PolicySource
    metrics: LoopMetrics
    config: Any = None              # providers.config.AwanConfig the providers were built from
    controller: Any = None          # controlplane.reconcile.controller.Controller when reconciling
    clusters: Any = None            # controlplane.dispatch.clusters.ClusterSet, built on first use (logs)
    closers: list[Any] = field(default_factory=list)


def ctx(request: Request) -> ServiceContext:
    return request.app.state.ctx
