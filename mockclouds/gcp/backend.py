"""The GCP fake's whole state behind the MockBackend protocol (reset, inventory, preempt)."""

from __future__ import annotations

import threading
from typing import Any

from mockclouds.capacity import CapacityLedger
from mockclouds.clock import MockClock
from mockclouds.faults import FaultBook
from mockclouds.gcp.compute import ComputeModel
from mockclouds.gcp.machines import is_tpu, region_of
from mockclouds.gcp.reservations import ReservationModel
from mockclouds.gcp.tpu import TpuModel
from mockclouds.requestlog import RequestLog
from providers.catalog import Catalog, default_catalog


class GCPBackend:
    def __init__(self, catalog: Catalog | None = None) -> None:
        catalog = catalog or default_catalog()
        self.ledger = CapacityLedger("gcp", catalog)
        self.faults = FaultBook()
        self.requests = RequestLog()   # every API call, its caller and its time (tests read it)
        self.clock = MockClock()     # /_mock/clock: future reservations start and end by it
        # One lock for both models: a TPU node and a VM can draw on the same ledger in one zone.
        self.lock = threading.RLock()
        self.compute = ComputeModel(self.ledger, catalog, self.lock)
        self.tpu = TpuModel(self.ledger, self.compute.zones, self.lock)
        self.reservations = ReservationModel(self.compute, self.clock, self.lock)
        self.compute.reservations = self.reservations

    def reset(self) -> None:
        with self.lock:
            self.compute.reset()
            self.tpu.reset()
            self.reservations.reset()
            self.clock.reset()
            self.ledger.reset()
            self.faults.clear()
            self.requests.clear()

    def tick(self) -> None:
        """Apply what the clock says has happened (future reservations delivered or ended) before a request
        is answered: no background thread, but always before anyone can observe it."""
        self.reservations.advance()

    def preempt(self, region: str | None, zone: str | None, instance_type: str | None,
                spot_only: bool = True) -> list[str]:
        with self.lock:
            ids: list[str] = []
            if instance_type is None or not is_tpu(instance_type):
                ids += self.compute.preempt(region, zone, instance_type, spot_only)
            if instance_type is None or is_tpu(instance_type):
                ids += self.tpu.preempt(region, zone, instance_type, spot_only)
            return ids

    def events(self) -> list[dict[str, Any]]:
        return []

    def inventory(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = [{"kind": "instance", "id": i.id, "name": i.name, "region": i.region, "zone": i.zone,
                     "instanceType": i.spec.name, "state": i.status, "spot": i.spot, "tags": dict(i.labels)}
                    for i in self.compute.instances.values()]
            rows += [{"kind": "tpu-node", "id": n.id, "name": n.name, "region": region_of(n.zone), "zone": n.zone,
                      "instanceType": n.catalog_type, "state": n.state, "spot": n.spot, "tags": dict(n.labels)}
                     for n in self.tpu.nodes.values()]
            rows += [{"kind": "queued-resource", "id": q.path, "name": q.name, "region": region_of(q.zone),
                      "zone": q.zone, "instanceType": ",".join(sorted({"tpu-" + str(b.get("acceleratorType"))
                                                                        for _, b in q.specs})),
                      "state": q.state, "spot": q.spot,
                      "tags": dict(q.specs[0][1].get("labels") or {}) if q.specs else {}}
                     for q in self.tpu.queued.values()]
            return rows
