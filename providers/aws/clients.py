"""boto3 clients per (service, region) built from ProviderConfig, and the one way to call them:
botocore's own retries off, ours on (providers.retry), every failure mapped to a typed ProviderError.

Why our own retries: botocore retries HTTP 500 InsufficientInstanceCapacity (a stock-out is not
transient, and retrying it hides the signal placement needs) and cannot be bounded per error kind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from providers.aws.errors import from_exception
from providers.config import ProviderConfig
from providers.retry import BACKOFF_BASE_S, with_retries


class AwsClients:
    def __init__(self, cfg: ProviderConfig, *, sleep: Callable[[float], None] = time.sleep,
                 backoff_base: float = BACKOFF_BASE_S) -> None:
        self.cfg = cfg
        self.endpoint = cfg.where
        self._sleep = sleep
        self._base = backoff_base
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}
        self._session: Any = None

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        # A built client is read without the lock: builds take turns under it (a boto3 session is not safe
        # to build clients from at once) and take a while, and the regions asked at once must not queue
        # behind another region's build for a client they already have.
        built = self._clients.get(key)
        if built is not None:
            return built
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._make(service, region)
            return self._clients[key]

    def _make(self, service: str, region: str) -> Any:
        import boto3  # lazy: boto3 costs ~0.3 s to import and most commands never touch AWS
        from botocore.config import Config

        if self._session is None:
            key, secret = self.cfg.secret("access_key_id"), self.cfg.secret("secret_access_key")
            token = self.cfg.secret("session_token") or None
            # No keys in config: boto3's default chain (env, profile, instance role), for real AWS.
            self._session = (boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                                   aws_session_token=token)
                             if key else boto3.session.Session())
        config = Config(retries={"mode": "standard", "total_max_attempts": 1},
                        connect_timeout=self.cfg.timeout_s, read_timeout=self.cfg.timeout_s,
                        user_agent_extra="awan")
        return self._session.client(service, region_name=region, endpoint_url=self.cfg.endpoint, config=config)

    def call(self, service: str, region: str, op: str, *, attempts: int | None = None, **params: Any) -> Any:
        """Call ``op`` (snake_case boto3 name); retry throttling/unavailability with backoff + jitter,
        at most ``cfg.max_attempts`` times; raise the typed ProviderError otherwise."""
        def once() -> Any:
            try:
                return getattr(self.client(service, region), op)(**params)
            except Exception as e:       # noqa: BLE001 - mapped to a typed error or re-raised
                raise from_exception(e, endpoint=self.endpoint, region=region) from e

        return with_retries(once, attempts or self.cfg.max_attempts, base_s=self._base, sleep=self._sleep)

    def pages(self, service: str, region: str, op: str, key: str, **params: Any) -> list[Any]:
        """Every item under ``key`` across NextToken pages, each page called through ``call``."""
        out: list[Any] = []
        token: str | None = None
        while True:
            next_token: dict[str, Any] = {"NextToken": token} if token else {}
            page = self.call(service, region, op, **params, **next_token)
            out.extend(page.get(key, []))
            token = page.get("NextToken")
            if not token:
                return out

    def close(self) -> None:
        with self._lock:
            for c in self._clients.values():
                c.close()
            self._clients.clear()
