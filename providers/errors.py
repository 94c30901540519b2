"""Typed provider errors, shared by every adapter, so callers branch on meaning, never on strings.

Each adapter maps its cloud's own error (InsufficientInstanceCapacity, ZONE_RESOURCE_POOL_EXHAUSTED,
SkuNotAvailable/AllocationFailed, a pending Kubernetes node) onto one of these.
"""

from __future__ import annotations

from typing import TypedDict


class ErrorContext(TypedDict):
    """Where an error happened, as keyword arguments for any ProviderError (``Error(msg, code=..., **ctx)``);
    typed so a shared ``ctx`` dict is checked against the constructor's keywords. ``code`` is left out on
    purpose: it differs per error, and a key that may be in ``ctx`` could be passed twice."""

    provider: str
    endpoint: str
    region: str


class ProviderError(Exception):
    """Base of every error an adapter raises. ``provider`` and ``endpoint`` name where it happened."""

    retryable = False
    reason = "provider-error"

    def __init__(self, message: str, *, provider: str = "", endpoint: str = "", region: str = "",
                 code: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.endpoint = endpoint
        self.region = region
        self.code = code            # the cloud's own error code, kept for explanations
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = " ".join(x for x in (self.provider, self.region) if x)
        at = f" at {self.endpoint}" if self.endpoint else ""
        code = f" [{self.code}]" if self.code else ""
        return f"{where}{at}: {self.message}{code}" if where or at else f"{self.message}{code}"


class CapacityError(ProviderError):
    """The cloud has no capacity for this request right now (a stock-out)."""

    reason = "no-capacity"


class QuotaError(ProviderError):
    """The account's quota would be exceeded."""

    reason = "no-quota"


class ThrottledError(ProviderError):
    """Rate limited (429/503 with Retry-After, RequestLimitExceeded)."""

    retryable = True
    reason = "throttled"


class UnavailableError(ProviderError):
    """The endpoint or region does not answer, or answers with a server error."""

    retryable = True
    reason = "unavailable"


class AuthError(ProviderError):
    """Credentials missing, wrong or not allowed to do this."""

    reason = "auth"


class InvalidRequestError(ProviderError):
    """The request is malformed or names something that does not exist."""

    reason = "invalid"


class NotFoundError(ProviderError):
    """The resource does not exist (already deleted, or never created)."""

    reason = "not-found"


def is_capacity_error(e: BaseException) -> bool:
    return isinstance(e, CapacityError)


def is_retryable(e: BaseException) -> bool:
    return isinstance(e, ProviderError) and e.retryable
