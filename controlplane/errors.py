"""What the service layer raises when it refuses a request, in the service's own words.

The use cases (``controlplane.api.workload_service`` and the like) run behind the HTTP API, the CLI's
in-process paths, benchmarks and tests; none of those but the API speaks HTTP. So they raise these, and
the HTTP edge (``controlplane.api.app``) maps each kind to its status code once. Every message is one
line that names the field or the subject, the same text the API returns as ``detail``.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A request the service refuses. ``str(e)`` is the message a user sees."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(ServiceError):
    """The subject does not exist, or is not visible to the caller (another team's workload)."""


class Conflict(ServiceError):
    """The request contradicts what is stored (a name taken, an ambiguous name, a concurrent change)."""


class Forbidden(ServiceError):
    """The caller's token may not do this (another team, a role too low)."""


class Invalid(ServiceError):
    """Bad input: ``field`` names where it is (a field path, or the document it came from)."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}" if field else why)
        self.field = field
        self.why = why

    @classmethod
    def from_message(cls, message: str) -> Invalid:
        """From a message that already reads "<field>: <why>" (a ManifestError's), with the same text."""
        field, sep, why = message.partition(": ")
        return cls(field, why) if sep else cls("", message)


class TooLarge(ServiceError):
    """More than the service takes in one request (documents in a submit, ...)."""


class Unavailable(ServiceError):
    """Something the service needs to decide is not available now (stored policies that cannot be read);
    retrying later may succeed."""
