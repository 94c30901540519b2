"""One health roll-up for every adapter, so a cloud's status means the same thing whichever cloud it is.

A region is OK when it answers, DEGRADED when it answers slowly, is impaired, or is throttled (alive
but busy: throttling is not an outage), DOWN when it cannot serve us. The provider is OK when every
region is OK, DOWN only when every region is DOWN, DEGRADED otherwise. Placement excludes DOWN only,
so a throttled cloud stays eligible on every provider alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from providers.errors import ProviderError, ThrottledError
from providers.model import HealthStatus, ProviderHealth

MAX_MESSAGES = 5


def region_status(error: ProviderError) -> HealthStatus:
    """What a failed probe of one region says about it."""
    return HealthStatus.DEGRADED if isinstance(error, ThrottledError) else HealthStatus.DOWN


def overall(regions: Mapping[str, HealthStatus]) -> HealthStatus:
    values = set(regions.values())
    if not values or values == {HealthStatus.OK}:
        return HealthStatus.OK
    if values == {HealthStatus.DOWN}:
        return HealthStatus.DOWN
    return HealthStatus.DEGRADED


def roll_up(provider: str, endpoint: str, regions: Mapping[str, HealthStatus], latency_ms: float,
            problems: Sequence[str] = ()) -> ProviderHealth:
    """The provider's health from its regions' (see the module doc for the rule)."""
    message = "; ".join(problems[:MAX_MESSAGES])
    if len(problems) > MAX_MESSAGES:
        message += f" (+{len(problems) - MAX_MESSAGES} more)"
    return ProviderHealth(provider, endpoint, overall(regions), latency_ms, dict(regions), message)
