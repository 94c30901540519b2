"""The AWS mock's own state and rules: which launches EC2 would refuse (type not offered in the zone,
vCPU quota, stock-out, reservation full), capacity reservations and capacity blocks drawing on the
finite ledger, placement groups and quotas. Every mutation holds one lock: the mock is small and
correctness under concurrent requests matters more than parallelism.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime, timedelta

from mockclouds.aws.models import (
    CAPACITY_BLOCK_TYPES,
    DEFAULT_QUOTA_VCPUS,
    QUOTA_NAMES,
    BlockOffering,
    CapacityBlock,
    CapacityReservation,
    Ec2Error,
    Launched,
    LaunchPlan,
    PlacementGroup,
    new_id,
    quota_code,
)
from mockclouds.aws.moto_patch import moto_vcpus, zone_ids
from mockclouds.capacity import CapacityExhausted, CapacityLedger
from mockclouds.clock import MockClock
from providers.catalog import CapacityType, Catalog

# EC2 warns (EventBridge "Capacity Block Expiration Warning") 40 minutes before a Capacity Block ends and
# starts terminating the instances in it 10 minutes later, 30 minutes before the end.
BLOCK_WARNING = timedelta(minutes=40)
BLOCK_RECLAIM = timedelta(minutes=30)


def _ice(instance_type: str, zone: str) -> Ec2Error:
    return Ec2Error("InsufficientInstanceCapacity",
                    f"We currently do not have sufficient {instance_type} capacity in the Availability Zone you "
                    f"requested ({zone}). Our system will be working on provisioning additional capacity.", 500)


class AwsState:
    def __init__(self, catalog: Catalog, ledger: CapacityLedger, clock: MockClock | None = None) -> None:
        self.catalog = catalog
        self.ledger = ledger
        self.clock = clock or MockClock()
        self.lock = threading.RLock()
        # (zone, type) -> capacity types the catalog sells there
        self.sold: dict[tuple[str, str], set[str]] = {}
        for o in catalog.for_provider("aws"):
            self.sold.setdefault((o.zone, o.instance_type), set()).add(o.capacity_type.value)
        self.prices = {(o.zone, o.instance_type, o.capacity_type.value): o.price_per_hour
                       for o in catalog.for_provider("aws")}
        self.zone_region = catalog.zones("aws")
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.placement_groups: dict[tuple[str, str], PlacementGroup] = {}
            self.reservations: dict[str, CapacityReservation] = {}
            self.blocks: dict[str, CapacityBlock] = {}
            self.offerings: dict[str, BlockOffering] = {}
            self.instances: dict[str, Launched] = {}
            self.tokens: dict[tuple[str, str], tuple[str, bytes]] = {}   # (region, ClientToken) -> (params, reply)
            # CreateCapacityReservation's ClientToken: (region, token) -> (params, reservation id)
            self.reservation_tokens: dict[tuple[str, str], tuple[str, str]] = {}
            self.quota_limits: dict[tuple[str, str], float] = {}
            self.events: list[dict[str, object]] = []       # EventBridge-shaped, oldest first
            self.emitted: set[str] = set()                  # customer_event_id of events already sent

    # -- quotas --------------------------------------------------------------------------------
    def quota_limit(self, region: str, code: str) -> float:
        return self.quota_limits.get((region, code), DEFAULT_QUOTA_VCPUS)

    def quota_used(self, region: str, code: str) -> float:
        return float(sum(i.vcpus for i in self.instances.values()
                         if i.region == region and quota_code(i.instance_type, i.market) == code))

    def quotas(self, region: str) -> list[tuple[str, str, float]]:
        return [(code, name, self.quota_limit(region, code)) for code, name in QUOTA_NAMES.items()]

    def _vcpus(self, instance_type: str) -> int:
        it = self.catalog.instance_types.get(("aws", instance_type))
        return it.vcpus if it else moto_vcpus(instance_type)

    # -- launches ------------------------------------------------------------------------------
    def _not_offered(self, instance_type: str, zone: str) -> Ec2Error:
        zones = sorted(z for (z, t) in self.sold if t == instance_type and self.zone_region.get(z) ==
                       self.zone_region.get(zone))
        hint = f"choosing {', '.join(zones)}" if zones else "choosing another region"
        return Ec2Error("Unsupported",
                        f"Your requested instance type ({instance_type}) is not supported in your requested "
                        f"Availability Zone ({zone}). Please retry your request by not specifying an "
                        f"Availability Zone or {hint}.")

    def _pick_zone(self, region: str, instance_type: str, market: str, count: int) -> str:
        zones = sorted(z for (z, t), caps in self.sold.items()
                       if t == instance_type and self.zone_region.get(z) == region and market in caps)
        if not zones:
            raise Ec2Error("Unsupported", f"Your requested instance type ({instance_type}) is not supported "
                                          f"for {market} in region {region}.")
        return max(zones, key=lambda z: (self.ledger.free(z, instance_type) >= count, -zones.index(z)))

    def plan_launch(self, region: str, zone: str, instance_type: str, min_count: int, max_count: int,
                    market: str, reservation_id: str, group: str) -> LaunchPlan:
        """Check a RunInstances the way EC2 does and take its capacity; raise Ec2Error when refused."""
        if min_count < 1 or max_count < min_count:
            raise Ec2Error("InvalidParameterValue", "MinCount must be >= 1 and MaxCount >= MinCount")
        with self.lock:
            if group and (region, group) not in self.placement_groups:
                raise Ec2Error("InvalidPlacementGroup.Unknown", f"The Placement Group '{group}' is unknown.")
            if reservation_id:
                return self._plan_in_reservation(region, zone, instance_type, min_count, max_count,
                                                 market, reservation_id)
            if ("aws", instance_type) not in self.catalog.instance_types:
                return LaunchPlan(region, zone, instance_type, max_count, market, "", metered=False)
            zone = zone or self._pick_zone(region, instance_type, market, min_count)
            caps = self.sold.get((zone, instance_type))
            if not caps:
                raise self._not_offered(instance_type, zone)
            if market not in caps:
                only = "Capacity Blocks" if caps == {CapacityType.RESERVED.value} else ", ".join(sorted(caps))
                raise Ec2Error("Unsupported", f"{instance_type} in {zone} is only available as {only}; "
                                              f"{market} is not supported.")
            code = quota_code(instance_type, market)
            vcpus = self._vcpus(instance_type)
            if code is not None:
                headroom = self.quota_limit(region, code) - self.quota_used(region, code)
                if min_count * vcpus > headroom:
                    raise Ec2Error("VcpuLimitExceeded",
                                   f"You have requested more vCPU capacity than your current vCPU limit of "
                                   f"{self.quota_limit(region, code):g} allows for the instance bucket that the "
                                   f"specified instance type belongs to ({code}). Please visit "
                                   f"http://aws.amazon.com/contact-us/ec2-request to request an adjustment.")
                max_count = min(max_count, int(headroom // vcpus))
            n = min(max_count, self.ledger.free(zone, instance_type))
            if n < min_count:
                raise _ice(instance_type, zone)
            self.ledger.take(zone, instance_type, n)
            return LaunchPlan(region, zone, instance_type, n, market, "", metered=True)

    def _plan_in_reservation(self, region: str, zone: str, instance_type: str, min_count: int,
                             max_count: int, market: str, reservation_id: str) -> LaunchPlan:
        cr = self.reservations.get(reservation_id)
        if cr is None or cr.region != region:
            raise Ec2Error("InvalidCapacityReservationId.NotFound",
                           f"The capacity reservation ID '{reservation_id}' does not exist")
        if market == "spot":
            raise Ec2Error("InvalidParameterCombination", "Spot instances cannot launch into a capacity reservation")
        if cr.instance_type != instance_type or (zone and zone != cr.zone):
            raise Ec2Error("InvalidParameterCombination",
                           f"The capacity reservation {cr.id} is for {cr.instance_type} in {cr.zone}, not "
                           f"{instance_type} in {zone or 'any zone'}")
        if cr.reservation_type == "capacity-block" and (cr.state == "scheduled" or (
                cr.state == "active" and cr.end is not None and self.clock.now() >= cr.end - BLOCK_RECLAIM)):
            # EC2 answers a launch into a Capacity Block that has not started (or is being reclaimed) with an
            # insufficient-capacity error, not a validation error.
            when = (f"starts at {cr.start.isoformat()}" if cr.state == "scheduled"
                    else f"ends at {cr.end.isoformat() if cr.end else '?'}")
            raise Ec2Error("InsufficientInstanceCapacity",
                           f"Insufficient capacity in Capacity Reservation {cr.id}: the Capacity Block {when}.", 500)
        if cr.state != "active":
            raise Ec2Error("InvalidCapacityReservationId.NotActive",
                           f"The capacity reservation {cr.id} is {cr.state}")
        n = min(max_count, cr.available)
        if n < min_count:
            raise Ec2Error("ReservationCapacityExceeded",
                           f"The requested number of instances exceeds the capacity available in the Capacity "
                           f"Reservation {cr.id} ({cr.available} available)")
        cr.available -= n
        return LaunchPlan(region, cr.zone, instance_type, n, market, cr.id, metered=True)

    def undo(self, plan: LaunchPlan, launched: int = 0) -> None:
        """Give back what ``plan`` took beyond the ``launched`` instances (moto refused or launched fewer)."""
        back = plan.count - launched
        if not plan.metered or back <= 0:
            return
        with self.lock:
            if plan.reservation_id:
                self.reservations[plan.reservation_id].available += back
            else:
                self.ledger.give(plan.zone, plan.instance_type, back)

    def commit(self, plan: LaunchPlan, instance_ids: list[str]) -> None:
        self.undo(plan, len(instance_ids))
        if not plan.metered:
            return
        with self.lock:
            for iid in instance_ids:
                self.instances[iid] = Launched(iid, plan.region, plan.zone, plan.instance_type, plan.market,
                                               plan.reservation_id, self._vcpus(plan.instance_type))

    def release(self, instance_ids: Iterable[str], reclaimed: bool = False) -> None:
        """Instances are gone: their capacity returns to the reservation (if still active) or the pool.
        Capacity EC2 ``reclaimed`` (Spot interruption, a revocation) went to someone else: not returned."""
        with self.lock:
            for iid in instance_ids:
                inst = self.instances.pop(iid, None)
                if inst is None or reclaimed:
                    continue
                cr = self.reservations.get(inst.reservation_id)
                if cr is not None and cr.state in ("active", "scheduled"):
                    cr.available += 1
                else:
                    self.ledger.give(inst.zone, inst.instance_type, 1)

    # -- placement groups ----------------------------------------------------------------------
    def create_placement_group(self, region: str, name: str, strategy: str, partitions: int,
                               tags: dict[str, str]) -> PlacementGroup:
        with self.lock:
            if (region, name) in self.placement_groups:
                raise Ec2Error("InvalidPlacementGroup.Duplicate", f"The placement group '{name}' already exists.")
            pg = PlacementGroup(name, new_id("pg"), region, strategy, partitions, tags=tags)
            self.placement_groups[(region, name)] = pg
            return pg

    def delete_placement_group(self, region: str, name: str) -> None:
        with self.lock:
            if self.placement_groups.pop((region, name), None) is None:
                raise Ec2Error("InvalidPlacementGroup.Unknown", f"The Placement Group '{name}' is unknown.")

    # -- capacity reservations -----------------------------------------------------------------
    def create_reservation(self, region: str, zone: str, instance_type: str, count: int, platform: str,
                           end: datetime | None, criteria: str, tags: dict[str, str], token: str = "",
                           fingerprint: str = "") -> CapacityReservation:
        """``token`` (ClientToken): the same token with the same parameters answers with the reservation
        it made first, as EC2 does; with other parameters it is IdempotentParameterMismatch."""
        if len(token) > 64:
            raise Ec2Error("InvalidParameterValue", "ClientToken must be at most 64 characters")
        with self.lock:
            if token and (region, token) in self.reservation_tokens:
                seen, rid = self.reservation_tokens[(region, token)]
                if seen != fingerprint:
                    raise Ec2Error("IdempotentParameterMismatch", "The client token you have provided is "
                                   "associated with a request that had different parameters.")
                return self.reservations[rid]
            cr = self._new_reservation(region, zone, instance_type, count, platform, end, criteria, tags)
            if token:
                self.reservation_tokens[(region, token)] = (fingerprint, cr.id)
            return cr

    def _new_reservation(self, region: str, zone: str, instance_type: str, count: int, platform: str,
                         end: datetime | None, criteria: str, tags: dict[str, str]) -> CapacityReservation:
        if count < 1:
            raise Ec2Error("InvalidParameterValue", "InstanceCount must be at least 1")
        if self.zone_region.get(zone) != region:
            raise Ec2Error("InvalidParameterValue", f"AvailabilityZone {zone!r} is not in region {region}")
        with self.lock:
            if CapacityType.ON_DEMAND.value not in self.sold.get((zone, instance_type), set()):
                raise self._not_offered(instance_type, zone)
            try:
                self.ledger.take(zone, instance_type, count)
            except CapacityExhausted:
                raise _ice(instance_type, zone) from None
            now = self.clock.now()
            cr = CapacityReservation(new_id("cr"), region, zone, zone_ids().get(zone, ""), instance_type, platform,
                                     count, count, now, end, now, match_criteria=criteria, tags=tags)
            self.reservations[cr.id] = cr
            return cr

    def cancel_reservation(self, region: str, reservation_id: str) -> None:
        with self.lock:
            cr = self.reservations.get(reservation_id)
            if cr is None or cr.region != region:
                raise Ec2Error("InvalidCapacityReservationId.NotFound",
                               f"The capacity reservation ID '{reservation_id}' does not exist")
            if cr.reservation_type == "capacity-block":
                raise Ec2Error("UnsupportedOperation", f"{cr.id} is a Capacity Block: it cannot be cancelled")
            if cr.state == "cancelled":
                return
            cr.state = "cancelled"
            # Running instances keep their capacity and run on as plain on-demand instances.
            self.ledger.give(cr.zone, cr.instance_type, cr.available)
            cr.available = 0

    # -- capacity blocks -----------------------------------------------------------------------
    def block_offerings(self, region: str, instance_type: str, count: int, hours: int, ultraserver: str,
                        ultraserver_count: int, start_after: datetime | None,
                        end_before: datetime | None) -> list[BlockOffering]:
        if hours < 1 or hours > 182 * 24:
            raise Ec2Error("InvalidParameterValue", "CapacityDurationHours must be between 1 and 4368")
        start = max(self.clock.now(), start_after or self.clock.now())
        end = start + timedelta(hours=hours)
        if end_before is not None and end > end_before:
            return []
        out = []
        with self.lock:
            for (zone, t), caps in sorted(self.sold.items()):
                if self.zone_region.get(zone) != region or (instance_type and t != instance_type):
                    continue
                it = self.catalog.instance_type("aws", t)
                if it.ultraserver != ultraserver:
                    continue      # NVL72 types are sold as whole UltraServers, the rest as instances
                if CapacityType.RESERVED.value not in caps and t not in CAPACITY_BLOCK_TYPES:
                    continue
                n = max(1, ultraserver_count) * it.nodes_per_domain if ultraserver else max(1, count)
                if self.ledger.free(zone, t) < n:
                    continue
                price = self.prices.get((zone, t, "reserved")) or self.prices.get((zone, t, "on-demand"), 0.0)
                o = BlockOffering(new_id("cb"), region, zone, t, n, start, end, hours,
                                  round(price * n * hours, 2), ultraserver,
                                  max(1, ultraserver_count) if ultraserver else 0)
                self.offerings[o.id] = o
                out.append(o)
        return out

    def purchase_block(self, region: str, offering_id: str, platform: str,
                       tags: dict[str, str]) -> tuple[CapacityBlock, CapacityReservation]:
        with self.lock:
            o = self.offerings.get(offering_id)
            if o is None or o.region != region:
                raise Ec2Error("InvalidCapacityBlockOfferingId.NotFound",
                               f"The capacity block offering ID '{offering_id}' does not exist")
            try:
                self.ledger.take(o.zone, o.instance_type, o.instance_count)
            except CapacityExhausted:
                raise _ice(o.instance_type, o.zone) from None
            del self.offerings[offering_id]      # an offering is bought once
            now = self.clock.now()
            state = "active" if o.start <= now else "scheduled"
            zid = zone_ids().get(o.zone, "")
            block = CapacityBlock(new_id("cb"), region, o.zone, zid, o.ultraserver_type, [], o.start, o.end, now,
                                  state, dict(tags))
            cr = CapacityReservation(new_id("cr"), region, o.zone, zid, o.instance_type, platform,
                                     o.instance_count, o.instance_count, o.start, o.end, now, state=state,
                                     match_criteria="targeted", reservation_type="capacity-block",
                                     capacity_block_id=block.id, tags=dict(tags))
            block.reservation_ids.append(cr.id)
            self.blocks[block.id] = block
            self.reservations[cr.id] = cr
            return block, cr

    # -- time ----------------------------------------------------------------------------------
    def _event(self, event_id: str, detail_type: str, cr: CapacityReservation) -> None:
        if event_id in self.emitted:
            return
        self.emitted.add(event_id)
        self.events.append({
            "customer_event_id": event_id, "detail_type": detail_type, "source": "aws.ec2",
            "time": self.clock.now().isoformat(), "region": cr.region,
            "resources": [f"arn:aws:ec2:{cr.region}:123456789012:capacity-reservation/{cr.id}"],
            "detail": {"capacity-reservation-id": cr.id, "end-date": cr.end.isoformat() if cr.end else None}})

    def advance(self) -> list[str]:
        """Bring reservations and blocks up to the clock: a scheduled one becomes active at its start
        ("Capacity Block Delivered"); 40 minutes before a block's end the warning is sent, 30 minutes before
        it its instances are reclaimed; at the end it expires and its capacity returns to the pool. A plain
        reservation that reaches its end date expires; its instances run on as on-demand (EC2 does that).
        Returns the instances to terminate now (the caller terminates them in moto)."""
        now = self.clock.now()
        doomed: list[str] = []
        with self.lock:
            for cr in self.reservations.values():
                block = cr.reservation_type == "capacity-block"
                if cr.state == "scheduled" and cr.start <= now:
                    cr.state = "active"
                    if block:
                        self._event(f"{cr.id}-delivered", "Capacity Block Delivered", cr)
                if cr.state != "active" or cr.end is None:
                    continue
                if block and now >= cr.end - BLOCK_WARNING:
                    self._event(f"{cr.id}-approaching-expiry", "Capacity Block Expiration Warning", cr)
                if block and now >= cr.end - BLOCK_RECLAIM:
                    doomed += [i.instance_id for i in self.instances.values() if i.reservation_id == cr.id]
                if now >= cr.end:
                    cr.state = "expired"
                    if block:
                        # the block goes back to the seller; slots of instances still running go back as
                        # they are terminated (reclaim/release)
                        running = sum(1 for i in self.instances.values() if i.reservation_id == cr.id)
                        self.ledger.give(cr.zone, cr.instance_type, cr.total - running)
                    else:
                        self.ledger.give(cr.zone, cr.instance_type, cr.available)
                    cr.available = 0
            for b in self.blocks.values():
                states = {self.reservations[r].state for r in b.reservation_ids if r in self.reservations}
                if states:
                    b.state = "expired" if states == {"expired"} else (
                        "active" if "active" in states else b.state)
        return doomed

    def reclaim(self, instance_ids: Iterable[str]) -> None:
        """Block instances terminated at the block's end: their slot is not handed out again (the block's
        capacity returns to the pool as a whole when it expires)."""
        with self.lock:
            for iid in instance_ids:
                inst = self.instances.pop(iid, None)
                if inst is None:
                    continue
                cr = self.reservations.get(inst.reservation_id)
                if cr is not None and cr.state == "expired":
                    self.ledger.give(inst.zone, inst.instance_type, 1)
