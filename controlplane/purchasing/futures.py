"""Google Cloud future reservations as something to buy: what one that serves a waiting workload would be
(zone, machine type, VM count, window) and what it costs.

GCE has no offerings to list for them (the "future availability" view is not in the Compute v1 API the
adapter uses), so the controller proposes a *request*: the cheapest zone the policy allows, starting as soon
as GCP accepts one, for the demand's length. Google may still decline it; the buying step then records the
decline (buying.py). The rules modelled are those of requests in calendar mode (GPU VMs for a fixed window,
the reservation and its VMs deleted at the end), from "About future reservation requests in calendar
mode" (docs.cloud.google.com/compute/docs/instances/future-reservations-calendar-mode-overview): a window of
1 to 90 days, a GPU start at least 87 hours ahead, and no further ahead than future availability is shown
(120 days).

Price: the catalog's on-demand price of the machine type in that zone, for every VM over the whole window
(a future reservation is paid for while it exists, used or not). A committed-use discount would lower it;
Awan does not know the account's commitments, so the proposal shows the undiscounted price, which the budget
and maxPricePerGpuHour are checked against (an upper bound, never an underestimate)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from controlplane.purchasing.model import FutureTarget
from providers.capabilities import CapacityBlockOffer
from providers.catalog import CapacityType, Catalog

MIN_LEAD = timedelta(hours=87)       # GPU machine types: the earliest start GCP accepts
MAX_LEAD = timedelta(days=120)
MIN_HOURS, MAX_HOURS = 24, 90 * 24
PREFIX = "future-reservation:"        # the offering id of a proposed request (there is no cloud offering id)


def earliest_start(now: datetime, lead_min: timedelta) -> datetime:
    """The first whole hour at least max(leadTime.min, 87h) from now."""
    at = now + max(lead_min, MIN_LEAD)
    whole = at.replace(minute=0, second=0, microsecond=0)
    return whole if whole == at else whole + timedelta(hours=1)


def window_hours(hours: int) -> int:
    return max(MIN_HOURS, hours)


def zones_for(t: FutureTarget, region: str, cat: Catalog) -> list[tuple[str, float]]:
    """(zone, on-demand price per VM-hour) of the zones the target allows in ``region``, cheapest first."""
    out = {o.zone: o.price_per_hour for o in cat.for_provider(t.provider)
           if o.region == region and o.instance_type == t.instance_type
           and o.capacity_type == CapacityType.ON_DEMAND and (not t.zones or o.zone in t.zones)}
    return sorted(out.items(), key=lambda zp: (zp[1], zp[0]))


def request_for(t: FutureTarget, region: str, zone: str, price_per_hour: float, gpus: int, hours: int,
                start: datetime) -> CapacityBlockOffer:
    """The request as an offer: the same facts a Capacity Block offering has (where, what, how many, when,
    how long, what it costs), so proposals of both kinds are compared and recorded alike."""
    count = math.ceil(gpus / t.gpus_per_node)
    return CapacityBlockOffer(f"{PREFIX}{zone}/{t.instance_type}x{count}", region, zone, t.instance_type, count,
                              start, start + timedelta(hours=hours), hours,
                              round(price_per_hour * count * hours, 2))
