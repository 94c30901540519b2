"""Azure's errors mapped onto Awan's typed errors, and the one retry loop for Azure calls.

ARM reports what went wrong in ``error.code``; the HTTP status alone is not enough: an allocation that
fails inside a long-running operation arrives as the poller's error with the *poll's* status (200) and
code AllocationFailed. So codes are checked first, statuses second.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from providers.errors import (
    AuthError,
    CapacityError,
    ErrorContext,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    QuotaError,
    ThrottledError,
    UnavailableError,
)
from providers.retry import with_retries

T = TypeVar("T")
PROVIDER = "azure"
MAX_WAIT_S = 60.0   # never sleep longer than this between attempts, whatever Retry-After says

CAPACITY_CODES = frozenset({"SkuNotAvailable", "AllocationFailed", "ZonalAllocationFailed",
                            "OverconstrainedAllocationRequest", "OverconstrainedZonalAllocationRequest"})
QUOTA_CODES = frozenset({"QuotaExceeded", "OperationNotAllowedQuotaExceeded"})
THROTTLE_CODES = frozenset({"TooManyRequests", "SubscriptionRequestsThrottled", "ResourceRequestsThrottled"})
AUTH_CODES = frozenset({"InvalidAuthenticationToken", "AuthenticationFailed", "ExpiredAuthenticationToken",
                        "AuthorizationFailed", "InvalidAuthenticationTokenTenant"})
NOT_FOUND_CODES = frozenset({"ResourceNotFound", "NotFound", "ResourceGroupNotFound"})


def _retry_after(e: Exception) -> float | None:
    response = getattr(e, "response", None)
    raw = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(raw) if raw is not None else None
    except ValueError:      # an HTTP date: not worth parsing, the backoff covers it
        return None


def translate(e: Exception, *, endpoint: str, region: str = "") -> ProviderError:
    """One azure.core exception -> the matching providers.errors type, with the ARM code kept."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    kw: ErrorContext = {"provider": PROVIDER, "endpoint": endpoint, "region": region}
    if isinstance(e, ProviderError):
        return e
    if isinstance(e, (ServiceRequestError, ServiceResponseError)):
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return UnavailableError(f"cannot reach the Azure endpoint {endpoint}: {first}",
                                code=type(e).__name__, **kw)
    if not isinstance(e, HttpResponseError):
        return InvalidRequestError(f"unexpected error: {e}", **kw)
    status = e.status_code or 0
    err = e.error
    code = (err.code if err is not None else None) or ""
    message = (err.message if err is not None else None) or e.message or f"HTTP {status}"
    message = message.splitlines()[0]
    if code in CAPACITY_CODES:
        return CapacityError(message, code=code, **kw)
    if code in QUOTA_CODES or (code == "OperationNotAllowed" and "quota" in message.lower()):
        return QuotaError(message, code=code, **kw)
    if status == 429 or code in THROTTLE_CODES:
        return ThrottledError(message, code=code or "TooManyRequests", retry_after=_retry_after(e), **kw)
    if status in (401, 403) or code in AUTH_CODES:
        return AuthError(f"credentials refused: {message}", code=code or str(status), **kw)
    if status == 404 or code in NOT_FOUND_CODES:
        return NotFoundError(message, code=code or "NotFound", **kw)
    if status >= 500:
        return UnavailableError(message, code=code or str(status), retry_after=_retry_after(e), **kw)
    return InvalidRequestError(message, code=code or str(status), **kw)


class RetryPolicy:
    """Exponential backoff with jitter for throttled/unavailable calls only, waiting at least what
    Retry-After asks (capped at MAX_WAIT_S); at most ``max_attempts`` tries. The SDK's own retry is switched
    off (retry_total=0), so this is the only loop and the attempt bound is real."""

    def __init__(self, max_attempts: int, base_wait_s: float = 0.5) -> None:
        self.max_attempts = max(1, max_attempts)
        self.base_wait_s = base_wait_s

    def call(self, fn: Callable[[], T], *, endpoint: str, region: str = "") -> T:
        from azure.core.exceptions import AzureError

        def attempt() -> T:
            try:
                return fn()
            except AzureError as e:     # every SDK error leaves here typed; our own bugs stay visible
                raise translate(e, endpoint=endpoint, region=region) from e

        return with_retries(attempt, self.max_attempts, base_s=self.base_wait_s, cap_s=MAX_WAIT_S)
