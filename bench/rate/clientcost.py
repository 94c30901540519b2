"""``python -m bench.rate.clientcost [RATE SECONDS]``: the CPU an open-loop submitter process spends per
POST, the raw client against the httpx one, alternated, against a trivial server in its own process
(``bench.rate.echo``), so the figure is the client's alone. Prints one line per run and the medians."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.api.service import REPO, free_port


def one(url: str, client: str, rate: float, seconds: float, docs: int, workdir: Path) -> dict[str, float]:
    out = workdir / f"{client}-{time.monotonic_ns()}.json"
    p = subprocess.Popen([sys.executable, "-m", "bench.rate.submitter", url, "t", str(rate), str(seconds), "c",
                          str(out), "0", "1", "--client", client, "--docs", str(docs)], cwd=REPO)
    while not Path(f"{out}.started").exists():
        if p.poll() is not None:
            raise RuntimeError(f"submitter exited {p.returncode}")
        time.sleep(0.05)
    Path(f"{out}.go").write_text(repr(time.time() + 0.3))
    if p.wait() != 0:
        raise RuntimeError(f"submitter exited {p.returncode}")
    res = json.loads(out.read_text())
    rows = res["requests"]
    posts = len({r["post"] for r in rows})
    ok = sum(r["status"] == 201 for r in rows)
    lag = sorted(r["sent"] - r["post_due"] for r in rows)
    return {"posts": posts, "ok": ok, "cpu_s": res["cpu_s"], "ms_per_post": 1000 * res["cpu_s"] / posts,
            "send_lag_p99_ms": 1000 * lag[int(0.99 * (len(lag) - 1))]}


def main(argv: list[str]) -> None:
    rate = float(argv[0]) if argv else 500.0
    seconds = float(argv[1]) if len(argv) > 1 else 10.0
    rounds = int(argv[2]) if len(argv) > 2 else 3
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "bench.rate.echo", str(port)], cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.post(url + "/", content=b"x", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        got: dict[str, list[float]] = {"raw": [], "httpx": []}
        with tempfile.TemporaryDirectory(prefix="awan-clientcost-") as d:
            for _ in range(rounds):
                for client in ("httpx", "raw"):
                    r = one(url, client, rate, seconds, 1, Path(d))
                    got[client].append(r["ms_per_post"])
                    print(f"clientcost: {client} {rate}/s x {seconds} s: {r['posts']} POSTs, {r['ok']} answered 201, "
                          f"CPU {r['cpu_s']:.2f} s = {r['ms_per_post']:.3f} ms/POST, send lag p99 "
                          f"{r['send_lag_p99_ms']:.1f} ms; load {os.getloadavg()[0]:.1f}", flush=True)
        print(f"clientcost: median ms CPU per POST: httpx {statistics.median(got['httpx']):.3f}, raw "
              f"{statistics.median(got['raw']):.3f}", flush=True)
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
