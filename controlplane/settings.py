"""Service settings (pydantic-settings): environment variables ``AWAN_*`` or keyword arguments.

Defaults are safe for a laptop: bind to loopback, SQLite file under ``.awan/``. Every field is documented,
one row each, in docs/settings.md (a test keeps that table and this class equal).
"""

from __future__ import annotations

import os
import socket

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DB_URL = "sqlite:///.awan/awan.db"


def _replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AWAN_", extra="ignore")

    db_url: str = DEFAULT_DB_URL
    host: str = "127.0.0.1"                 # loopback unless the operator says otherwise
    port: int = Field(default=8080, ge=0, le=65535)
    # `awan serve`: API worker processes sharing the port (controlplane/api/workers.py); the loop stays one.
    api_workers: int = Field(default=1, ge=1, le=64)
    config: str | None = None               # awan.yaml; None = embedded mock clouds (local only)
    policies: list[str] = Field(default_factory=list)   # policy files loaded when the DB holds none

    # Bounded pools: several replicas share one PostgreSQL without exhausting its connections.
    db_pool_size: int = Field(default=5, ge=1)
    db_max_overflow: int = Field(default=5, ge=0)
    db_pool_timeout_s: float = Field(default=10.0, gt=0)

    reconcile: bool = True                  # run the loop (only the leader acts)
    # `awan serve`: the loop in a child process of its own (off the API's GIL), or inline in the API process.
    controller_process: str = Field(default="process", pattern="^(process|inline)$")
    # `awan serve`: child processes that run only stack runs and observe rounds, so provisioning does not share
    # the placing loop's GIL (controlplane/reconcile/runner.py); PostgreSQL only; 0 (the default): none.
    runner_processes: int = Field(default=0, ge=0, le=16)
    reconcile_interval_s: float = Field(default=2.0, gt=0)
    stack_workers: int = Field(default=4, ge=1)
    provider_concurrency: int = Field(default=4, ge=1)   # stack runs of one provider at once, per replica
    work_lease_ttl_s: float = Field(default=30.0, gt=0)  # a dead replica's stack leases expire after this
    capacity_slow_start: int = Field(default=0, ge=0)    # nodes per unproven pool (capacity_estimates); 0 = off
    # How long interval passes keep the clouds' capacity read for placement (LoopConfig.capacity_keep_s says
    # what reads it again sooner); 0: every interval pass reads the clouds.
    capacity_keep_s: float = Field(default=10.0, ge=0)
    stack_resync_s: float = Field(default=60.0, gt=0)     # re-run an unchanged stack at most this often
    # Edge-triggered passes (docs/deploy.md); False: every pass a full scan, the way back if a change is missed.
    edge_passes: bool = True
    # Edge-triggered passes: a full pass over every row this often (the safety net for the change feed).
    resync_s: float = Field(default=300.0, gt=0)
    observe_interval_s: float | None = Field(default=None, ge=0)   # list the clouds; None: every pass interval
    # Where a committed submit wakes the loop (controlplane/reconcile/wake.py); `awan serve` makes one if unset.
    wake_socket: str | None = None
    retry_base_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    lock_ttl_s: float = Field(default=60.0, gt=0)          # row lock tokens expire after this
    # A Provisioning workload whose pools stay short of nodes this long is re-placed (capacity failure).
    pool_short_bound_s: float = Field(default=180.0, gt=0)

    # SIGTERM: open requests and running stack runs get this long, then the process exits regardless.
    shutdown_grace_s: float = Field(default=10.0, gt=0)
    # An idle keep-alive connection is closed after this long. Longer than the idle expiry of the clients and
    # load balancers in front (httpx 5 s, AWS ALB 60 s): when both sides use the same timeout, a client can
    # send a request on a connection the server is closing that instant and get a reset, not an answer.
    http_keep_alive_s: float = Field(default=75.0, gt=0)
    lease_ttl_s: float = Field(default=15.0, gt=0)
    lease_renew_s: float = Field(default=5.0, gt=0)
    replica_id: str = Field(default_factory=_replica_id)

    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|console)$")
    log_sdk_http: bool = False              # the cloud SDKs' per-request HTTP logs (Azure dumps bodies)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)   # request bodies over this get 413
    # Documents one submit may hold (one transaction, all or nothing); more get 413 naming this limit.
    max_submit_documents: int = Field(default=10_000, ge=1)
    # Worker processes that parse and validate large submit bodies (>= 64 KiB); 0: all in the API process.
    submit_parse_processes: int = Field(default=1, ge=0)
    # The controller process and the parse workers run this many nice steps below the API process, so that
    # on a busy machine the API answers first (controlplane/priority.py); 0: at the API's priority.
    background_nice: int = Field(default=0, ge=0, le=19)

    # TLS: terminate here (cert + key files) or at an ingress/load balancer that sets X-Forwarded-Proto.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    forwarded_allow_ips: str = "127.0.0.1"  # proxies trusted for X-Forwarded-*; "*" behind an ingress
    cookie_secure: bool = False             # mark the dashboard cookie Secure even when the hop is http
