"""Wire a Controller for a running service: the engine (Pulumi where its CLI is, else the local engine,
with stack state in the store), the leader elector and the loop settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controlplane.reconcile.controller import Controller, LoopConfig
from controlplane.reconcile.leader import LeaderElector
from controlplane.store.stack_state import DbStackStateStore
from providers.breaker import guard_all

if TYPE_CHECKING:
    from infra.engines.select import EngineKind
    from providers.config import AwanConfig


def stack_config(config: AwanConfig | None) -> dict[str, dict[str, str]]:
    """Provider settings the stack programs read (gcp project, azure resource group, k8s namespace)."""
    out: dict[str, dict[str, str]] = {}
    if config is None:      # a service built without a config file (tests, tools): no settings
        return out
    for p in config.providers.values():
        d = {"resource_group": p.resource_group, "namespace": p.namespace}
        if p.project:
            d["project"] = p.project
        if p.subscription:
            d["subscription"] = p.subscription
        if p.tenancy:
            d["compartment"] = p.compartment or p.tenancy
        if p.secret("ssh_public_key"):      # a public key: safe in the stack's config
            d["ssh_public_key"] = p.secret("ssh_public_key")
        out[p.name] = d
    from infra.spec import cluster_setting

    for c in config.clusters:   # the cluster each region's stack makes and its nodes join
        name = f"{c.name}-{{region}}" if c.endpoint and "{region}" in c.endpoint else c.name
        for glob in c.regions:
            out.setdefault(c.provider, {}).setdefault(cluster_setting(glob), name)
    return out


def build_controller(ctx: Any, engine: Any = None, *, engine_kind: EngineKind = "auto", runner: bool = False,
                     **overrides: Any) -> Controller:
    """``engine_kind``: which engine to build when none is given (it shares the guarded providers);
    ``runner``: a runner process's Controller (runner.py: never the leader, no wake socket of its own);
    ``overrides``: Controller keyword arguments (``place``, ``snapshot``) for tests and tools."""
    s = ctx.settings
    # Every call of the loop and the engine goes through a per-provider circuit breaker: one sick cloud
    # fails fast instead of stalling each pass on its retries. One set per process: the API, the loop and
    # the engine share these (the engine builds no adapters of its own).
    guarded = guard_all(ctx.providers)
    ctx.providers = guarded
    if engine is None:
        from infra.engines.select import select_engine

        # The engine takes the process's guarded set: its create_nodes and capability calls go through the
        # same breaker, retries and metrics as the loop's and the API's (no second set of adapters).
        engine = select_engine(engine_kind, config=ctx.config, store=DbStackStateStore(ctx.db),
                               providers=guarded)
    from controlplane.reconcile.runner import NeverLeads, runner_processes

    elector = (NeverLeads(ctx.db, s.replica_id) if runner
               else LeaderElector(ctx.db, s.replica_id, ttl_s=s.lease_ttl_s, renew_s=s.lease_renew_s))
    cfg = LoopConfig(interval_s=s.reconcile_interval_s, stack_workers=s.stack_workers, resync_s=s.stack_resync_s,
                     retry_base_s=s.retry_base_s, retry_max_s=s.retry_max_s, lock_ttl_s=s.lock_ttl_s,
                     short_bound_s=s.pool_short_bound_s, provider_concurrency=s.provider_concurrency,
                     work_lease_ttl_s=s.work_lease_ttl_s, capacity_slow_start=s.capacity_slow_start,
                     capacity_keep_s=s.capacity_keep_s,
                     full_resync_s=s.resync_s, edge=s.edge_passes,
                     observe_s=s.reconcile_interval_s if s.observe_interval_s is None else s.observe_interval_s,
                     wake_socket=None if runner else s.wake_socket, stack_config=stack_config(ctx.config),
                     stacks_to_runners=not runner and runner_processes(s) > 0)
    if "clusters" not in overrides and ctx.config is not None:
        from controlplane.dispatch.clusters import ClusterSet

        overrides["clusters"] = ClusterSet(ctx.config)
    from controlplane.reconcile.admitting import QueueSource

    overrides.setdefault("queues", QueueSource(ctx.policies.document).current)
    from controlplane.purchasing import PurchasingSource

    overrides.setdefault("purchasing", PurchasingSource(ctx.policies.document).current)
    return Controller(ctx.db, guarded, engine, elector=elector, policies=ctx.policies.current,
                      config=cfg, metrics=ctx.metrics, **overrides)
