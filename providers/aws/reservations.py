"""AWS capabilities beyond the common Provider interface that the provisioning engine calls: cluster
placement groups, On-Demand Capacity Reservations and Capacity Blocks for ML (incl. UltraServers).

A mixin: AWSProvider inherits it, so what the AWS adapter can do is read from its bases. It implements
the typed capabilities (providers/capabilities.py) the engines call, on top of the EC2-shaped methods.
"""

from __future__ import annotations

import contextlib
import logging
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

from providers.capabilities import (
    CapacityBlockOffer,
    CapacityBlockPurchase,
    CapacityBlockQuery,
    PlacementGroup,
    PlacementGroupRequest,
    Reservation,
    ReservationRequest,
    SupportsCapacityBlocks,
    SupportsPlacementGroups,
    SupportsReservations,
)
from providers.catalog import CapacityType
from providers.errors import InvalidRequestError, NotFoundError
from providers.model import CapacityPool

_log = logging.getLogger("awan.providers.aws")

if TYPE_CHECKING:
    from providers.aws.clients import AwsClients
    from providers.catalog import Catalog


def _tag_spec(kind: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}] if tags else []


def _pool(cr: dict[str, Any], region: str, ultraserver: str = "") -> CapacityPool:
    return CapacityPool("aws", region, cr["AvailabilityZone"], cr["InstanceType"], CapacityType.RESERVED,
                        int(cr["AvailableInstanceCount"]), reservation_id=cr["CapacityReservationId"],
                        starts_at=cr.get("StartDate"), ends_at=cr.get("EndDate"), ultraserver_type=ultraserver,
                        reservation_kind="capacity-block" if cr.get("ReservationType") == "capacity-block" else "")


def _reservation(cr: dict[str, Any], region: str, ultraserver: str = "") -> Reservation:
    return Reservation(cr["CapacityReservationId"], region, cr["AvailabilityZone"], cr["InstanceType"],
                       int(cr.get("TotalInstanceCount") or cr.get("AvailableInstanceCount") or 0),
                       capacity_block=cr.get("ReservationType") == "capacity-block",
                       ultraserver_type=ultraserver, starts_at=cr.get("StartDate"), ends_at=cr.get("EndDate"))


class AwsReservations(SupportsPlacementGroups, SupportsReservations, SupportsCapacityBlocks):
    clients: AwsClients
    catalog: Catalog

    # -- the typed capabilities ----------------------------------------------------------------
    def ensure_placement(self, request: PlacementGroupRequest) -> PlacementGroup:
        name = self.ensure_placement_group(request.region, request.name, request.tags, request.strategy)
        return PlacementGroup(request.region, name, name)

    def delete_placement(self, region: str, name: str) -> None:
        self.delete_placement_group(region, name)

    def reserve(self, request: ReservationRequest) -> Reservation:
        return self._create_reservation(request.region, request.zone, request.instance_type, request.count,
                                        request.tags, end=request.ends_at, token=request.idempotency_token)

    def release_reservation(self, region: str, reservation_id: str) -> None:
        self.cancel_capacity_reservation(region, reservation_id)

    def find_reservation(self, region: str, tag_key: str, tag_value: str) -> Reservation | None:
        crs = self.clients.pages("ec2", region, "describe_capacity_reservations", "CapacityReservations",
                                 Filters=[{"Name": f"tag:{tag_key}", "Values": [tag_value]},
                                          {"Name": "state", "Values": ["active", "scheduled", "pending"]}])
        return _reservation(crs[0], region) if crs else None

    def find_capacity_blocks(self, query: CapacityBlockQuery) -> list[CapacityBlockOffer]:
        return self.describe_capacity_block_offerings(query.region, query.instance_type, query.count,
                                                      ultraservers=query.ultraservers, hours=query.hours,
                                                      start_after=query.start_after)

    def purchase_capacity_block_offer(self, purchase: CapacityBlockPurchase) -> Reservation:
        offer = purchase.offer
        out = self._purchase(offer.id, offer.region, purchase.tags)
        blocks = out.get("CapacityBlocks") or [{}]
        return _reservation(out["CapacityReservation"], offer.region,
                            blocks[0].get("UltraserverType", "") or offer.ultraserver_type)

    # -- placement groups ----------------------------------------------------------------------
    def ensure_placement_group(self, region: str, name: str, tags: dict[str, str] | None = None,
                               strategy: str = "cluster") -> str:
        """Create the placement group unless it exists (idempotent); returns its name."""
        try:
            self.clients.call("ec2", region, "create_placement_group", GroupName=name, Strategy=strategy,
                              TagSpecifications=_tag_spec("placement-group", tags or {}))
        except InvalidRequestError as e:
            if e.code != "InvalidPlacementGroup.Duplicate":
                raise
        return name

    def delete_placement_group(self, region: str, name: str) -> None:
        """Delete the placement group; one that is already gone is not an error."""
        with contextlib.suppress(NotFoundError):
            self.clients.call("ec2", region, "delete_placement_group", GroupName=name)

    # -- on-demand capacity reservations -------------------------------------------------------
    def create_capacity_reservation(self, region: str, zone: str, instance_type: str, count: int,
                                    tags: dict[str, str] | None = None, *, end: datetime | None = None,
                                    match_criteria: str = "targeted", token: str = "") -> CapacityPool:
        """Reserve ``count`` instances in ``zone`` (CapacityError when EC2 has no capacity). ``token`` is
        the ClientToken: asking again with it returns the first reservation instead of a second one."""
        r = self._create_reservation(region, zone, instance_type, count, tags, end=end,
                                     match_criteria=match_criteria, token=token)
        return CapacityPool("aws", region, r.zone, r.instance_type, CapacityType.RESERVED, r.count,
                            reservation_id=r.id, starts_at=r.starts_at, ends_at=r.ends_at)

    def _create_reservation(self, region: str, zone: str, instance_type: str, count: int,
                            tags: dict[str, str] | None = None, *, end: datetime | None = None,
                            match_criteria: str = "targeted", token: str = "") -> Reservation:
        params: dict[str, Any] = {
            "InstanceType": instance_type, "InstancePlatform": "Linux/UNIX", "AvailabilityZone": zone,
            "InstanceCount": count, "InstanceMatchCriteria": match_criteria,
            "EndDateType": "limited" if end else "unlimited",
            "TagSpecifications": _tag_spec("capacity-reservation", tags or {}),
        }
        if end:
            params["EndDate"] = end
        if token:
            params["ClientToken"] = token[:64]
        cr = self.clients.call("ec2", region, "create_capacity_reservation", **params)["CapacityReservation"]
        return _reservation(cr, region)

    def cancel_capacity_reservation(self, region: str, reservation_id: str) -> None:
        """Cancel it; running instances go on as on-demand. Already gone is not an error."""
        with contextlib.suppress(NotFoundError):
            self.clients.call("ec2", region, "cancel_capacity_reservation", CapacityReservationId=reservation_id)

    # -- capacity blocks -----------------------------------------------------------------------
    def describe_capacity_block_offerings(self, region: str, instance_type: str, count: int = 1, *,
                                          ultraservers: int = 0, hours: int = 24,
                                          start_after: datetime | None = None) -> list[CapacityBlockOffer]:
        """Capacity Block offerings for ``count`` instances, or whole UltraServers for NVL72 types
        (``ultraservers``, else enough of them to hold ``count`` instances)."""
        it = self.catalog.instance_types.get(("aws", instance_type))
        if it is None:
            raise InvalidRequestError(f"instance_type: {instance_type!r} is not an AWS type in the catalog",
                                      provider="aws", region=region)
        params: dict[str, Any] = {"CapacityDurationHours": hours}
        if it.ultraserver:
            params.update(UltraserverType=it.ultraserver,
                          UltraserverCount=ultraservers or math.ceil(count / it.nodes_per_domain))
        else:
            params.update(InstanceType=instance_type, InstanceCount=count)
        if start_after:
            params["StartDateRange"] = start_after
        rows = self.clients.pages("ec2", region, "describe_capacity_block_offerings", "CapacityBlockOfferings",
                                  **params)
        return [CapacityBlockOffer(o["CapacityBlockOfferingId"], region, o["AvailabilityZone"], o["InstanceType"],
                                   int(o["InstanceCount"]), o["StartDate"], o["EndDate"],
                                   int(o["CapacityBlockDurationHours"]), float(o.get("UpfrontFee") or 0),
                                   o.get("UltraserverType", ""), int(o.get("UltraserverCount") or 0))
                for o in rows]

    def purchase_capacity_block(self, offering: CapacityBlockOffer | str, tags: dict[str, str] | None = None,
                                *, region: str = "") -> CapacityPool:
        """Buy an offering; returns its reserved pool (launch into it with its reservation_id)."""
        offer_id = offering if isinstance(offering, str) else offering.id
        region = region or ("" if isinstance(offering, str) else offering.region)
        if not region:
            raise InvalidRequestError("region: required when purchasing by offering id", provider="aws")
        out = self._purchase(offer_id, region, tags or {})
        blocks = out.get("CapacityBlocks") or [{}]
        return _pool(out["CapacityReservation"], region, blocks[0].get("UltraserverType", ""))

    def _purchase(self, offer_id: str, region: str, tags: dict[str, str]) -> Any:
        out = self.clients.call("ec2", region, "purchase_capacity_block", CapacityBlockOfferingId=offer_id,
                                InstancePlatform="Linux/UNIX",
                                TagSpecifications=_tag_spec("capacity-reservation", tags))
        cr = out["CapacityReservation"]
        # A purchase spends money and cannot be undone: always one event in the service log.
        _log.info("capacity block purchased", extra={
            "provider": "aws", "region": region, "offering": offer_id, "reservation": cr["CapacityReservationId"],
            "instance_type": cr["InstanceType"], "nodes": cr.get("TotalInstanceCount")})
        return out

    def _is_capacity_block(self, region: str, reservation_id: str) -> bool:
        crs = self.clients.call("ec2", region, "describe_capacity_reservations",
                                CapacityReservationIds=[reservation_id])["CapacityReservations"]
        return bool(crs) and crs[0].get("ReservationType") == "capacity-block"
