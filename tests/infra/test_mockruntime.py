"""The mock runtime's shortcuts change nothing a program sees: the monitor's answer is what Pulumi's
own serializer would send, the garbage collector and the thread's event loop are handed back as they
were, and the same stack records the same resources every time."""

from __future__ import annotations

import asyncio
import gc

import pytest
from pulumi.runtime import rpc
from pulumi.runtime.sync_await import _sync_await

from infra.engines.mockruntime import normalise, run_program, to_struct
from infra.programs import program_for
from infra.spec import StackSpec
from tests.infra.fakes import pool

STACKS = [
    StackSpec("aws", "us-east-1", (pool("train-a", nodes=2), pool("serve-b", nodes=1, placement="none"))),
    StackSpec("gcp", "us-central1", (pool("train-a", provider="gcp", region="us-central1", zone="us-central1-a",
                                          instance_type="a3-highgpu-8g", nodes=2),), config={"project": "p"}),
    StackSpec("azure", "eastus", (pool("train-a", provider="azure", region="eastus", zone="eastus-1",
                                       instance_type="Standard_ND96isr_H100_v5", nodes=2),)),
    StackSpec("coreweave", "US-EAST-04", (pool("train-a", provider="coreweave", region="US-EAST-04",
                                               zone="US-EAST-04A", instance_type="gd-8xh100ib-i128"),)),
]


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s.provider)
def test_answer_is_what_pulumis_serializer_makes(stack):
    rec = run_program(program_for(stack), stack.name)
    assert rec.resources
    for d in rec.resources.values():
        outs = {**d.inputs, "name": d.name, "selfLink": d.logical_id, "arn": d.logical_id, "gone": None}
        assert to_struct(outs) == _sync_await(rpc.serialize_properties(outs, {}))


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s.provider)
def test_same_stack_same_recording(stack):
    a = run_program(program_for(stack), stack.name)
    b = run_program(program_for(stack), stack.name)
    assert list(a.resources) == list(b.resources) and a.resources == b.resources
    assert a.outputs == b.outputs == normalise(a.outputs)


def test_collector_and_event_loop_are_handed_back():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        run_program(program_for(STACKS[0]), STACKS[0].name)
        assert gc.isenabled()
        assert asyncio.get_event_loop_policy().get_event_loop() is loop and not loop.is_closed()

        def broken() -> None:
            raise RuntimeError("program failed")

        with pytest.raises(RuntimeError, match="program failed"):
            run_program(broken, STACKS[0].name)
        assert gc.isenabled()
        gc.disable()                      # someone else's choice is left alone
        try:
            run_program(program_for(STACKS[0]), STACKS[0].name)
            assert not gc.isenabled()
        finally:
            gc.enable()
    finally:
        asyncio.set_event_loop(None)
        loop.close()
