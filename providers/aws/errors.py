"""EC2 / Service Quotas error codes -> Awan's typed provider errors.

Order matters: InsufficientInstanceCapacity arrives as HTTP 500, so capacity codes are matched before
the status-based "server error" rule.
"""

from __future__ import annotations

from typing import Any

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

CAPACITY = frozenset({"InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity",
                      "InsufficientReservedInstanceCapacity", "InsufficientCapacityOnHost",
                      "ReservationCapacityExceeded", "Unsupported", "SpotMaxPriceTooLow"})
QUOTA = frozenset({"VcpuLimitExceeded", "InstanceLimitExceeded", "MaxSpotInstanceCountExceeded",
                   "ReservationLimitExceeded", "ServiceQuotaExceededException", "CapacityBlockLimitExceeded"})
THROTTLED = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException",
                       "SlowDown", "EC2ThrottledException"})
UNAVAILABLE = frozenset({"Unavailable", "ServiceUnavailable", "ServiceUnavailableException", "InternalError",
                         "InternalFailure", "InternalServerError"})
AUTH = frozenset({"AuthFailure", "UnauthorizedOperation", "InvalidClientTokenId", "UnrecognizedClientException",
                  "SignatureDoesNotMatch", "AccessDenied", "AccessDeniedException", "ExpiredToken",
                  "OptInRequired", "Blocked"})
NOT_FOUND = frozenset({"NoSuchResourceException", "InvalidPlacementGroup.Unknown"})


def _retry_after(response: dict[str, Any]) -> float | None:
    raw = (response.get("ResponseMetadata") or {}).get("HTTPHeaders", {}).get("retry-after")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None     # an HTTP date: fall back to our own backoff


def from_client_error(e: Any, *, endpoint: str, region: str) -> ProviderError:
    """A botocore ClientError as the matching ProviderError (provider, endpoint, region and code filled)."""
    err = e.response.get("Error") or {}
    code = str(err.get("Code") or "Unknown")
    message = str(err.get("Message") or e)
    status = int((e.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    kw: ErrorContext = {"provider": "aws", "endpoint": endpoint, "region": region}
    if code in CAPACITY:
        return CapacityError(message, code=code, **kw)
    if code in QUOTA:
        return QuotaError(message, code=code, **kw)
    if code in THROTTLED or status == 429:
        return ThrottledError(message, code=code, retry_after=_retry_after(e.response), **kw)
    if code in AUTH or status in (401, 403):
        return AuthError(message, code=code, **kw)
    if code in NOT_FOUND or code.endswith(".NotFound"):
        return NotFoundError(message, code=code, **kw)
    if code in UNAVAILABLE or status >= 500:
        return UnavailableError(message, code=code, retry_after=_retry_after(e.response), **kw)
    return InvalidRequestError(message, code=code, **kw)


def from_exception(e: Exception, *, endpoint: str, region: str) -> ProviderError:
    """Any exception raised by a boto3 call, mapped; transport failures are UnavailableError."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        ParamValidationError,
        PartialCredentialsError,
    )

    if isinstance(e, ProviderError):
        return e
    if isinstance(e, ClientError):
        return from_client_error(e, endpoint=endpoint, region=region)
    kw: ErrorContext = {"provider": "aws", "endpoint": endpoint, "region": region}
    if isinstance(e, NoCredentialsError | PartialCredentialsError):
        return AuthError(f"no usable AWS credentials: {e}", code="NoCredentials", **kw)
    if isinstance(e, ParamValidationError):
        return InvalidRequestError(str(e), code="ParamValidation", **kw)
    if isinstance(e, BotoCoreError):
        # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError, ...
        return UnavailableError(f"cannot reach the EC2 API: {e}", code=type(e).__name__, **kw)
    raise e
