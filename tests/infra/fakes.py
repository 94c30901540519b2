"""An in-memory Provider behind the same interface as the adapters (Karpenter's fake cloud provider
idea): idempotent by key like the clouds, implementing the same capability Protocols as the adapters,
with a log of calls."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from infra.spec import NodePoolSpec
from providers.base import Provider
from providers.capabilities import (
    CapacityBlockOffer,
    CapacityBlockPurchase,
    CapacityBlockQuery,
    NodePoolRequest,
    NodePoolState,
    PlacementGroup,
    PlacementGroupRequest,
    Reservation,
    ReservationRequest,
    ScaleSetRequest,
    ScaleSetState,
    SupportsCapacityBlocks,
    SupportsNodePools,
    SupportsPlacementGroups,
    SupportsReservations,
    SupportsScaleSets,
)
from providers.catalog.model import CapacityType, Offering
from providers.errors import CapacityError, NotFoundError
from providers.model import CapacityReport, HealthStatus, Node, NodeRequest, NodeState, ProviderHealth


class BareFakeProvider(Provider):
    """Nodes only: no optional abilities (what the engine does with an adapter that lacks one)."""

    def __init__(self, name: str = "aws") -> None:
        self.name, self.endpoint = name, "memory://"
        self.nodes: dict[str, Node] = {}
        self.by_key: dict[str, list[str]] = {}
        self.calls: list[str] = []
        self.free: int | None = None           # None: unlimited capacity
        self._ids = itertools.count(1)
        self._create = threading.RLock()       # the engine makes a stack's calls on several threads

    # questions
    def offerings(self) -> list[Offering]:  # pragma: no cover - unused by the engine
        return []

    def capacity(self) -> CapacityReport:  # pragma: no cover
        return CapacityReport(self.name, (), (), datetime.now(UTC))

    def health(self) -> ProviderHealth:  # pragma: no cover
        return ProviderHealth(self.name, self.endpoint, HealthStatus.OK, 0.0)

    def list_nodes(self) -> list[Node]:
        self.calls.append("list_nodes")
        return list(self.nodes.values())

    # side effects
    def create_nodes(self, request: NodeRequest) -> list[Node]:
        with self._create:
            return self._create_nodes(request)

    def _create_nodes(self, request: NodeRequest) -> list[Node]:
        self.calls.append(f"create_nodes:{request.pool}")
        if request.idempotency_key in self.by_key:          # the cloud's own idempotency (ClientToken)
            return [self.nodes[i] for i in self.by_key[request.idempotency_key]]
        if self.free is not None and self.free < request.count:
            raise CapacityError(f"no {request.instance_type} left in {request.zone}")
        out = []
        for _ in range(request.count):
            nid = f"i-{next(self._ids):05d}"
            out.append(Node(self.name, nid, nid, request.region, request.zone, request.instance_type,
                            request.capacity_type, NodeState.RUNNING, request.pool, request.workload, 8,
                            dict(request.tags)))
            self.nodes[nid] = out[-1]
        if self.free is not None:
            self.free -= request.count
        self.by_key[request.idempotency_key] = [n.id for n in out]
        return out

    def delete_nodes(self, nodes: Sequence[Node]) -> None:
        self.calls.append("delete_nodes")
        for n in nodes:
            if n.id in self.nodes:
                self.nodes[n.id] = replace(self.nodes[n.id], state=NodeState.TERMINATED)

    def live(self, pool: str | None = None) -> list[Node]:
        return [n for n in self.nodes.values() if n.state is NodeState.RUNNING and (pool is None or n.pool == pool)]


class FakeProvider(BareFakeProvider, SupportsPlacementGroups, SupportsReservations, SupportsCapacityBlocks,
                   SupportsScaleSets, SupportsNodePools):
    """Every ability the engine uses, through the same Protocols the adapters implement (mypy checks the
    signatures: the fake cannot drift from the real seam the way a hand-written signature could)."""

    def __init__(self, name: str = "aws") -> None:
        super().__init__(name)
        self.placement_groups: dict[str, str] = {}
        self.reservations: dict[str, dict[str, Any]] = {}
        self.scale_sets: dict[str, dict[str, Any]] = {}
        self.node_pools: dict[str, dict[str, Any]] = {}
        self.offers: dict[str, CapacityBlockOffer] = {}

    # placement groups
    def ensure_placement(self, request: PlacementGroupRequest) -> PlacementGroup:
        self.calls.append(f"ensure_placement_group:{request.name}")
        self.placement_groups[request.name] = request.strategy
        return PlacementGroup(request.region, request.name, request.name)

    def delete_placement(self, region: str, name: str) -> None:
        self.calls.append(f"delete_placement_group:{name}")
        self.placement_groups.pop(name, None)

    # reservations
    def reserve(self, request: ReservationRequest) -> Reservation:
        self.calls.append("create_capacity_reservation")
        for rid, r in self.reservations.items():
            if r["key"] == request.idempotency_token:
                return self._reservation(rid)
        rid = f"cr-{next(self._ids):05d}"
        self.reservations[rid] = {"instance_type": request.instance_type, "zone": request.zone,
                                  "count": request.count, "key": request.idempotency_token,
                                  "region": request.region, "tags": dict(request.tags)}
        return self._reservation(rid)

    def _reservation(self, rid: str) -> Reservation:
        r = self.reservations[rid]
        return Reservation(rid, r["region"], r["zone"], r["instance_type"], r["count"],
                           capacity_block=bool(r.get("block")))

    def release_reservation(self, region: str, reservation_id: str) -> None:
        self.calls.append(f"cancel_capacity_reservation:{reservation_id}")
        self.reservations.pop(reservation_id, None)

    def find_reservation(self, region: str, tag_key: str, tag_value: str) -> Reservation | None:
        rid = next((i for i, r in self.reservations.items() if r["tags"].get(tag_key) == tag_value), None)
        return self._reservation(rid) if rid else None

    # capacity blocks
    def find_capacity_blocks(self, query: CapacityBlockQuery) -> list[CapacityBlockOffer]:
        return [o for o in self.offers.values() if o.region == query.region
                and o.instance_type == query.instance_type and o.instance_count >= query.count]

    def purchase_capacity_block_offer(self, purchase: CapacityBlockPurchase) -> Reservation:
        o = self.offers.pop(purchase.offer.id)
        self.calls.append(f"purchase_capacity_block:{o.id}")
        rid = f"cr-{next(self._ids):05d}"
        self.reservations[rid] = {"instance_type": o.instance_type, "zone": o.zone, "count": o.instance_count,
                                  "key": "", "region": o.region, "tags": dict(purchase.tags), "block": True}
        return self._reservation(rid)

    # scale sets
    def ensure_scale_set(self, request: ScaleSetRequest) -> ScaleSetState:
        self.calls.append(f"apply_scale_set:{request.name}:{request.capacity}")
        self.scale_sets[request.name] = {"sku": request.sku, "capacity": request.capacity, "spot": request.spot,
                                         "tags": request.tags, "region": request.region}
        return self.get_scale_set(request.name)

    def get_scale_set(self, name: str) -> ScaleSetState:
        if name not in self.scale_sets:
            raise NotFoundError(f"scale set {name}")
        s = self.scale_sets[name]
        return ScaleSetState(f"/subscriptions/x/vmss/{name}", name, s["region"], s["sku"], s["capacity"], s["spot"],
                             "Succeeded", ())

    def delete_scale_set(self, name: str) -> None:
        self.calls.append(f"delete_scale_set:{name}")
        self.scale_sets.pop(name, None)

    # node pools
    def ensure_node_pool(self, request: NodePoolRequest) -> NodePoolState:
        self.calls.append(f"apply_node_pool:{request.name}:{request.target_nodes}")
        self.node_pools[request.name] = {"instance_type": request.instance_type, "zone": request.zone,
                                         "target_nodes": request.target_nodes, "labels": dict(request.labels)}
        return NodePoolState(request.name, request.instance_type, request.zone, request.target_nodes, 0)

    def node_pool(self, name: str) -> NodePoolState | None:
        p = self.node_pools.get(name)
        return None if p is None else NodePoolState(name, p["instance_type"], p["zone"], p["target_nodes"], 0)

    def remove_node_pool(self, name: str) -> bool:
        self.calls.append(f"delete_node_pool:{name}")
        return self.node_pools.pop(name, None) is not None


def pool(name: str = "train-a", provider: str = "aws", region: str = "us-east-1", zone: str = "us-east-1a",
         instance_type: str = "p5.48xlarge", nodes: int = 2, capacity_type: CapacityType = CapacityType.ON_DEMAND,
         placement: str = "cluster", gpu_model: str = "H100", gpus: int = 8, **kw: Any) -> NodePoolSpec:
    return NodePoolSpec(pool=name, workload=kw.pop("workload", f"wl-{name}"), team=kw.pop("team", "research"),
                        provider=provider, region=region, zone=zone, instance_type=instance_type,
                        gpu_model=gpu_model, gpus_per_node=gpus, nodes=nodes, capacity_type=capacity_type,
                        placement=placement, **kw)  # type: ignore[arg-type]
