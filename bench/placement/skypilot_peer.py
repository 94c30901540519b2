"""SkyPilot's optimizer as a peer, in the same run, on the same catalog and the same single-workload requests.

SkyPilot lives in its own virtualenv (``.bench-venv`` at the repo root, gitignored), created on first use
with ``python3 -m uv venv .bench-venv && uv pip install --python .bench-venv/bin/python skypilot``. It runs
as a worker process (bench/placement/sky_worker.py) fed JSON lines, against a v8 catalog exported from
ours (bench/placement/sky_catalog.py) into a temporary SKY_RUNTIME_DIR: nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.placement.sky_catalog import SKY_PROVIDERS, export_sky_catalog
from providers.catalog import Catalog

REPO = Path(__file__).resolve().parents[2]
BENCH_VENV = REPO / ".bench-venv"
WORKER = Path(__file__).with_name("sky_worker.py")


class PeerUnavailable(RuntimeError):
    """SkyPilot could not be installed or started; the report says so instead of comparing."""


@dataclass(frozen=True, slots=True)
class Request:
    """One single-node request both optimizers can answer: N x GPU, spot or not, an optional region set."""

    id: str
    gpu: str
    count: int
    spot: bool
    regions: tuple[tuple[str, str], ...] | None   # (provider, region); None = any region of aws/gcp/azure
    label: str

    def sky_json(self) -> dict[str, Any]:
        infra = [f"{p}/{r}" for p, r in self.regions] if self.regions else None
        return {"id": self.id, "gpu": self.gpu, "count": self.count, "spot": self.spot, "infra": infra}

    def manifest(self) -> dict[str, Any]:
        """The same request as a GPUWorkload: one node of ``count`` GPUs, restricted to the three clouds."""
        regions = [f"{p}:{r}" for p, r in self.regions] if self.regions else [f"{p}:*" for p in SKY_PROVIDERS]
        return {"metadata": {"name": self.id, "team": "bench"},
                "spec": {"kind": "inference", "gpus": {"model": [self.gpu], "count": self.count, "perNode": self.count},
                         "capacityType": ["spot" if self.spot else "on-demand"],
                         "location": {"regions": regions}}}


# (GPU, GPUs per node) that exist as single nodes on at least one of aws/gcp/azure in our catalog.
_KINDS = (("H100", 8), ("H100", 1), ("H200", 8), ("B200", 8), ("A100", 8), ("L4", 1), ("L4", 4), ("H100", 4),
          ("H100", 2), ("MI300X", 8))


def make_requests(catalog: Catalog, n: int) -> list[Request]:
    """``n`` deterministic requests cycling over GPU kinds, spot/on-demand and four kinds of region restriction
    (none, a geography, one provider, one region where the GPU is sold)."""
    # Only regions that sell GPUs (not TPU-only ones such as gcp us-central2): SkyPilot refuses a request
    # naming a region its catalog does not have, and the export holds GPU offerings only.
    gpu_regions = sorted({(o.provider, o.region) for o in catalog.offerings if o.provider in SKY_PROVIDERS
                          and not catalog.instance_type(o.provider, o.instance_type).gpu_model.startswith("TPU")})
    regions_by_geo: dict[str, list[tuple[str, str]]] = {}
    for p, r in gpu_regions:
        regions_by_geo.setdefault(catalog.region(p, r).geo, []).append((p, r))
    sold_in: dict[str, list[tuple[str, str]]] = {}
    for o in catalog.offerings:
        if o.provider in SKY_PROVIDERS:
            it = catalog.instance_type(o.provider, o.instance_type)
            key = f"{it.gpu_model}x{it.gpus}"
            if (o.provider, o.region) not in sold_in.setdefault(key, []):
                sold_in[key].append((o.provider, o.region))
    out: list[Request] = []
    restrictions = ("any", "geo:us", "geo:eu", "provider", "region")
    i = 0
    while len(out) < n:
        gpu, count = _KINDS[i % len(_KINDS)]
        restriction = restrictions[(i // len(_KINDS)) % len(restrictions)]
        spot = (i + i // len(_KINDS)) % 2 == 1       # half the requests spot, spread over kinds and restrictions
        where = sold_in.get(f"{gpu}x{count}", [])
        regions: tuple[tuple[str, str], ...] | None
        if restriction == "any":
            regions, label = None, "any of aws/gcp/azure"
        elif restriction.startswith("geo:"):
            geo = restriction[4:]
            regions, label = tuple(regions_by_geo.get(geo, [])), f"geo {geo}"
        elif restriction == "provider":
            provider = where[i % len(where)][0] if where else "aws"
            regions = tuple(x for x in sorted({w for w in where}) if x[0] == provider)
            label = f"{provider}:*"
        else:
            pick = sorted(where)[(i * 7) % len(where)] if where else ("aws", "us-east-1")
            regions, label = (pick,), f"{pick[0]}:{pick[1]}"
        if regions != ():
            out.append(Request(f"req-{len(out):03d}", gpu, count, spot, regions, label))
        i += 1
    return out


def ensure_bench_venv(log: Any = print) -> Path:
    """The python of .bench-venv, creating it (and installing skypilot) the first time."""
    py = BENCH_VENV / "bin" / "python"
    if py.exists() and subprocess.run([str(py), "-c", "import sky"], capture_output=True).returncode == 0:
        return py
    log("creating .bench-venv with skypilot (first run only, a few minutes)...")
    uv = [shutil.which("uv")] if shutil.which("uv") else [sys.executable, "-m", "uv"]
    for cmd in ([*uv, "venv", "-q", str(BENCH_VENV)],
                [*uv, "pip", "install", "-q", "--python", str(py), "skypilot"]):
        if not py.exists() or cmd[-1] == "skypilot":
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise PeerUnavailable(f"{' '.join(cmd)} failed: {done.stderr.strip()[-300:]}")
    return py


class SkyWorker:
    """The worker process; ``ask`` sends one request and waits for its answer."""

    def __init__(self, catalog: Catalog, python: Path) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="awan-sky-")
        self.catalog_rows = export_sky_catalog(catalog, Path(self._dir.name))
        env = {**os.environ, "SKY_RUNTIME_DIR": self._dir.name, "HOME": self._dir.name,
               "SKYPILOT_DISABLE_USAGE_COLLECTION": "1", "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen([str(python), str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True, env=env, cwd=self._dir.name)
        hello = self._read()
        if not hello.get("ready"):
            raise PeerUnavailable(f"SkyPilot worker did not start: {hello}")
        self.version = str(hello.get("version"))
        self.import_seconds = float(hello.get("import_seconds", 0.0))

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        for line in self._lines():
            if line.startswith("{"):
                return json.loads(line)
        raise PeerUnavailable(f"SkyPilot worker exited with {self._proc.wait()}")

    def _lines(self) -> Iterator[str]:
        assert self._proc.stdout is not None
        while True:
            line = self._proc.stdout.readline()
            if not line:
                return
            yield line.strip()

    def ask(self, req: dict[str, Any]) -> dict[str, Any]:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(req) + "\n")
        self._proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        self._dir.cleanup()

    def __enter__(self) -> SkyWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
