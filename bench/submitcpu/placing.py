"""Where the controller's CPU goes per workload placed:
``python -m bench.submitcpu.placing [N] [BATCH] [woken|tick] [DB_URL]``.

The real Controller over a catalog FleetSnapshot with ``bench.api.reconcile``'s engine (no cloud), as
``bench.api.reconcile`` runs it, but fed the way a steady stream of one-workload submits feeds it: ``BATCH``
workloads submitted (one document each, the submitcpu manifest), then one pass (``tick``) and its stack runs,
over and over until ``N`` are placed. ``woken``: the pass a submit's wake asks for (``woken_tick``: admit and
place only, as at a steady 1,000 submits/s); ``tick``: the full interval pass, stack runs included. Prints the process's CPU ms per workload for the passes alone (the
submits are not counted) and a profile of the passes (the loop's thread; stack runs on the worker threads
are in the CPU figure, not in the profile). Report only: nothing here changes the loop."""

from __future__ import annotations

import cProfile
import pstats
import sys
import time

from bench.api.reconcile import NoCloudEngine
from bench.api.service import fresh_database
from bench.submitcpu.cpu import manifest


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 1000
    batch = int(argv[1]) if len(argv) > 1 else 10
    mode = argv[2] if len(argv) > 2 else "woken"
    pg = argv[3] if len(argv) > 3 else ""
    from sqlalchemy import func, select

    from controlplane.api.workload_service import submit
    from controlplane.auth import create_token
    from controlplane.logs import configure_logging
    from controlplane.placement.snapshot import FleetSnapshot
    from controlplane.reconcile.controller import Controller, LoopConfig
    from controlplane.reconcile.leader import LeaderElector
    from controlplane.reconcile.policy_source import PolicySource
    from controlplane.settings import Settings
    from controlplane.store.db import Database
    from controlplane.store.migrate import upgrade
    from controlplane.store.models import Workload
    from providers.catalog import default_catalog

    configure_logging("WARNING")
    with fresh_database("postgresql" if pg else "sqlite", pg) as url:
        db = Database.from_url(url)
        upgrade(db.engine)
        with db.session() as s:
            _, who = create_token(s, "bench", "member")
        snap = FleetSnapshot.from_catalog(default_catalog(), scale=50.0)
        elector = LeaderElector(db, "bench-placing", ttl_s=600, renew_s=300)
        if not elector.step():
            raise RuntimeError("could not take the leader lease")
        ctl = Controller(db, {}, NoCloudEngine(), elector=elector, policies=PolicySource(db, []).current,
                         config=LoopConfig(stack_workers=4, edge=Settings().edge_passes), snapshot=lambda: snap)
        ctl.tick()      # the term's first pass (stale locks released): a woken pass may follow it
        prof = cProfile.Profile()
        cpu = 0.0
        passes = 0
        try:
            for start in range(0, n, batch):
                for i in range(start, min(n, start + batch)):
                    submit(db, who, manifest(f"p-{i}"), "bench")
                c0 = time.process_time()
                prof.enable()
                if mode == "woken":
                    ctl.woken_tick()
                else:
                    ctl.tick()
                    ctl.wait_idle(600)
                prof.disable()
                cpu += time.process_time() - c0
                passes += 1
            with db.session() as s:
                states = dict(s.execute(select(Workload.state, func.count()).group_by(Workload.state)).all())
        finally:
            ctl._pool.shutdown(wait=True)
            db.dispose()
    print(f"{n} workloads in {mode} passes of {batch}: {1000 * cpu / n:.2f} CPU ms per workload "
          f"({1000 * cpu / passes:.1f} ms per pass, {passes} passes); states {states}")
    st = pstats.Stats(prof)
    st.sort_stats("cumulative").print_stats(60)
    st.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main(sys.argv[1:])
