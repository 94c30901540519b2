"""Compute Engine reservations and future reservations, by the mock clock.

A future reservation (``futureReservations``) asks for ``specificSkuProperties.totalCount`` VMs of one
machine type in one zone for a ``timeWindow`` (startTime, endTime or duration). The mock approves it at
once (GCE's calendar-mode GPU requests are approved automatically when capacity exists). At startTime
GCE *auto-creates* a specific reservation for it (named ``reservationName`` if the request gave one, else
``<namePrefix or name>-<yyyymmdd>-0001``) and lists it in ``status.autoCreatedReservations``; before that
there is nothing to launch into. At endTime the auto-created reservation is deleted and the VMs that
consume it are stopped (TERMINATED), as GCE does when a calendar-mode reservation's period ends.

Time is applied lazily (``advance``) before every request is answered, like the AWS mock's blocks.
The capacity a future reservation delivers is procured for it and does not come out of the zone's
on-demand ledger; VMs consuming a reservation are not held against the regional GPU quota (the mock's
simplification of GCE charging the reservation instead).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from mockclouds.clock import MockClock
from mockclouds.gcp.errors import GoogleApiError, invalid, not_found

if TYPE_CHECKING:
    from mockclouds.gcp.compute import ComputeModel, Operation

_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_PREFIX = re.compile(r"[a-z]([-a-z0-9]{0,18}[a-z0-9])?")     # GCE caps namePrefix at 20 characters
# statuses in which a future reservation still delivers (or has delivered) capacity
LIVE = ("APPROVED", "PROVISIONING", "FULFILLED")


@dataclass
class Reservation:
    id: str
    project: str
    zone: str
    name: str
    machine_type: str
    count: int
    created: str
    in_use: int = 0
    future: str = ""                         # the future reservation that auto-created it
    delete_at: datetime | None = None        # deleteAtTime: the end of its future reservation's window


@dataclass
class FutureReservation:
    id: str
    project: str
    zone: str
    name: str
    machine_type: str
    total_count: int
    start: datetime
    end: datetime
    created: str
    name_prefix: str = ""
    reservation_name: str = ""
    status: str = "APPROVED"
    auto_created: list[str] = field(default_factory=list)
    ended: bool = False
    mode: str = ""                  # reservationMode as requested (CALENDAR, DEFAULT), echoed back


def _time(value: object, what: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise invalid(f"Invalid value for field 'resource.timeWindow.{what}': required (RFC 3339)")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"Invalid value for field 'resource.timeWindow.{what}': '{value}' is not RFC 3339") from None
    if at.tzinfo is None:
        raise invalid(f"Invalid value for field 'resource.timeWindow.{what}': '{value}' needs a time zone")
    return at


def _duration(value: object) -> timedelta:
    secs = value.get("seconds") if isinstance(value, dict) else None
    try:
        return timedelta(seconds=int(secs or 0))
    except (TypeError, ValueError):
        raise invalid("Invalid value for field 'resource.timeWindow.duration.seconds'") from None


class ReservationModel:
    def __init__(self, compute: ComputeModel, clock: MockClock, lock: threading.RLock) -> None:
        self.compute, self.clock, self.lock = compute, clock, lock
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.reservations: dict[tuple[str, str, str], Reservation] = {}
            self.futures: dict[tuple[str, str, str], FutureReservation] = {}

    # -- future reservations -------------------------------------------------------------------
    def insert_future(self, project: str, zone: str, body: dict, request_id: str | None) -> Operation:
        self.compute.check_zone(zone)
        with self.lock:
            if (seen := self.compute._idempotent(project, request_id)) is not None:
                return seen
            name = str(body.get("name") or "")
            if not _NAME.fullmatch(name):
                raise invalid(f"Invalid value for field 'resource.name': '{name}'")
            sku = body.get("specificSkuProperties") or {}
            props = sku.get("instanceProperties") or {}
            mt = str(props.get("machineType") or "").rsplit("/", 1)[-1]
            if mt not in self.compute.zone_types.get(zone, []):
                raise invalid(f"Invalid value for field 'resource.specificSkuProperties.instanceProperties."
                              f"machineType': '{mt}'. Machine type {mt} does not exist in zone {zone}.")
            try:
                total = int(sku.get("totalCount") or 0)
            except (TypeError, ValueError):
                total = 0
            if total < 1:
                raise invalid("Invalid value for field 'resource.specificSkuProperties.totalCount': must be >= 1")
            window = body.get("timeWindow") or {}
            start = _time(window.get("startTime"), "startTime")
            end = _time(window["endTime"], "endTime") if window.get("endTime") else start + _duration(
                window.get("duration"))
            if end <= start:
                raise invalid("Invalid value for field 'resource.timeWindow': endTime must be after startTime")
            if start < self.clock.now():
                raise invalid(f"Invalid value for field 'resource.timeWindow.startTime': "
                              f"'{window.get('startTime')}' is in the past")
            prefix = str(body.get("namePrefix") or "")
            if prefix and not _PREFIX.fullmatch(prefix):
                raise invalid(f"Invalid value for field 'resource.namePrefix': '{prefix}'")
            rname = str(body.get("reservationName") or "")
            if rname and not _NAME.fullmatch(rname):
                raise invalid(f"Invalid value for field 'resource.reservationName': '{rname}'")
            if (project, zone, name) in self.futures:
                raise GoogleApiError(409, "alreadyExists", f"The resource 'projects/{project}/zones/{zone}/"
                                     f"futureReservations/{name}' already exists")
            op = self.compute._operation(project, "zones", zone, "insert",
                                         f"projects/{project}/zones/{zone}/futureReservations/{name}")
            if request_id:
                self.compute.request_ids[(project, request_id)] = op.name
            mode = str(body.get("reservationMode") or "")
            if mode not in ("", "CALENDAR", "DEFAULT"):
                raise invalid(f"Invalid value for field 'resource.reservationMode': '{mode}'")
            self.futures[(project, zone, name)] = FutureReservation(
                self.compute.new_id(), project, zone, name, mt, total, start, end, self.clock.now().isoformat(),
                prefix, rname, mode=mode)
            return op

    def get_future(self, project: str, zone: str, name: str) -> FutureReservation:
        self.compute.check_zone(zone)
        with self.lock:
            fr = self.futures.get((project, zone, name))
            if fr is None:
                raise not_found(f"projects/{project}/zones/{zone}/futureReservations/{name}")
            return fr

    def list_futures(self, project: str, zone: str | None) -> list[FutureReservation]:
        if zone is not None:
            self.compute.check_zone(zone)
        with self.lock:
            return [f for f in self.futures.values() if f.project == project and zone in (None, f.zone)]

    def delete_future(self, project: str, zone: str, name: str) -> Operation:
        """Delete the request. Capacity already delivered stays (the auto-created reservation lives on to its
        deleteAtTime), as in GCE."""
        with self.lock:
            self.get_future(project, zone, name)
            del self.futures[(project, zone, name)]
            return self.compute._operation(project, "zones", zone, "delete",
                                           f"projects/{project}/zones/{zone}/futureReservations/{name}")

    # -- reservations (read; consumed by instances.insert) --------------------------------------
    def get(self, project: str, zone: str, name: str) -> Reservation:
        self.compute.check_zone(zone)
        with self.lock:
            res = self.reservations.get((project, zone, name))
            if res is None:
                raise not_found(f"projects/{project}/zones/{zone}/reservations/{name}")
            return res

    def list(self, project: str, zone: str | None) -> list[Reservation]:
        if zone is not None:
            self.compute.check_zone(zone)
        with self.lock:
            return [r for r in self.reservations.values() if r.project == project and zone in (None, r.zone)]

    def check(self, project: str, zone: str, value: str, machine_type: str) -> None:
        """A VM may consume the specific reservation ``value`` (a name or a URL): it exists in the zone and
        is for the VM's machine type; else the insert is refused (400)."""
        name = value.rsplit("/", 1)[-1]
        res = self.reservations.get((project, zone, name))
        if res is None:
            raise invalid(f"Invalid value for field 'resource.reservationAffinity': Reservation '{name}' "
                          f"does not exist in zone {zone}.")
        if res.machine_type != machine_type:
            raise invalid(f"Invalid value for field 'resource.machineType': '{machine_type}' does not match "
                          f"the machine type of reservation '{name}' ({res.machine_type}).")

    def consume(self, project: str, zone: str, value: str) -> Reservation | dict:
        """Take one VM's slot of a reservation that passed ``check``; the reservation, or the operation error
        the insert ends with when it is full (the code GCE uses for this is modelled on a stock-out)."""
        res = self.reservations[(project, zone, value.rsplit("/", 1)[-1])]
        if res.in_use >= res.count:
            return {"code": "ZONE_RESOURCE_POOL_EXHAUSTED",
                    "message": f"Specific reservation '{res.name}' in zone {zone} has no unused capacity "
                               f"({res.in_use} of {res.count} in use)."}
        res.in_use += 1
        return res

    def give(self, project: str, zone: str, name: str) -> None:
        res = self.reservations.get((project, zone, name))
        if res is not None and res.in_use > 0:
            res.in_use -= 1

    # -- the clock -----------------------------------------------------------------------------
    def advance(self) -> None:
        """Deliver future reservations whose window has started; end those whose window is over."""
        now = self.clock.now()
        with self.lock:
            for fr in self.futures.values():
                if fr.status in LIVE and not fr.auto_created and fr.start <= now and not fr.ended:
                    self._deliver(fr)
                if fr.auto_created and not fr.ended and now >= fr.end:
                    self._end(fr)
            for key, res in list(self.reservations.items()):
                if res.delete_at is not None and now >= res.delete_at:
                    self._delete_reservation(key, res)

    def _deliver(self, fr: FutureReservation) -> None:
        name = fr.reservation_name or f"{fr.name_prefix or fr.name}-{fr.start:%Y%m%d}-0001"
        self.reservations[(fr.project, fr.zone, name)] = Reservation(
            self.compute.new_id(), fr.project, fr.zone, name, fr.machine_type, fr.total_count,
            self.clock.now().isoformat(), future=fr.name, delete_at=fr.end)
        fr.auto_created.append(name)
        fr.status = "FULFILLED"

    def _end(self, fr: FutureReservation) -> None:
        fr.ended = True
        for name in fr.auto_created:
            res = self.reservations.get((fr.project, fr.zone, name))
            if res is not None:
                self._delete_reservation((fr.project, fr.zone, name), res)

    def _delete_reservation(self, key: tuple[str, str, str], res: Reservation) -> None:
        """The period is over: stop the VMs that consume the reservation, then drop it."""
        for inst in self.compute.instances.values():
            if inst.project == res.project and inst.zone == res.zone and inst.reservation == res.name and inst.holds:
                inst.holds = False
                inst.status = "TERMINATED"
                inst.status_message = f"Instance stopped: the period of reservation '{res.name}' ended."
        del self.reservations[key]
