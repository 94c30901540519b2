"""A deterministic stream of GPU workloads: the request mix a large AI platform's controller sees.

Four sizes (the issue's benchmark): 1-GPU inference replicas, 8-GPU single nodes, 72-GPU NVLink gangs
(GB200 NVL72) and 1,024-GPU training gangs. Within each size a few *shapes* vary the GPU models, capacity
types, locations and data classes, so policy filters (residency, provider cap, CEL rule) have work to do.
The same seed gives the same stream, workload for workload.

Shapes are validated once and shared between workloads (the models are frozen), so a 100,000-workload
stream costs one small Metadata object per workload, not a full manifest.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from controlplane.model import GPUWorkload, Spec

# size class -> share of the stream (by count). Gangs are rare but large: together they hold ~40% of GPUs.
SIZE_MIX: dict[str, float] = {"1": 0.740, "8": 0.248, "72": 0.011, "1024": 0.001}

_OD = ["on-demand"]
_RES_OD = ["reserved", "on-demand"]
_SPOT = ["spot"]
_SPOT_OD = ["spot", "on-demand"]


@dataclass(frozen=True, slots=True)
class Shape:
    name: str
    size: str                      # "1" | "8" | "72" | "1024": the latency bucket
    weight: float                  # within its size class
    team: str
    spec: dict[str, Any]
    labels: tuple[tuple[str, str], ...] = ()


def _spec(kind: str, models: list[str], count: int, per_node: int | None = None, capacity: list[str] = _RES_OD,
          topology: dict[str, Any] | None = None, location: dict[str, Any] | None = None,
          priority: int = 0, max_price: float | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"kind": kind, "gpus": {"model": models, "count": count}, "capacityType": capacity,
                            "priority": priority}
    if per_node:
        spec["gpus"]["perNode"] = per_node
    if topology:
        spec["topology"] = topology
    if location:
        spec["location"] = location
    if max_price is not None:
        spec["maxPricePerGpuHour"] = max_price
    return spec


EU_PERSONAL = (("data-class", "eu-personal"),)

SHAPES: tuple[Shape, ...] = (
    # 1-GPU inference replicas
    Shape("inf-h100", "1", 30, "serving", _spec("inference", ["H100"], 1, capacity=_RES_OD)),
    Shape("inf-l4-us-spot", "1", 25, "serving", _spec("inference", ["L4"], 1, capacity=_SPOT_OD,
                                                     location={"geo": ["us"]})),
    Shape("inf-eu-personal", "1", 10, "eu-apps", _spec("inference", ["H100", "L4"], 1, capacity=_OD),
          labels=EU_PERSONAL),
    Shape("inf-tpu-v6e", "1", 10, "serving", _spec("inference", ["TPU-v6e"], 1, capacity=_OD)),
    Shape("inf-h100-aws-us-spot", "1", 15, "serving", _spec("inference", ["H100"], 1, capacity=_SPOT,
                                                            location={"regions": ["aws:us-*"]})),
    Shape("inf-l4-eu", "1", 10, "serving", _spec("inference", ["L4"], 1, capacity=_OD, location={"geo": ["eu"]},
                                                  max_price=2.0)),
    # 8-GPU single nodes
    Shape("node-h100", "8", 30, "research", _spec("training", ["H100"], 8, 8, priority=10)),
    Shape("node-h200", "8", 20, "research", _spec("training", ["H200"], 8, 8, priority=10)),
    Shape("node-hopper-spot", "8", 15, "research", _spec("batch", ["H100", "H200"], 8, 8, capacity=_SPOT_OD)),
    Shape("node-b200", "8", 10, "research", _spec("training", ["B200"], 8, 8, priority=10)),
    Shape("node-a100-eu", "8", 10, "eu-apps", _spec("batch", ["A100"], 8, 8, capacity=_OD), labels=EU_PERSONAL),
    Shape("node-tpu-v5p", "8", 10, "research", _spec("batch", ["TPU-v5p"], 8, capacity=_OD)),
    Shape("node-mi300x", "8", 5, "research", _spec("batch", ["MI300X"], 8, 8, capacity=_OD)),
    # 72-GPU NVLink gangs: one whole NVL72 rack each
    Shape("gang72-gb200", "72", 80, "research", _spec(
        "training", ["GB200"], 72, 4, topology={"domain": "nvlink", "domainSize": 72}, priority=50)),
    Shape("gang72-gb-any", "72", 20, "research", _spec(
        "training", ["GB200", "GB300"], 72, 4, topology={"domain": "nvlink", "domainSize": 72}, priority=50)),
    # 1,024-GPU training gangs: whole or not at all
    Shape("gang1024-hopper", "1024", 50, "research", _spec(
        "training", ["H100", "H200", "B200"], 1024, 8, topology={"domain": "any"}, priority=100)),
    Shape("gang1024-tpu-v5p", "1024", 50, "research", _spec(
        "training", ["TPU-v5p"], 1024, topology={"domain": "cluster"}, priority=100)),
)


@dataclass(frozen=True, slots=True)
class StreamItem:
    index: int
    shape: str
    size: str
    workload: GPUWorkload


class _Prepared:
    """Shapes validated once; choosing a workload is then two weighted draws and one small object."""

    def __init__(self, shapes: tuple[Shape, ...]) -> None:
        self.sizes = list(SIZE_MIX)
        self.size_weights = [SIZE_MIX[s] for s in self.sizes]
        self.by_size: dict[str, tuple[list[Shape], list[float], list[Spec]]] = {}
        for size in self.sizes:
            group = [s for s in shapes if s.size == size]
            specs = [Spec.model_validate(s.spec) for s in group]
            self.by_size[size] = (group, [s.weight for s in group], specs)


def workload_stream(n: int, seed: int = 20261123, shapes: tuple[Shape, ...] = SHAPES) -> Iterator[StreamItem]:
    """``n`` workloads, the same for the same seed. Lazily generated: memory stays flat however long."""
    rng = random.Random(seed)
    prep = _Prepared(shapes)
    for i in range(n):
        size = rng.choices(prep.sizes, prep.size_weights)[0]
        group, weights, specs = prep.by_size[size]
        k = rng.choices(range(len(group)), weights)[0]
        shape = group[k]
        wl = GPUWorkload.model_validate({
            "metadata": {"name": f"{shape.name}-{i:06d}", "team": shape.team, "labels": dict(shape.labels)},
            "spec": specs[k],      # a validated frozen model: pydantic keeps the instance, no re-validation
        })
        yield StreamItem(i, shape.name, size, wl)


def stream_gpus(n: int, seed: int = 20261123) -> dict[str, int]:
    """Total GPUs asked for per size class in the first ``n`` workloads (for the report)."""
    out: dict[str, int] = {s: 0 for s in SIZE_MIX}
    for item in workload_stream(n, seed):
        out[item.size] += item.workload.total_gpus
    return out
