"""Map what the Google SDKs raise (and what GCE operations report) onto providers.errors.

Synchronous errors arrive as google.api_core exceptions carrying the HTTP status and the ``errors[].reason``
list; stock-outs and quota breaches arrive later, in a finished zone operation's ``error.errors[].code``; TPU
operations carry a google.rpc.Status. Connection failures come straight from ``requests``.
"""

from __future__ import annotations

from typing import Any

from providers.errors import (
    AuthError,
    CapacityError,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    QuotaError,
    ThrottledError,
    UnavailableError,
)

CAPACITY_CODES = {"ZONE_RESOURCE_POOL_EXHAUSTED", "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
                  "RESOURCE_POOL_EXHAUSTED", "STOCKOUT", "stockout"}
QUOTA_CODES = {"QUOTA_EXCEEDED", "quotaExceeded", "QUOTA_LIMIT_EXCEEDED"}
THROTTLE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"}
RPC_RESOURCE_EXHAUSTED = 8


def _retry_after(e: Any) -> float | None:
    response = getattr(e, "response", None)
    value = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _reasons(e: Any) -> list[str]:
    return [str(x.get("reason", "")) for x in (getattr(e, "errors", None) or []) if isinstance(x, dict)]


def map_exception(e: BaseException, *, endpoint: str, region: str = "") -> ProviderError:
    """One SDK exception as a typed provider error naming provider, endpoint, region and the cloud's code."""
    if isinstance(e, ProviderError):
        return e
    from google.api_core import exceptions as gexc
    from requests import exceptions as rexc

    where: dict[str, Any] = {"provider": "gcp", "endpoint": endpoint, "region": region}
    if isinstance(e, rexc.RequestException | ConnectionError | TimeoutError | gexc.RetryError):
        return UnavailableError(f"cannot reach the API: {type(e).__name__}: {e}", code="connection", **where)
    if not isinstance(e, gexc.GoogleAPICallError):
        return ProviderError(f"unexpected {type(e).__name__}: {e}", **where)
    reasons = _reasons(e)
    code = reasons[0] if reasons else (getattr(e, "reason", None) or str(e.code or ""))
    message = getattr(e, "message", str(e))
    status = int(e.code or 0)
    if any(r in CAPACITY_CODES for r in reasons):
        return CapacityError(message, code=code, **where)
    if any(r in QUOTA_CODES for r in reasons) or (status == 403 and "quota" in message.lower()):
        return QuotaError(message, code=code, **where)
    if status == 429 or any(r in THROTTLE_REASONS for r in reasons):
        return ThrottledError(message, code=code or "429", retry_after=_retry_after(e), **where)
    if status in (401, 403):
        return AuthError(message, code=code, **where)
    if status == 404:
        return NotFoundError(message, code=code, **where)
    if status in (400, 409, 412):
        return InvalidRequestError(message, code=code, **where)
    if status >= 500 or status == 0:
        return UnavailableError(message, code=code, retry_after=_retry_after(e), **where)
    return ProviderError(message, code=code, **where)


def operation_error(errors: list[tuple[str, str]], http_status: int, *, endpoint: str,
                    region: str) -> ProviderError:
    """A finished GCE operation's error list [(code, message)] as a typed error."""
    where: dict[str, Any] = {"provider": "gcp", "endpoint": endpoint, "region": region}
    code, message = errors[0] if errors else (str(http_status), "operation failed")
    codes = {c for c, _ in errors}
    if codes & CAPACITY_CODES:
        return CapacityError(message, code=next(iter(codes & CAPACITY_CODES)), **where)
    if codes & QUOTA_CODES:
        return QuotaError(message, code=next(iter(codes & QUOTA_CODES)), **where)
    if http_status == 404 or code == "RESOURCE_NOT_FOUND":
        return NotFoundError(message, code=code, **where)
    if http_status in (400, 409, 412):
        return InvalidRequestError(message, code=code, **where)
    if http_status in (401, 403):
        return AuthError(message, code=code, **where)
    return UnavailableError(message, code=code, **where)


def rpc_status_error(code: int, message: str, *, endpoint: str, region: str) -> ProviderError:
    """A TPU long-running operation's google.rpc.Status as a typed error."""
    where: dict[str, Any] = {"provider": "gcp", "endpoint": endpoint, "region": region}
    if code == RPC_RESOURCE_EXHAUSTED:
        if "quota" in message.lower():
            return QuotaError(message, code="RESOURCE_EXHAUSTED", **where)
        return CapacityError(message, code="RESOURCE_EXHAUSTED", **where)
    if code == 5:
        return NotFoundError(message, code="NOT_FOUND", **where)
    if code in (3, 6, 9, 11):
        return InvalidRequestError(message, code=str(code), **where)
    if code in (7, 16):
        return AuthError(message, code=str(code), **where)
    return UnavailableError(message, code=str(code), **where)
