"""An in-memory Provider behind the same interface as the adapters (Karpenter's fake cloud provider
idea): idempotent by key like the clouds, with the extras the engine calls, and a log of calls."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from infra.spec import NodePoolSpec
from providers.base import Provider
from providers.catalog.model import CapacityType
from providers.errors import CapacityError, NotFoundError
from providers.model import CapacityReport, HealthStatus, Node, NodeRequest, NodeState, ProviderHealth


class FakeProvider(Provider):
    def __init__(self, name: str = "aws", extras: bool = True) -> None:
        self.name, self.endpoint = name, "memory://"
        self.nodes: dict[str, Node] = {}
        self.by_key: dict[str, list[str]] = {}
        self.placement_groups: dict[str, str] = {}
        self.reservations: dict[str, dict] = {}
        self.scale_sets: dict[str, dict] = {}
        self.node_pools: dict[str, dict] = {}
        self.calls: list[str] = []
        self.free: int | None = None           # None: unlimited capacity
        self._ids = itertools.count(1)
        if not extras:
            self.ensure_placement_group = None  # type: ignore[assignment]

    # questions
    def offerings(self):  # pragma: no cover - unused by the engine
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

    # extras
    def ensure_placement_group(self, name: str, region: str, strategy: str = "cluster") -> str:
        self.calls.append(f"ensure_placement_group:{name}")
        self.placement_groups[name] = strategy
        return name

    def delete_placement_group(self, name: str, region: str) -> None:
        self.calls.append(f"delete_placement_group:{name}")
        self.placement_groups.pop(name, None)

    def create_capacity_reservation(self, instance_type: str, zone: str, count: int, idempotency_key: str) -> str:
        self.calls.append("create_capacity_reservation")
        for rid, r in self.reservations.items():
            if r["key"] == idempotency_key:
                return rid
        rid = f"cr-{next(self._ids):05d}"
        self.reservations[rid] = {"instance_type": instance_type, "zone": zone, "count": count, "key": idempotency_key}
        return rid

    def cancel_capacity_reservation(self, reservation_id: str) -> None:
        self.calls.append(f"cancel_capacity_reservation:{reservation_id}")
        self.reservations.pop(reservation_id, None)

    def apply_scale_set(self, name: str, sku: str, capacity: int, spot: bool, tags: dict) -> dict:
        self.calls.append(f"apply_scale_set:{name}:{capacity}")
        self.scale_sets[name] = {"sku": sku, "capacity": capacity, "spot": spot, "tags": tags}
        return {"id": f"/subscriptions/x/vmss/{name}", "name": name}

    def delete_scale_set(self, name: str) -> None:
        self.calls.append(f"delete_scale_set:{name}")
        self.scale_sets.pop(name, None)

    def get_scale_set(self, name: str) -> dict:
        if name not in self.scale_sets:
            raise NotFoundError(f"scale set {name}")
        return self.scale_sets[name]

    def apply_node_pool(self, name: str, instance_type: str, target_nodes: int, labels: dict) -> dict:
        self.calls.append(f"apply_node_pool:{name}:{target_nodes}")
        self.node_pools[name] = {"instance_type": instance_type, "target_nodes": target_nodes, "labels": labels}
        return {"name": name}

    def delete_node_pool(self, name: str) -> None:
        self.calls.append(f"delete_node_pool:{name}")
        self.node_pools.pop(name, None)

    def get_node_pool(self, name: str) -> dict | None:
        return self.node_pools.get(name)


def pool(name: str = "train-a", provider: str = "aws", region: str = "us-east-1", zone: str = "us-east-1a",
         instance_type: str = "p5.48xlarge", nodes: int = 2, capacity_type: CapacityType = CapacityType.ON_DEMAND,
         placement: str = "cluster", gpu_model: str = "H100", gpus: int = 8, **kw) -> NodePoolSpec:
    return NodePoolSpec(pool=name, workload=kw.pop("workload", f"wl-{name}"), team=kw.pop("team", "research"),
                        provider=provider, region=region, zone=zone, instance_type=instance_type,
                        gpu_model=gpu_model, gpus_per_node=gpus, nodes=nodes, capacity_type=capacity_type,
                        placement=placement, **kw)  # type: ignore[arg-type]
