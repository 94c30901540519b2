"""The service as deployed, each part in its own process: the mock clouds (``awan mockclouds up``) and
``awan serve`` with its reconcile loop and the local engine, on a given store. A tree other than this one
(a peer revision) is served by putting it first on PYTHONPATH."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.api.service import free_port

# The `awan` command of whichever tree is first on PYTHONPATH.
_AWAN = "import sys; from controlplane.cli.main import app; sys.argv[0] = 'awan'; app()"


def tree_env(tree: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree) + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra}


def _stop(proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def mock_clouds(tree: Path, workdir: Path) -> Iterator[Path]:
    """``awan mockclouds up`` in its own process; yields the provider configuration it wrote."""
    config = workdir / "mockclouds.yaml"
    config.unlink(missing_ok=True)
    log = open(workdir / "mockclouds.log", "wb")   # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-c", _AWAN, "mockclouds", "up", "--write-config", str(config)],
                            cwd=workdir, env=tree_env(tree), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not config.exists() or not config.read_text().strip():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mock clouds did not start: {(workdir / 'mockclouds.log').read_text()[-800:]}")
            time.sleep(0.2)
        time.sleep(0.5)         # the file is written once every server listens; let the write finish
        yield config
    finally:
        _stop(proc)
        log.close()


def size_pools(config: Path, nodes: int) -> dict[str, int]:
    """Every pool of every mock cloud in ``config`` set to ``nodes`` free nodes (their control API,
    ``POST /_mock/capacity``); cloud -> pools set. No cloud publishes free capacity, so the adapters report a
    pool as large as the quota headroom, and placement fills the cheapest pool up to it: with the seeded
    pools (64 nodes of a 1-GPU type, 16 of an 8-GPU type a zone) thousands of workloads meet stock-outs and
    are moved. GCP's regional GPU quotas (256 a model) are raised to ``nodes`` too: at 1,000 workloads/s
    the loop placed past them (QuotaError, whole stacks moved) on the seeded limits."""
    import yaml

    from mockclouds.gcp.machines import DEFAULT_LIMITS
    from providers.catalog import default_catalog

    out = {}
    for name, p in (yaml.safe_load(config.read_text())["providers"]).items():
        base = str(p["endpoint"]).removesuffix("/{region}")
        r = httpx.post(f"{base}/_mock/capacity", json={"free": nodes}, timeout=60)
        r.raise_for_status()
        out[name] = int(r.json()["pools"])
        if name == "gcp":
            with httpx.Client(base_url=base, timeout=60) as c:
                for region in sorted({o.region for o in default_catalog().for_provider("gcp")}):
                    for metric, limit in DEFAULT_LIMITS.items():
                        c.post("/_mock/quotas", json={"region": region, "metric": metric,
                                                      "limit": max(limit, float(nodes))}).raise_for_status()
    return out


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) of ``root`` and its live descendants so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d.name)] = int(fields[1])
        cpu[int(d.name)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += [c for c, pp in parent.items() if pp == pid]
    return total


def proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) of ``pid`` alone, its children not counted: with one API
    worker, ``awan serve``'s own process is the API (the controller and the parse workers are its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def healthy(proc: subprocess.Popen[bytes], url: str, bound_s: float) -> bool:
    """Wait until ``url``/healthz answers 200 (True) or the process ends or ``bound_s`` passes (False)."""
    deadline = time.monotonic() + bound_s
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return True
        time.sleep(0.2)
    return False


@contextlib.contextmanager
def service(tree: Path, db_url: str, config: Path, workdir: Path, pids: list[int] | None = None,
            **settings: str) -> Iterator[str]:
    """``awan serve`` (reconcile loop on, the clouds in ``config``) on a loopback port; yields its URL.
    ``settings``: extra AWAN_* variables (name without the prefix, e.g. RECONCILE_INTERVAL_S="2");
    ``pids``: the service's process id is appended to it."""
    port = free_port()
    env = tree_env(tree, AWAN_LOG_LEVEL="WARNING", **{f"AWAN_{k.upper()}": v for k, v in settings.items()})
    log = open(workdir / f"serve-{port}.log", "wb")   # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-c", _AWAN, "serve", "--db", db_url, "--config", str(config),
                             "--port", str(port)], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    if pids is not None:
        pids.append(proc.pid)
    try:
        if not healthy(proc, url, 180):
            raise RuntimeError(f"awan serve did not come up: {Path(log.name).read_text()[-800:]}")
        yield url
    finally:
        _stop(proc)
        log.close()
