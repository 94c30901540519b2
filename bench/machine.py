"""What the benchmark ran on, and pinning to one core: every suite reports the same machine block."""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def pin_one_core() -> int | None:
    """Pin this process to one CPU (the targets are stated per core). Returns the core, or None where the
    OS has no affinity call (macOS): then the figures are for an unpinned process, and the report says so."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    core = allowed[-1]          # the last core: core 0 tends to take the most interrupts
    os.sched_setaffinity(0, {core})
    return core


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def machine_info(pinned_core: int | None) -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_gib": _ram_gib(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "pinned_core": pinned_core,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def peak_rss_mib() -> float:
    """Peak resident set of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def write_results(results_dir: Path, suite: str, payload: dict[str, Any]) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results_dir / f"{suite}-{stamp}.json"
    text = json.dumps(payload, indent=2, sort_keys=True, default=str)
    path.write_text(text)
    (results_dir / f"{suite}-latest.json").write_text(text)
    return path


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in [0, 100]); nan when empty."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]
