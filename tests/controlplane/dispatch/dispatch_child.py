"""The run step (dispatch) in a process of its own, for the SIGKILL test: ``tick`` over and over against
the clusters of the configuration given as JSON, printing each pass. With ``AWAN_TEST_KILL_AT=<step>`` the
process SIGKILLs itself the first time it passes that step of dispatch (right after the cluster answered
it, or before/after the store write), so the kill lands exactly there: a real process, a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

from controlplane.dispatch.clusters import ClusterSet
from controlplane.dispatch.kube import KubeCluster
from controlplane.reconcile.running import Change, RunStep
from controlplane.store.db import Database
from providers.config import parse_config

KILL_AT = os.environ.get("AWAN_TEST_KILL_AT", "")


def reached(step: str) -> None:
    print(f"step {step}", flush=True)
    if step == KILL_AT:
        print(f"SIGKILL at {step}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


class KillingCluster(KubeCluster):
    def create(self, obj: dict[str, Any]) -> bool:
        made = super().create(obj)
        if made:
            reached(f"created-{obj['kind']}")
        return made

    def resume(self, job: str) -> None:
        super().resume(job)
        reached("resumed")

    def ungate(self, pod: dict[str, Any], gate: str, node_selector: dict[str, str]) -> None:
        super().ungate(pod, gate, node_selector)
        reached("ungated-one")


class KillingStep(RunStep):
    def _apply(self, changes: list[Change]) -> None:
        what = "+".join(sorted({c.event[0] for c in changes if c.event is not None}))
        if what:
            reached(f"before-record-{what}")
        super()._apply(changes)
        if what:
            reached(f"after-record-{what}")


def main(url: str, config: str) -> None:
    db = Database.from_url(url)
    clusters = ClusterSet(parse_config(json.loads(config)), factory=KillingCluster)
    step = KillingStep(db, clusters, actor="controller:child", fenced=lambda: True, idle_timeout_s=lambda: 3600.0)
    n = 0
    while True:
        step.tick()
        n += 1
        print(f"pass {n}", flush=True)
        time.sleep(0.05)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
