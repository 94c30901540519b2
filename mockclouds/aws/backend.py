"""The AWS mock as a ``mockclouds.control.MockBackend``: reset (moto too), preemption and inventory."""

from __future__ import annotations

from typing import Any

from mockclouds.aws.state import AwsState
from mockclouds.capacity import CapacityLedger
from mockclouds.clock import MockClock
from mockclouds.faults import FaultBook
from mockclouds.launcher import MOCK_SECRETS
from mockclouds.requestlog import RequestLog
from providers.catalog import Catalog


def _moto_ec2_backends() -> list[Any]:
    """moto's EC2 backends that exist (one per account and region touched); never creates one."""
    from moto.ec2.models import ec2_backends

    return [be for acct in dict.values(ec2_backends) for be in dict.values(acct)]


def _block_end_reason(inst: Any) -> None:
    """The state reason of an instance terminated because its Capacity Block ended (moto would say the user
    asked for it). EC2 documents no code of its own for this; Server.ScheduledStop is the documented
    "stopped by AWS on schedule" reason, used here so a client can tell it from its own terminations."""
    from moto.ec2.models.instances import StateReason

    inst.state_reason = StateReason("Server.ScheduledStop: Capacity Block reservation ended",
                                     "Server.ScheduledStop")
    inst._reason = "Capacity Block reservation ended"


class AwsMockBackend:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.ledger = CapacityLedger("aws", catalog)
        self.faults = FaultBook()
        self.requests = RequestLog()   # every API call, its caller and its time (tests read it)
        self.clock = MockClock()
        self.state = AwsState(catalog, self.ledger, self.clock)
        # Like AWS, the mock refuses unknown access keys (AuthFailure); the secret itself is not checked.
        self.access_keys = {MOCK_SECRETS["aws"]["access_key_id"]}

    def reset(self) -> None:
        from moto.core.base_backend import BackendDict

        with self.state.lock:
            # What `POST /moto-api/reset` does, minus re-reading model data nobody here changes.
            BackendDict.reset()
            self.state.reset()
            self.ledger.reset()
            self.faults.clear()
            self.requests.clear()
            self.clock.reset()

    def tick(self) -> None:
        """Apply what the clock says has happened (blocks starting, warned, reclaimed, expired) before any
        request is answered: the mock has no background thread, so time is enforced lazily, but always
        before anyone can observe it."""
        with self.state.lock:
            doomed = set(self.state.advance())
            if not doomed:
                return
            for be in _moto_ec2_backends():
                mine = [iid for iid in doomed if be.get_instance_by_id(iid) is not None]
                if mine:
                    be.terminate_instances(mine)
                    for iid in mine:
                        _block_end_reason(be.get_instance_by_id(iid))
            self.state.reclaim(doomed)

    def events(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(e) for e in self.state.events]

    def preempt(self, region: str | None, zone: str | None, instance_type: str | None,
                spot_only: bool = True) -> list[str]:
        with self.state.lock:
            victims = [i for i in self.state.instances.values()
                       if (region is None or i.region == region) and (zone is None or i.zone == zone)
                       and (instance_type is None or i.instance_type == instance_type)
                       and (not spot_only or i.market == "spot")]
            ids = {i.instance_id for i in victims}
            for be in _moto_ec2_backends():
                mine = [iid for iid in ids if be.get_instance_by_id(iid) is not None]
                if mine:
                    be.terminate_instances(mine)
            self.state.release(ids, reclaimed=True)
            return sorted(ids)

    def inventory(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for be in _moto_ec2_backends():
            for inst in be.all_instances():
                state = inst.instance_state.name
                if state == "terminated":
                    continue
                out.append({"kind": "instance", "id": inst.id, "region": be.region_name,
                            "zone": inst.availability_zone, "instanceType": inst.instance_type, "state": state,
                            "tags": {t["key"]: t["value"] for t in inst.get_tags()},
                            "lifecycle": getattr(inst, "lifecycle", None) or "on-demand"})
        with self.state.lock:
            for pg in self.state.placement_groups.values():
                out.append({"kind": "placement-group", "id": pg.name, "region": pg.region, "zone": "",
                            "instanceType": "", "state": pg.state, "tags": dict(pg.tags)})
            for cr in self.state.reservations.values():
                out.append({"kind": "capacity-reservation", "id": cr.id, "region": cr.region, "zone": cr.zone,
                            "instanceType": cr.instance_type, "state": cr.state, "tags": dict(cr.tags),
                            "total": cr.total, "available": cr.available,
                            "capacityBlockId": cr.capacity_block_id})
        return out
