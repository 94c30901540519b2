"""A stack rendered for what changed since its last render (infra.engines.rendercache) records exactly what a
full render of the same spec records: the same resources (URNs, inputs, parents, dependencies) and outputs,
through pools added, changed and removed, a change of the stack's own resources (a new zone), a change of
config, and a pool named like a stack-level resource; and only the new or changed pools are declared again."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

import pytest

from infra.engines.mockruntime import Recording, run_program
from infra.engines.rendercache import IncrementalRenderer
from infra.programs import program_for
from infra.spec import StackSpec
from tests.infra.fakes import pool

AWS = dict(provider="aws", region="us-east-1", zone="us-east-1a", instance_type="p5.48xlarge")
GCP = dict(provider="gcp", region="us-central1", zone="us-central1-a", instance_type="a3-highgpu-8g")
AZURE = dict(provider="azure", region="eastus", zone="eastus-1", instance_type="Standard_ND96isr_H100_v5")
CW = dict(provider="coreweave", region="US-EAST-04", zone="US-EAST-04A", instance_type="gd-8xh100ib-i128")
OCI = dict(provider="oci", region="us-chicago-1", zone="US-CHICAGO-AD-1", instance_type="BM.GPU.H100.8")
CONFIG = {"aws": {}, "gcp": {"project": "p"}, "azure": {}, "coreweave": {}, "oci": {"compartment": "ocid1.c"}}
SECOND_ZONE = {"aws": "us-east-1b", "gcp": "us-central1-b", "azure": "eastus-2", "coreweave": "US-EAST-04A",
               "oci": "US-CHICAGO-AD-2"}


class Counting:
    def __init__(self) -> None:
        self.asked: list[list[str] | None] = []

    def __call__(self, stack: StackSpec, only: Collection[str] | None) -> Recording:
        self.asked.append(None if only is None else sorted(only))
        return run_program(program_for(stack, only), stack.name)


def full(stack: StackSpec) -> Recording:
    return run_program(program_for(stack), stack.name)


def same(a: Recording, b: Recording) -> None:
    assert set(a.resources) == set(b.resources)
    assert a.resources == b.resources            # each DesiredResource equal: inputs, parent, deps, provider
    assert a.outputs == b.outputs


def steps(where: dict[str, str], config: dict[str, str]) -> list[StackSpec]:
    prov, region = where["provider"], where["region"]
    a, b, c = (pool(n, nodes=1, placement="none", **where) for n in ("pa", "pb", "pc"))
    b2 = dataclasses.replace(b, nodes=2)
    d = pool("pd", nodes=1, placement="none", **{**where, "zone": SECOND_ZONE[prov]})
    return [
        StackSpec(prov, region, (a, b), config=config),
        StackSpec(prov, region, (a, b), config=config),                  # unchanged
        StackSpec(prov, region, (a, b2, c), config=config),              # one changed, one new
        StackSpec(prov, region, (a, c), config=config),                  # one removed
        StackSpec(prov, region, (a, c, d), config=config),               # a new zone: the network changes
        StackSpec(prov, region, (a, c, d), config={**config, "kubernetes_version": "1.31"}),   # config
        StackSpec(prov, region, (), config=config),                      # empty
        StackSpec(prov, region, (a,), config=config),
    ]


@pytest.mark.parametrize("where", [AWS, GCP, AZURE, CW, OCI], ids=lambda w: w["provider"])
def test_incremental_render_equals_full_render(where):
    run = Counting()
    r = IncrementalRenderer(run)
    for stack in steps(where, CONFIG[where["provider"]]):
        same(r.render(stack), full(stack))
    assert run.asked[0] is None                  # the first render declares every pool
    assert run.asked[1] == []                    # unchanged: no pool declared again
    assert run.asked[2] == ["pb", "pc"]          # only the changed and the new pool


def test_another_stack_context_renders_every_pool_again():
    """A GCP training pool adds the stack's GPUDirect networks: the stack's own resources change, so the
    pools kept from the last render are declared again (their inputs could name what changed)."""
    run = Counting()
    r = IncrementalRenderer(run)
    a = pool("pa", nodes=1, placement="none", **GCP)
    r.render(StackSpec("gcp", "us-central1", (a,), config=CONFIG["gcp"]))
    stack = StackSpec("gcp", "us-central1", (a, pool("pb", nodes=1, **GCP)), config=CONFIG["gcp"])
    same(r.render(stack), full(stack))
    assert run.asked == [None, ["pb"], None]


def test_pool_named_like_a_stack_resource_is_rendered_in_full_every_time():
    stack = StackSpec("aws", "us-east-1", (pool("awan-aws-us-east-1", nodes=1, placement="none", **AWS),
                                           pool("pa", nodes=1, placement="none", **AWS)))
    run = Counting()
    r = IncrementalRenderer(run)
    for _ in range(2):
        same(r.render(stack), full(stack))
    assert run.asked == [None, None]


def test_refused_pools_stay_out_and_are_reported():
    bad = pool("bad-a", provider="azure", region="eastus", zone="eastus-1",
               instance_type="Standard_NC40ads_H100_v5", gpus=1, nodes=2)
    good = pool("good-b", nodes=1, placement="none", **AZURE)
    run = Counting()
    r = IncrementalRenderer(run)
    for stack in (StackSpec("azure", "eastus", (good,)), StackSpec("azure", "eastus", (bad, good))):
        same(r.render(stack), full(stack))
    assert run.asked == [None, []]


def test_a_config_only_the_pools_read_renders_every_pool_again():
    """The AMI is read by each pool's launch template, not by the network or cluster: a change of it changes
    no stack-level resource, and every pool must still be declared again."""
    a = pool("pa", nodes=1, placement="none", **AWS)
    run = Counting()
    r = IncrementalRenderer(run)
    r.render(StackSpec("aws", "us-east-1", (a,)))
    stack = StackSpec("aws", "us-east-1", (a,), config={"ami": "ami-0123456789abcdef0"})
    same(r.render(stack), full(stack))
    assert run.asked == [None, None]


def test_the_least_recently_rendered_stacks_go_first_past_the_bound():
    run = Counting()
    r = IncrementalRenderer(run, keep=2)
    stacks = [StackSpec("aws", region, (pool(f"p-{region}", nodes=1, placement="none",
                                             **{**AWS, "region": region, "zone": f"{region}a"}),))
              for region in ("us-east-1", "us-east-2", "us-west-2")]
    for stack in (*stacks, stacks[1]):
        r.render(stack)
    assert r.held() == ["awan-aws-us-west-2", "awan-aws-us-east-2"]
    same(r.render(stacks[0]), full(stacks[0]))        # dropped: rendered in full again, and correctly
    assert run.asked == [None, None, None, [], None]
    assert r.held() == ["awan-aws-us-east-2", "awan-aws-us-east-1"]
    r.forget("awan-aws-us-east-1")
    assert r.held() == ["awan-aws-us-east-2"]
    with pytest.raises(ValueError, match="keep"):
        IncrementalRenderer(run, keep=0)
