"""Compute Engine reservations and future reservations as dated capacity pools.

A *future reservation* (``futureReservations``) is capacity bought for a time window: nothing can be
launched into it before ``timeWindow.startTime``; at the start GCE auto-creates a specific reservation for
it (``status.autoCreatedReservations``), deleted again at the end (its ``deleteAtTime``). Before the start
the pool's ``reservation_id`` is the future reservation's ``reservationName`` (the name GCE will give the
reservation) or, without one, its own name; from the start it is the auto-created reservation's name, which
every launch path (this adapter, the Pulumi programs) can name in a reservationAffinity. The two agree when
the request set ``reservationName``, which ``create_future`` always does. Both phases carry the window's
dates. ``resolve`` still maps a future reservation's name to what it delivered, for a caller holding an
id from before the start.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from providers.catalog import CapacityType
from providers.errors import CapacityError, InvalidRequestError, NotFoundError, ProviderError
from providers.gcp.clients import GoogleApis
from providers.gcp.naming import last_segment, region_of, request_id
from providers.model import CapacityPool

# A future reservation in these states will not deliver (or never did), or is not approved yet: not reported,
# so nothing waits for capacity Google has not agreed to.
_DEAD = {"CANCELLED", "DECLINED", "FAILED", "DRAFTING", "PENDING_APPROVAL"}


def _parse(value: str) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@dataclass(frozen=True, slots=True)
class FutureWindow:
    name: str
    zone: str
    machine_type: str
    total: int
    start: datetime
    end: datetime
    status: str
    pool_id: str                 # what pools report as reservation_id
    delivered: tuple[str, ...]   # names of the auto-created reservations

    @classmethod
    def of(cls, fr: Any) -> FutureWindow | None:
        start = _parse(fr.time_window.start_time)
        if start is None:
            return None
        end = _parse(fr.time_window.end_time) or start + timedelta(seconds=fr.time_window.duration.seconds)
        sku = fr.specific_sku_properties
        return cls(fr.name, last_segment(fr.zone), last_segment(sku.instance_properties.machine_type),
                   int(sku.total_count), start, end, fr.status.procurement_status,
                   fr.reservation_name or fr.name,
                   tuple(last_segment(u) for u in fr.status.auto_created_reservations))


class Reservations:
    def __init__(self, api: GoogleApis) -> None:
        self.api = api

    def futures(self) -> list[FutureWindow]:
        from google.cloud import compute_v1
        request = compute_v1.AggregatedListFutureReservationsRequest(project=self.api.project)
        out: list[FutureWindow] = []
        for _scope, scoped in self.api.call(self.api.compute("FutureReservationsClient").aggregated_list,
                                            request=request):
            out += [w for fr in scoped.future_reservations if (w := FutureWindow.of(fr)) is not None]
        return out

    def pools(self, regions: set[str], now: datetime) -> list[CapacityPool]:
        """Specific reservations (free = count - inUseCount) and future reservations not yet delivered
        (free = totalCount, from their start). A delivered one is reported through its auto-created
        reservation, with the window's dates."""
        from google.cloud import compute_v1
        windows = [w for w in self.futures() if w.status not in _DEAD and region_of(w.zone) in regions]
        by_reservation = {(w.zone, r): w for w in windows for r in w.delivered}
        pools = [CapacityPool("gcp", region_of(w.zone), w.zone, w.machine_type, CapacityType.RESERVED, w.total,
                              reservation_id=w.pool_id, starts_at=w.start, ends_at=w.end)
                 for w in windows if not w.delivered and now < w.end]
        request = compute_v1.AggregatedListReservationsRequest(project=self.api.project)
        for _scope, scoped in self.api.call(self.api.compute("ReservationsClient").aggregated_list,
                                            request=request):
            for r in scoped.reservations:
                zone = last_segment(r.zone)
                if r.status != "READY" or region_of(zone) not in regions or not r.specific_reservation.count:
                    continue
                sr = r.specific_reservation
                w = by_reservation.get((zone, r.name))
                pools.append(CapacityPool(
                    "gcp", region_of(zone), zone, last_segment(sr.instance_properties.machine_type),
                    CapacityType.RESERVED, max(0, int(sr.count) - int(sr.in_use_count)),
                    reservation_id=r.name, starts_at=w.start if w else None,
                    ends_at=w.end if w else _parse(r.delete_at_time)))
        return pools

    def resolve(self, zone: str, reservation_id: str) -> str:
        """The reservation a VM consumes for pool id ``reservation_id``: a reservation of that name, else the
        one a future reservation (by name or reservationName) auto-created. CapacityError before its start."""
        try:
            self.api.call(self.api.compute("ReservationsClient").get, project=self.api.project, zone=zone,
                          reservation=reservation_id, at=region_of(zone))
            return reservation_id
        except NotFoundError:
            pass
        for w in self.futures():
            if w.zone == zone and reservation_id in (w.name, w.pool_id):
                if w.delivered:
                    return w.delivered[0]
                raise CapacityError(f"reservation_id: future reservation {w.name!r} delivers from "
                                    f"{w.start.isoformat()}; nothing can be launched into it before",
                                    provider="gcp", endpoint=self.api.endpoint, region=region_of(zone),
                                    code="futureReservationNotStarted")
        return reservation_id      # unknown: GCE refuses the insert with a clear error naming it

    def get_future(self, zone: str, name: str) -> FutureWindow | None:
        try:
            fr = self.api.call(self.api.compute("FutureReservationsClient").get, project=self.api.project,
                               zone=zone, future_reservation=name, at=region_of(zone))
        except NotFoundError:
            return None
        return FutureWindow.of(fr)

    def create_future(self, zone: str, name: str, machine_type: str, count: int, start: datetime, end: datetime,
                      *, reservation_name: str = "", idempotency_key: str = "", calendar: bool = False) -> FutureWindow:
        """Request ``count`` VMs of ``machine_type`` in ``zone`` for [start, end). Idempotent by
        ``idempotency_key`` (the requestId) and by name (an existing one is returned as it is). The
        reservation GCE creates at the start is named ``reservation_name`` (default: ``name``), so the pool
        keeps one id across the start."""
        from google.cloud import compute_v1
        body = compute_v1.FutureReservation(
            name=name, reservation_name=reservation_name or name,
            specific_sku_properties=compute_v1.FutureReservationSpecificSKUProperties(
                total_count=count, instance_properties=compute_v1.AllocationSpecificSKUAllocationReservedInstanceProperties(
                    machine_type=machine_type)),
            time_window=compute_v1.FutureReservationTimeWindow(
                start_time=start.isoformat().replace("+00:00", "Z"), end_time=end.isoformat().replace("+00:00", "Z")),
            auto_delete_auto_created_reservations=True,
            reservation_mode="CALENDAR" if calendar else None)
        client = self.api.compute("FutureReservationsClient")
        insert = compute_v1.InsertFutureReservationRequest(
            project=self.api.project, zone=zone, future_reservation_resource=body,
            request_id=request_id(f"future/{zone}/{name}/{idempotency_key}", 0) if idempotency_key
            else str(uuid.uuid4()))
        try:
            op = self.api.call(client.insert, request=insert, at=region_of(zone))
            self.api.wait_compute("zones", last_segment(op.zone) or zone, op.name, region_of(zone))
        except InvalidRequestError as e:
            if e.code != "alreadyExists":
                raise
        got = FutureWindow.of(self.api.call(client.get, project=self.api.project, zone=zone,
                                            future_reservation=name, at=region_of(zone)))
        if got is None:
            raise ProviderError(f"future reservation {name!r} came back without timeWindow.startTime",
                                provider="gcp", endpoint=self.api.endpoint, region=region_of(zone))
        return got
