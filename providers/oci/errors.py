"""OCI service errors -> Awan's typed provider errors.

OCI answers a stock-out as HTTP 500 ``InternalError`` with the message "Out of host capacity.": the
message is matched before the status-based "server error" rule, or a stock-out would be retried as an outage.
"""

from __future__ import annotations

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

PROVIDER = "oci"
OUT_OF_CAPACITY = ("out of host capacity", "out of capacity")
QUOTA = frozenset({"LimitExceeded", "QuotaExceeded"})
THROTTLED = frozenset({"TooManyRequests"})
AUTH = frozenset({"NotAuthenticated", "NotAuthorized", "SignUpRequired", "InvalidAuthorizationHeader"})
NOT_FOUND = frozenset({"NotAuthorizedOrNotFound", "NotFound", "NamespaceNotFound"})
TRANSIENT = frozenset({"IncorrectState", "ServiceUnavailable", "InternalServerError"})


def _retry_after(headers: object) -> float | None:
    raw = None
    if isinstance(headers, dict) or hasattr(headers, "get"):
        raw = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except (TypeError, ValueError):
        return None


def from_service_error(status: int, code: str, message: str, headers: object, *, endpoint: str,
                       region: str) -> ProviderError:
    kw: ErrorContext = {"provider": PROVIDER, "endpoint": endpoint, "region": region}
    if any(s in message.lower() for s in OUT_OF_CAPACITY):
        return CapacityError(message, code=code or "OutOfHostCapacity", **kw)
    if code in QUOTA:
        return QuotaError(message, code=code, **kw)
    if code in THROTTLED or status == 429:
        return ThrottledError(message, code=code, retry_after=_retry_after(headers), **kw)
    if code in AUTH or status == 401:
        return AuthError(message, code=code, **kw)
    if code in NOT_FOUND or status == 404:
        return NotFoundError(message, code=code, **kw)
    if code in TRANSIENT or status >= 500:
        return UnavailableError(message, code=code, retry_after=_retry_after(headers), **kw)
    return InvalidRequestError(message, code=code, **kw)


def from_exception(e: Exception, *, endpoint: str, region: str) -> ProviderError:
    """Any exception an `oci` SDK call raised, mapped; transport failures are UnavailableError."""
    import oci
    from oci._vendor.requests.exceptions import RequestException  # the SDK ships its own requests

    if isinstance(e, ProviderError):
        return e
    if isinstance(e, oci.exceptions.ServiceError):
        return from_service_error(int(e.status or 0), str(e.code or ""), str(e.message or e), e.headers,
                                  endpoint=endpoint, region=region)
    kw: ErrorContext = {"provider": PROVIDER, "endpoint": endpoint, "region": region}
    if isinstance(e, oci.exceptions.ClientError):     # InvalidConfig, InvalidPrivateKey, ConfigFileNotFound, ...
        return AuthError(f"OCI credentials are not usable: {e}", code=type(e).__name__, **kw)
    if isinstance(e, RequestException):
        # ConnectTimeout, ConnectionError, ReadTimeout
        return UnavailableError(f"cannot reach the OCI API: {e}", code=type(e).__name__, **kw)
    raise e
