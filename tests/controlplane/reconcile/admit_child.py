"""A controller's admission passes in a process of its own, for the SIGKILL test: release victims whose
grace is over, admit, and start (mark Running) what was admitted, over and over, printing each pass."""

from __future__ import annotations

import sys
import time

from sqlalchemy import update

from controlplane.reconcile.admitting import QueueSource, admit_pending, release_victims
from controlplane.reconcile.policy_source import PolicySource
from controlplane.store.coltypes import utcnow
from controlplane.store.db import Database
from controlplane.store.models import Workload, WorkloadState


def main(url: str) -> None:
    db = Database.from_url(url)
    source = QueueSource(PolicySource(db).document)
    n = 0
    while True:
        cfg = source.current()
        released = release_victims(db, cfg, fenced=lambda: True, actor="controller:child")
        res = admit_pending(db, cfg, fenced=lambda: True, actor="controller:child")
        with db.session() as s:
            s.execute(update(Workload).where(Workload.admitted_at.is_not(None),
                                             Workload.state == WorkloadState.PENDING.value)
                      .values(state=WorkloadState.RUNNING.value, running_at=utcnow()))
        n += 1
        print(f"pass {n} admitted={len(res.admitted)} marked={len(res.marked)} released={len(released)}",
              flush=True)
        time.sleep(0.01)


if __name__ == "__main__":
    main(sys.argv[1])
