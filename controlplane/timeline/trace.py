"""Demand traces: workload arrivals with durations. Read from CSV (``at`` in hours from the scenario's start
or an ISO time, ``gpus``, ``gpuModel`` (``|``-separated alternatives), ``hours``, optional ``team``,
``maxWaitHours``, ``name``) or generated from a seed (Poisson arrivals, a size mix, exponential durations).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from controlplane.timeline.scenario import GenerateDoc, ScenarioError

DEFAULT_MAX_WAIT_H = 168.0


@dataclass(frozen=True, slots=True)
class Arrival:
    name: str
    at: datetime
    gpus: int
    models: tuple[str, ...]
    hours: float
    team: str = "default"
    max_wait_hours: float = DEFAULT_MAX_WAIT_H


def read_trace(path: Path, start: datetime) -> list[Arrival]:
    if not path.is_file():
        raise ScenarioError(f"{path}: no such trace file")
    out: list[Arrival] = []
    with path.open(newline="") as f:
        rows = csv.DictReader(f)
        missing = {"at", "gpus", "gpuModel", "hours"} - set(rows.fieldnames or [])
        if missing:
            raise ScenarioError(f"{path}: columns {', '.join(sorted(missing))} are missing")
        for i, r in enumerate(rows, start=2):
            try:
                at_s = r["at"].strip()
                at = start + timedelta(hours=float(at_s)) if _number(at_s) else datetime.fromisoformat(at_s)
                gpus, hours = int(r["gpus"]), float(r["hours"])
                wait = float(r.get("maxWaitHours") or DEFAULT_MAX_WAIT_H)
            except ValueError as e:
                raise ScenarioError(f"{path}:{i}: {e}") from None
            if gpus <= 0 or hours <= 0 or wait < 0:
                raise ScenarioError(f"{path}:{i}: gpus and hours must be > 0, maxWaitHours >= 0")
            models = tuple(m.strip() for m in r["gpuModel"].split("|") if m.strip())
            if not models:
                raise ScenarioError(f"{path}:{i}: gpuModel is empty")
            out.append(Arrival((r.get("name") or f"w{i - 1:06d}").strip(), at, gpus, models, hours,
                               (r.get("team") or "default").strip(), wait))
    out.sort(key=lambda a: a.at)
    return out


def _number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _pick(rng: random.Random, weights: Mapping[Any, float]) -> object:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def generate(g: GenerateDoc, start: datetime, end: datetime) -> Iterator[Arrival]:
    """``g.workloads`` arrivals spread uniformly at random over [start, end) (a Poisson process given the
    count), deterministic for a seed."""
    rng = random.Random(g.seed)
    span_h = (end - start).total_seconds() / 3600
    times = sorted(rng.random() * span_h for _ in range(g.workloads))
    for i, t in enumerate(times):
        size = int(_pick(rng, g.sizes))            # type: ignore[call-overload]
        model = str(_pick(rng, g.models))
        hours = max(0.25, min(24 * 14, rng.expovariate(1 / g.mean_hours) * (1 + size / 256)))
        yield Arrival(f"g{i:07d}", start + timedelta(hours=t), size, (model,), round(hours, 2),
                      g.teams[i % len(g.teams)], g.max_wait_hours)
