"""In-test fakes of the Provider and Engine protocols and of the placement function: a tiny cloud whose
nodes an engine creates idempotently per pool, recording every create so tests can see duplicates."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controlplane.placement.results import Assignment
from infra.engines.base import ChangeSet, UpResult
from infra.spec import StackSpec
from providers.base import Provider
from providers.catalog.model import CapacityType
from providers.model import CapacityReport, HealthStatus, Node, NodeRequest, NodeState, ProviderHealth


@dataclass
class FakeCloud:
    nodes: dict[str, Node] = field(default_factory=dict)      # node id -> node
    creates: list[str] = field(default_factory=list)          # every node id ever created
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pools(self, stack: str) -> set[str]:
        return {n.pool for n in self.nodes.values() if n.labels.get("stack") == stack}


class FakeProvider(Provider):
    def __init__(self, name: str, cloud: FakeCloud) -> None:
        self.name, self.endpoint, self.cloud = name, f"fake://{name}", cloud
        self.fail_list = False

    def offerings(self) -> list[Any]:
        return []

    def capacity(self) -> CapacityReport:
        return CapacityReport(self.name, (), (), datetime.now(UTC))

    def list_nodes(self) -> list[Node]:
        if self.fail_list:
            raise ConnectionError("fake outage")
        with self.cloud.lock:
            return [n for n in self.cloud.nodes.values() if n.provider == self.name]

    def health(self) -> ProviderHealth:
        return ProviderHealth(self.name, self.endpoint, HealthStatus.OK, 1.0)

    def create_nodes(self, request: NodeRequest) -> list[Node]:
        raise NotImplementedError

    def delete_nodes(self, nodes: Sequence[Node]) -> None:
        raise NotImplementedError


class FakeEngine:
    """``up`` makes the cloud hold exactly the stack's pools: creates missing nodes (id = pool/index, so
    a second run creates nothing), deletes nodes of pools the stack no longer has."""

    name = "fake"

    def __init__(self, cloud: FakeCloud, fail_times: int = 0) -> None:
        self.cloud, self.fail_times, self.calls = cloud, fail_times, 0

    def up(self, stack: StackSpec) -> UpResult:
        self.calls += 1
        if self.fail_times > 0:
            self.fail_times -= 1
            raise RuntimeError("injected engine failure")
        with self.cloud.lock:
            want = {}
            for p in stack.pools:
                for i in range(p.nodes):
                    nid = f"{p.pool}/{i}"
                    want[nid] = Node(provider=p.provider, id=nid, name=nid, region=p.region, zone=p.zone,
                                     instance_type=p.instance_type, capacity_type=p.capacity_type,
                                     state=NodeState.RUNNING, pool=p.pool, workload=p.workload,
                                     gpus=p.gpus_per_node, labels={"stack": stack.name})
            for nid in [k for k, n in self.cloud.nodes.items() if n.labels.get("stack") == stack.name]:
                if nid not in want:
                    del self.cloud.nodes[nid]
            for nid, n in want.items():
                had = self.cloud.nodes.get(nid)
                if had is None or had.instance_type != n.instance_type:   # new, or replaced (new type)
                    self.cloud.nodes[nid] = n
                    self.cloud.creates.append(nid)
        return UpResult(stack.name, ChangeSet(), {}, 0.0)


@dataclass
class FakeDecision:
    workload: str
    placed: bool
    assignments: list[Assignment]
    reasons: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"workload": self.workload, "placed": self.placed, "reasons": self.reasons,
                "assignments": [{"provider": a.provider, "region": a.region, "nodes": a.nodes, "gpus": a.gpus}
                                for a in self.assignments]}


@dataclass
class FakeResult:
    decisions: list[FakeDecision]


class FakePlacer:
    """Puts every workload on aws/us-east-1 p5.48xlarge (8 GPUs a node), unless its name starts with
    ``nope``; counts how many times each workload was decided."""

    def __init__(self) -> None:
        self.decided: dict[str, int] = {}

    def __call__(self, workloads: Sequence[Any], snapshot: Any, policies: Any) -> FakeResult:
        out = []
        for w in workloads:
            self.decided[w.name] = self.decided.get(w.name, 0) + 1
            if w.name.startswith("nope"):
                out.append(FakeDecision(w.name, False, [], ["no capacity: nothing matches"]))
                continue
            nodes = max(1, w.total_gpus // 8)
            out.append(FakeDecision(w.name, True, [Assignment(
                w.name, "aws", "us-east-1", "us-east-1a", "p5.48xlarge", nodes, nodes * 8, "H100",
                CapacityType.ON_DEMAND, price_per_hour=98.3 * nodes)], ["cheapest"]))
        return FakeResult(out)


def manifest(name: str, team: str = "research", gpus: int = 16) -> str:
    return (f"apiVersion: awan.dev/v1alpha1\nkind: GPUWorkload\nmetadata: {{name: {name}, team: {team}}}\n"
            f"spec: {{kind: training, gpus: {{model: H100, count: {gpus}, perNode: 8}}}}\n")
