"""Run the resilience scenarios against freshly started mock clouds and print the figures:

    .venv/bin/python -m tests.resilience.report [--workloads 200] [--kills 20]
    .venv/bin/python -m tests.resilience.report --replicas 3 --sigkills 20 [--pg-url URL]

Exit status 1 when any scenario lost a workload or left a duplicate or orphaned cloud resource.

With ``--replicas N`` (N > 1) every scenario runs N replicas of the service on PostgreSQL (a database of
its own, ``awan_resil_<pid>_<hex>``, created on the server of ``--pg-url`` and dropped at the end; one
schema per scenario), each calling the clouds under its own name. ``--sigkills`` SIGKILLs are spread over
the run: a fifth of them at random moments in each of the outage, gang and revocation scenarios, the rest
in the kill scenario; each hits the leader or a stack lease holder, chosen at random (``--seed``), and the
replica is restarted. Exit status 1 also when two replicas changed one stack at the same time (the mock
clouds' request logs) or a stack-changing call came from an unnamed caller (no proof either way).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from mockclouds.launcher import MockClouds
from tests.resilience import badinput
from tests.resilience.replicas import GroupSpec, Kills, PgDatabase, check_logs
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


class _NoDatabase:
    """One replica: each scenario makes its own SQLite file."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _rest(kills: Kills) -> int:
    """What is left of the budget, spent by the caller from here on."""
    with kills.lock:
        n, kills.left = kills.left, 0
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", type=int, default=200, help="workloads in the controller-kill run")
    ap.add_argument("--kills", type=int, default=20, help="SIGKILLs of the service during that run")
    ap.add_argument("--outage-workloads", type=int, default=16)
    ap.add_argument("--gang-cycles", type=int, default=2, help="delete/resubmit cycles of a gang per provider")
    ap.add_argument("--replicas", type=int, default=1, help="replicas of the service (more than 1: PostgreSQL)")
    ap.add_argument("--sigkills", type=int, default=20, help="with --replicas: SIGKILLs spread over the run")
    ap.add_argument("--seed", type=int, default=6, help="with --replicas: which replica each SIGKILL hits")
    ap.add_argument("--pg-url", default=os.environ.get("AWAN_TEST_PG_URL",
                                                         "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
                    help="with --replicas: the PostgreSQL server (a database of the run's own is made there)")
    args = ap.parse_args(argv)
    if args.replicas < 1 or args.sigkills < 0:
        ap.error("--replicas must be at least 1 and --sigkills at least 0")
    t0 = time.monotonic()
    total = Figures()
    overlaps = unnamed = 0
    kills = Kills(args.sigkills, seed=args.seed)
    with (tempfile.TemporaryDirectory(prefix="awan-resilience-") as d, MockClouds() as clouds,
          PgDatabase(args.pg_url) if args.replicas > 1 else _NoDatabase() as pg):
        base = Path(d)
        short = {"AWAN_POOL_SHORT_BOUND_S": SHORT_BOUND_S}

        def env(work: Path, name: str, chaos: int, extra: dict[str, str] | None = None) -> Env:
            if pg is None:
                return Env(clouds, work, dict(extra or {}))
            return Env(clouds, work, dict(extra or {}), db_url=pg.schema(name),
                       group=GroupSpec(kills, args.replicas, chaos=chaos))

        share = max(1, args.sigkills // 5) if pg is not None else 0
        # With replicas every wait is longer: a SIGKILLed leader's lease must expire before another leads.
        wait: dict[str, float] = {"timeout_s": 900} if pg is not None else {}
        runs: list[tuple[str, Callable[[Path, str], Figures]]] = [
            ("outage", lambda w, n: outage_and_faults(env(w, n, share), args.outage_workloads, **wait)),
            ("gangs", lambda w, n: gang_resubmit_cycles(env(w, n, share), args.gang_cycles, **wait)),
            ("revoke", lambda w, n: revoke_and_stock_out_each(env(w, n, share, short), **wait)),
            # With replicas the kill run spends what the others left of --sigkills; alone, --kills.
            ("kills", lambda w, n: controller_kills(env(w, n, 0), args.workloads,
                                                    _rest(kills) if pg is not None else args.kills, **wait))]
        for name, run in runs:
            work = base / name
            work.mkdir()
            clouds.reset()
            total.merge(run(work, name))
            if pg is not None:
                logs = check_logs(clouds)
                overlaps += logs.overlap_count
                unnamed += sum(logs.unnamed.values())
                total.merge(Figures({"stack-changing cloud calls logged": sum(logs.writes.values())}))
                for cloud, pairs in logs.overlaps.items():
                    for a, b in pairs[:5]:
                        print(f"OVERLAP in {name}, {cloud}/{a.region}: {a} / {b}", file=sys.stderr)
        total.merge(_bad_inputs(base))
    if args.replicas > 1:
        hit = Counter(k.split()[0] for k in kills.done)
        why = Counter(k.split(" ", 1)[1] for k in kills.done)
        total.values["replicas (PostgreSQL)"] = args.replicas
        total.values["replica SIGKILLs (each restarted)"] = len(kills.done)
        total.values["SIGKILLs per replica"] = ", ".join(f"{r} {n}" for r, n in sorted(hit.items()))
        total.values["SIGKILLs by role"] = ", ".join(f"{r} {n}" for r, n in sorted(why.items()))
        total.values["stack calls overlapping across replicas"] = overlaps
        total.values["stack calls of an unnamed caller"] = unnamed
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
    bad = lost or dup or orphans or total.values.get("malformed inputs mishandled", 0) or overlaps or unnamed
    if args.replicas > 1 and len(kills.done) != args.sigkills:
        print(f"FAILED: {len(kills.done)} SIGKILLs done of {args.sigkills}", file=sys.stderr)
        bad = True
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
