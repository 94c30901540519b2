"""Pulumi engine failures -> the shared provider errors, so a stock-out or a quota refusal under the
Pulumi engine triggers failover exactly as it does under the local engine.

``pulumi up`` fails with a CommandError whose text carries the cloud's own error code inside the
provider plugin's message, e.g. ``creating EC2 Instance: operation error EC2: RunInstances, https
response error StatusCode: 500, ..., api error InsufficientInstanceCapacity: We currently do not have
sufficient p5.48xlarge capacity...``. The codes are matched as whole words in that text.
"""

from __future__ import annotations

import re

from providers.errors import CapacityError, ErrorContext, ProviderError, QuotaError, ThrottledError

# The clouds' own codes (EC2, GCE, ARM, and the words CoreWeave's NodePool status uses).
CAPACITY_CODES = (
    "InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity",
    "InsufficientReservedInstanceCapacity", "ReservationCapacityExceeded",
    "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS", "ZONE_RESOURCE_POOL_EXHAUSTED", "STOCKOUT",
    "SkuNotAvailable", "ZonalAllocationFailed", "AllocationFailed", "OverconstrainedAllocationRequest",
    "OverconstrainedZonalAllocationRequest", "InsufficientCapacityBlockOffering",
)
QUOTA_CODES = (
    "VcpuLimitExceeded", "InstanceLimitExceeded", "MaxSpotInstanceCountExceeded", "ReservationLimitExceeded",
    "CapacityBlockLimitExceeded", "ServiceQuotaExceededException", "QUOTA_EXCEEDED", "quotaExceeded",
    "QuotaExceeded", "OperationNotAllowedQuotaExceeded",
)
THROTTLE_CODES = ("RequestLimitExceeded", "Throttling", "ThrottlingException", "rateLimitExceeded",
                  "TooManyRequests", "SubscriptionRequestsThrottled")
# ARM says quota in prose under a generic code: "Operation could not be completed as it results in
# exceeding approved standardNDSH100v5Family Cores quota".
_ARM_QUOTA = re.compile(r"exceeding approved \S+ (Cores )?quota", re.IGNORECASE)


def _find(codes: tuple[str, ...], text: str) -> str:
    for code in codes:
        if re.search(rf"(?<![A-Za-z0-9_]){re.escape(code)}(?![A-Za-z0-9_])", text):
            return code
    return ""


def _summary(text: str, code: str) -> str:
    """The line that names the code, trimmed: the whole CommandError is pages of plugin output."""
    line = next((ln.strip() for ln in text.splitlines() if code and code in ln), text.strip().splitlines()[-1]
                if text.strip() else "")
    return line[:400]


def map_pulumi_error(text: str, *, provider: str, region: str) -> ProviderError | None:
    """The typed error a failed ``pulumi up`` stands for, or None when it is not a capacity, quota or
    throttling answer (a bug, bad credentials, an invalid program: the engine reports those as is)."""
    where: ErrorContext = {"provider": provider, "endpoint": "", "region": region}
    if code := _find(CAPACITY_CODES, text):
        return CapacityError(_summary(text, code), code=code, **where)
    if code := _find(QUOTA_CODES, text):
        return QuotaError(_summary(text, code), code=code, **where)
    if m := _ARM_QUOTA.search(text):
        return QuotaError(_summary(text, m.group(0)), code="OperationNotAllowed", **where)
    if code := _find(THROTTLE_CODES, text):
        return ThrottledError(_summary(text, code), code=code, **where)
    return None
