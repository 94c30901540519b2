"""Prometheus metrics of the loop. One registry per service instance (tests build many apps); the API
exposes it at /metrics and adds gauges computed from the store at scrape time."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)


class LoopMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        if registry is None:   # process_* (CPU, memory, fds) and python_info, as every Prometheus target has
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        self.placements = Counter("awan_placements", "Placement decisions", ["result"], registry=self.registry)
        self.provisioning_latency = Histogram(
            "awan_provisioning_latency_seconds", "From placed to all nodes running",
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600), registry=self.registry)
        self.provider_errors = Counter("awan_provider_errors", "Provider and engine errors",
                                       ["provider", "reason"], registry=self.registry)
        self.stack_runs = Counter("awan_stack_runs", "Stack up runs", ["result"], registry=self.registry)
        self.ticks = Counter("awan_reconcile_ticks", "Reconcile passes run as leader", registry=self.registry)
        self.woken = Counter("awan_reconcile_woken_passes",
                             "Placing passes a wake (a submit, a change) ran between interval passes",
                             registry=self.registry)
        self.failovers = Counter("awan_failovers", "Workloads re-placed by failover", ["trigger"],
                                 registry=self.registry)
        self.admissions = Counter("awan_queue_admissions", "Queue admission events", ["result"],
                                  registry=self.registry)
        # A timestamp, not an age: correct at any scrape between observations (age = time() - it). Region "*":
        # a provider listed whole. Only places the loop has no list answer for (reconcile/unobserved.py).
        self.unobserved_since = Gauge(
            "awan_unobserved_since_timestamp_seconds",
            "Since when a region (or a provider listed whole) has had no list answer; its workloads are held",
            ["provider", "region"], registry=self.registry)
