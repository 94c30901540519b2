"""Google API errors as the fake raises them; ``responses_common.error_response`` renders them."""

from __future__ import annotations

# HTTP status -> the canonical google.rpc status name Google puts in error bodies.
CANONICAL = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
             409: "ALREADY_EXISTS", 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED",
             500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


class GoogleApiError(Exception):
    """A synchronous HTTP error: ``{"error": {"code", "message", "status", "errors": [{"reason"}]}}``."""

    def __init__(self, status: int, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.retry_after = status, reason, message, retry_after


def not_found(what: str) -> GoogleApiError:
    return GoogleApiError(404, "notFound", f"The resource '{what}' was not found")


def invalid(message: str) -> GoogleApiError:
    return GoogleApiError(400, "invalid", message)
