"""Run the resilience scenarios against freshly started mock clouds and print the figures:

    .venv/bin/python -m tests.resilience.report [--workloads 200] [--kills 20]

Exit status 1 when any scenario lost a workload or left a duplicate or orphaned cloud resource.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from mockclouds.launcher import MockClouds
from tests.resilience import badinput
from tests.resilience.scenarios import (
    Env,
    Figures,
    controller_kills,
    gang_resubmit_cycles,
    outage_and_faults,
    revoke_and_stock_out_each,
)

# The loop's bound on a pool that stays short (a capacity failure after it) in this run; the service's
# default is 180 s (pool_short_bound_s). CoreWeave shows a revoked, emptied zone only as pending nodes,
# so its failover time below is this bound plus a placement and a stack run.
SHORT_BOUND_S = "30"


def _bad_inputs(workdir: Path) -> Figures:
    with badinput.api_on_fresh_db(workdir) as (c, db, member, admin):
        rep = badinput.run(c, db, member, admin)
    return Figures({"malformed inputs tried": rep.tried, "malformed inputs mishandled": len(rep.failures)})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", type=int, default=200, help="workloads in the controller-kill run")
    ap.add_argument("--kills", type=int, default=20, help="SIGKILLs of the service during that run")
    ap.add_argument("--outage-workloads", type=int, default=16)
    ap.add_argument("--gang-cycles", type=int, default=2, help="delete/resubmit cycles of a gang per provider")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    total = Figures()
    with tempfile.TemporaryDirectory(prefix="awan-resilience-") as d, MockClouds() as clouds:
        base = Path(d)
        env = {"AWAN_POOL_SHORT_BOUND_S": SHORT_BOUND_S}
        for name, run in (("outage", lambda w: outage_and_faults(Env(clouds, w), args.outage_workloads)),
                          ("gangs", lambda w: gang_resubmit_cycles(Env(clouds, w), args.gang_cycles)),
                          ("revoke", lambda w: revoke_and_stock_out_each(Env(clouds, w, env))),
                          ("kills", lambda w: controller_kills(Env(clouds, w), args.workloads, args.kills))):
            work = base / name
            work.mkdir()
            clouds.reset()
            total.merge(run(work))
        total.merge(_bad_inputs(base))
    lost = sum(len(v.lost) for v in total.verdicts)
    dup = sum(len(v.duplicates) for v in total.verdicts)
    orphans = sum(len(v.orphans) for v in total.verdicts)
    for k, v in total.values.items():
        print(f"{k:45s} {v}")
    print(f"{'workloads lost':45s} {lost}")
    print(f"{'duplicate cloud resources':45s} {dup}")
    print(f"{'orphaned cloud resources':45s} {orphans}")
    print(f"{'suite wall time (s)':45s} {time.monotonic() - t0:.0f}")
    for v in total.verdicts:
        if not v.ok:
            print(f"FAILED: {v}", file=sys.stderr)
    bad = lost or dup or orphans or total.values.get("malformed inputs mishandled", 0)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
