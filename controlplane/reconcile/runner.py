"""Runner processes: `awan serve` starts ``AWAN_RUNNER_PROCESSES`` child processes beside the loop's
(child.py, the same machinery: spawned, killed with the parent, drained on SIGTERM, restarted on a crash, logs
inherited, metrics merged), each a Controller that never stands for leadership and so runs only what a replica
that does not lead runs on PostgreSQL: the stack runs nobody holds and its share of the observe and dispatch
rounds (sharing.py, work leases). While one holds a live "runner" lease, the leader leaves the stack runs to
them (Controller._runners_take_stacks) and places, applies observations and dispatches as before.

Why: the loop child placed only 66-125 workloads/s at 1,000 submissions/s on 2 cores (BENCHMARKS.md, rate) with
placement at ~1 ms of CPU a workload: a py-spy --gil profile of the loop child gave placing ~34% of its GIL, the
rest to the same interpreter's stack runs (the engine's create calls on its thread pool), observing and their
bookkeeping. A runner has a GIL of its own, so placing gets the loop child's.

Nothing waits on a runner: when one dies (SIGKILL, OOM) its parent sees the exit and frees every lease the dead
holder had (child.ChildLoop._release_leases, work_leases.release_holder: by holder name, so a lease taken over
since is untouched), then starts another after 2 s under a new holder name, which takes the dead one's stacks at
its first pass (the engine adopts what the cut-short run left); with no runner live the leader runs stacks
itself again. A runner killed at shutdown after its grace (ChildLoop.stop) has its leases freed the same way. Should that release fail, the leases expire after ``AWAN_WORK_LEASE_TTL_S`` and are taken over as
a dead replica's are; the new name means the new runner never renews them meanwhile. A drained runner releases
its "runner" lease at once.

PostgreSQL only: shared stack runs need ``SELECT ... FOR UPDATE SKIP LOCKED`` and several writers; on SQLite
(one writer, one replica) the leader runs everything and ``awan serve`` refuses a runner. Opt-in (default 0):
on the 2-core development machine, where the API, the loop, a runner and the mock clouds share two cores, the
runner's CPU came out of the API's and the gain was within the noise (BENCHMARKS.md, rate); it is for machines
with cores to spare.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

from controlplane.logs import get_logger
from controlplane.reconcile.child import ChildLoop
from controlplane.reconcile.leader import LeaderElector
from controlplane.reconcile.sharing import WorkShare
from controlplane.store import work_leases
from controlplane.store.db import Database

if TYPE_CHECKING:
    from controlplane.settings import Settings
    from providers.config import AwanConfig

log = get_logger("awan.controller")


def runner_processes(settings: Settings) -> int:
    """How many runner processes `awan serve` starts: the setting (default 0: opt-in, because on the 2-core
    development machine the gain was within the noise, BENCHMARKS.md rate, "runner processes"); none with the
    loop inline (in the API process) or off."""
    if not settings.reconcile or settings.controller_process != "process":
        return 0
    return settings.runner_processes


def runner_holder(replica_id: str, index: int) -> str:
    """A name of its own for each start of a runner: a restarted runner must not renew (work_leases.renew
    goes by holder) the leases of the one that died, which are left to expire and be taken over."""
    return f"{replica_id}.runner{index}.{secrets.token_hex(3)}"


class NeverLeads(LeaderElector):
    """A runner's elector: it never stands for the lease, so its Controller runs a non-leader's passes
    (shared stack runs and rounds) and its fence refuses every leader's write."""

    def __init__(self, db: Database, holder: str) -> None:
        super().__init__(db, holder, own_connection=False)

    def step(self) -> bool:
        return False

    def start(self) -> None:
        pass


class Presence:
    """A runner's "runner" lease: what tells the leader a runner is live. ``beat`` takes it (again, should it
    have lapsed in a stall) every third of its life; the share's renewer extends it with its other leases."""

    def __init__(self, share: WorkShare) -> None:
        self.share = share
        self._epoch: int | None = None
        self._at = float("-inf")

    def beat(self) -> None:
        now = time.monotonic()
        if now - self._at < self.share.ttl_s / 3:
            return
        self._at = now
        try:
            got = self.share.claim([self.share.holder], 1, kind=work_leases.RUNNER)
        except Exception as e:   # tried again at the next beat; meanwhile the leader may run stacks too
            log.warning("runner lease not taken", error=str(e))
            return
        if got:
            self._epoch = got[self.share.holder]

    def leave(self) -> None:
        """Drained: the leader runs stacks again from its next pass, not after the lease's expiry."""
        if self._epoch is not None:
            self.share.release(self.share.holder, self._epoch, kind=work_leases.RUNNER)
            self._epoch = None


class WithRunners:
    """The service's loop (context.ServiceLoop) with its runner processes: leadership and the loop's questions
    go to the loop child; start and stop (the same grace, at once) to every child."""

    def __init__(self, loop: ChildLoop, runners: list[ChildLoop]) -> None:
        self.loop, self.runners = loop, runners

    @property
    def elector(self) -> ChildLoop:
        return self.loop

    @property
    def is_leader(self) -> bool:
        return self.loop.is_leader

    def exposition(self) -> bytes:
        """The loop's and every runner's metrics as one exposition (metricsmerge, the runners as the loop's
        peers: counters summed, so ``awan_stack_runs_total`` counts the runners' runs; a gauge the loop's when
        it has one). One answer for every asker: the API process's /metrics and, with ``--workers N``, the
        parent's answer to each worker (api/workers.py), which once passed on the loop's alone."""
        from controlplane.api.metricsmerge import merge

        return merge(self.loop.exposition(), (), [r.exposition() for r in self.runners])

    def start(self) -> None:
        self.loop.start()
        for r in self.runners:
            r.start()

    def stop(self, release_lease: bool = True, grace_s: float = 60.0) -> bool:
        done: dict[int, bool] = {}

        def one(i: int, child: ChildLoop) -> None:
            done[i] = child.stop(release_lease=release_lease, grace_s=grace_s)

        children = [self.loop, *self.runners]
        threads = [threading.Thread(target=one, args=(i, c), name=f"awan-stop-{i}") for i, c in enumerate(children)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return all(done.get(i, False) for i in range(len(children)))


def service_loop(settings: Settings, config: AwanConfig | None) -> ChildLoop | WithRunners:
    """The loop child, with the runner children when there are any (``runner_processes``)."""
    dumped: dict[str, Any] = settings.model_dump()
    loop = ChildLoop(dumped, config)
    n = runner_processes(settings)
    if n == 0:
        return loop
    return WithRunners(loop, [ChildLoop(dumped, config, runner=i) for i in range(n)])
