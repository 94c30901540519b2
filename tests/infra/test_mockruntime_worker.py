"""Programs render in a worker process (issue 14, item 4): the caller (the API service) gets the same
recording as an in-process run, while its garbage collector stays on and Pulumi's process-global
runtime is never set up in it; a program's error comes back as itself; a killed worker is replaced."""

from __future__ import annotations

import gc
import os
import signal
import threading

import pytest
from pulumi.runtime.settings import SETTINGS, get_root_resource

from infra.engines import mockruntime_worker as worker
from infra.engines.mockruntime import run_program
from infra.programs import program_for
from infra.spec import StackSpec
from tests.infra.fakes import pool

AWS = StackSpec("aws", "us-east-1", (pool("train-a", nodes=2), pool("serve-b", nodes=1, placement="none")))
GCP = StackSpec("gcp", "us-central1", (pool("train-a", provider="gcp", region="us-central1", zone="us-central1-a",
                                          instance_type="a3-highgpu-8g", nodes=2),), config={"project": "p"})
# Large enough that the render lasts a while (hundreds of resources): the sampler below sees it run.
BIG = StackSpec("aws", "us-east-1", tuple(pool(f"p{i}", nodes=4) for i in range(40)))


def _pulumi_globals() -> tuple[object, ...]:
    return (SETTINGS.monitor, SETTINGS.project, SETTINGS.stack, get_root_resource(), len(SETTINGS.outputs))


@pytest.mark.parametrize("stack", [AWS, GCP], ids=lambda s: s.provider)
def test_worker_records_what_an_in_process_run_records(stack: StackSpec) -> None:
    got = worker.render(stack)
    want = run_program(program_for(stack), stack.name)
    # Equal as records (the order may differ: a stack the worker rendered before is rendered for what
    # changed, its own resources first, then each pool's: infra.engines.rendercache).
    assert got.resources and set(got.resources) == set(want.resources) and got.resources == want.resources
    assert got.outputs == want.outputs


def test_rendering_leaves_the_callers_process_alone() -> None:
    assert worker.worker_pid() != os.getpid()
    before = _pulumi_globals()
    samples: list[bool] = []
    done = threading.Event()

    def sample() -> None:             # what a request thread of the service would see meanwhile
        while not done.is_set():
            samples.append(gc.isenabled())
            done.wait(0.001)

    t = threading.Thread(target=sample)
    t.start()
    try:
        rec = worker.render(BIG)
    finally:
        done.set()
        t.join()
    assert len(rec.resources) > 200
    assert samples and all(samples), f"the collector was off in this process for {samples.count(False)} samples"
    assert gc.isenabled()
    # In-process, run_program installs a fresh mock monitor and root resource per run: none here.
    assert _pulumi_globals() == before


def test_a_programs_error_comes_back_as_itself() -> None:
    with pytest.raises(KeyError, match="no-such-cloud"):
        worker.render(StackSpec("no-such-cloud", "r1", ()))
    assert worker.render(AWS).resources             # the worker is still serving


def test_a_killed_worker_is_replaced() -> None:
    pid = worker.worker_pid()
    os.kill(pid, signal.SIGKILL)
    assert worker.render(AWS).resources
    assert worker.worker_pid() not in (pid, os.getpid())


def test_cpu_time_of_the_worker_is_counted() -> None:
    before = worker.cpu_seconds()
    worker.render(AWS)
    assert worker.cpu_seconds() > before
