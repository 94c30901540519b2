"""SkyPilot's optimizer as a worker process: JSON lines in on stdin, JSON lines out on stdout.

Runs under the benchmark's own virtualenv (.bench-venv) with ``skypilot`` installed, so it imports only the
standard library and ``sky`` (never Awan). SKY_RUNTIME_DIR must point at an exported catalog
(bench/placement/sky_catalog.py); the enabled clouds are fixed to AWS, GCP and Azure without credentials.

Request:  {"id": "r1", "gpu": "H100", "count": 8, "spot": false, "infra": ["aws/us-east-1", ...] | null}
Response: {"id": "r1", "ok": true, "cloud": "aws", "region": ..., "zone": ..., "instance_type": ...,
           "cost_per_hour": 98.32, "seconds": 0.61}   or   {"id": "r1", "ok": false, "error": "..."}
``seconds`` times the optimizer call alone, not the pipe.
"""

from __future__ import annotations

import json
import logging
import sys
import time


def _setup():  # noqa: ANN202 - sky's types are not importable in Awan's environment
    import sky
    import sky.check
    from sky import exceptions

    logging.disable(logging.WARNING)
    clouds = [sky.clouds.AWS(), sky.clouds.GCP(), sky.clouds.Azure()]

    def enabled(*_args, **_kwargs):  # noqa: ANN202, ANN002, ANN003
        return list(clouds)

    # The optimizer looks this up through the module at call time, so replacing it here is enough.
    sky.check.get_cached_enabled_clouds_or_refresh = enabled
    return sky, exceptions


def _decide(sky, exceptions, req: dict) -> dict:  # noqa: ANN001
    acc = {req["gpu"]: int(req["count"])}
    spot = bool(req.get("spot"))
    infra = req.get("infra")
    t0 = time.perf_counter()
    try:
        with sky.dag.Dag() as dag:
            task = sky.Task(run="true")
            if infra:
                task.set_resources({sky.Resources(accelerators=acc, use_spot=spot, infra=i) for i in infra})
            else:
                task.set_resources(sky.Resources(accelerators=acc, use_spot=spot))
        sky.optimizer.Optimizer.optimize(dag, quiet=True)
        best = task.best_resources
        seconds = time.perf_counter() - t0
        return {"id": req["id"], "ok": True, "cloud": str(best.cloud).lower(), "region": best.region,
                "zone": best.zone, "instance_type": best.instance_type,
                "cost_per_hour": float(best.get_cost(3600)), "seconds": seconds}
    except exceptions.ResourcesUnavailableError as e:
        return {"id": req["id"], "ok": False, "error": str(e).splitlines()[0][:300],
                "seconds": time.perf_counter() - t0}
    except Exception as e:  # noqa: BLE001 - report any optimizer failure to the driver instead of dying
        return {"id": req["id"], "ok": False, "error": f"{type(e).__name__}: {str(e)[:300]}",
                "seconds": time.perf_counter() - t0}


def main() -> int:
    # SkyPilot writes progress payloads to stdout; keep stdout for our JSON lines only.
    out, sys.stdout = sys.stdout, sys.stderr
    t0 = time.perf_counter()
    sky, exceptions = _setup()
    print(json.dumps({"ready": True, "import_seconds": time.perf_counter() - t0,
                      "version": getattr(sky, "__version__", "?")}), file=out, flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        print(json.dumps(_decide(sky, exceptions, json.loads(line))), file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
