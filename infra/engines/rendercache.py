"""Render a stack's program for what changed since its last render, not for all of its pools.

Rendering (the program under Pulumi's mock runtime) costs about 10 ms of CPU a pool, all of it in the
Pulumi SDK: a region's stack of 3,000 pools took ~40 s on every run, a no-op run included, which made
a large stack's runs cost its size rather than its change. But a pool's resources are a function of its
own spec and of the stack's own resources (network, cluster: their logical ids and inputs), never of
another pool (``infra.programs.program_for``). So the worker keeps each stack's last recording split
by pool, and a render declares the stack's own resources and only the pools that are new or whose spec
changed (``program_for(stack, only=...)``); the other pools' resources and ``pools`` outputs are taken
from the last recording.

What keeps it exact: the stack's own resources are rendered every time, from all of the pools as
before; if they (or any output but ``pools``) differ from the last render's, the pools kept would have
been rendered against another stack and the render is done again for every pool. A pool whose name is
also a stack-level resource's name cannot be told apart by its URN: such a stack is always rendered in
full. The result equals a full render's (resources, their inputs, dependencies and outputs; tests/infra/
test_rendercache.py checks it for every provider), in this order: the stack's own resources, then each
pool's, pools in the spec's order.

What it holds is bounded: a stack destroyed is forgotten (``LocalEngine.destroy`` asks the worker), and at most
``keep`` stacks are held, the least recently rendered dropped first (a replica's runners take stacks through work
leases, so a worker may have rendered stacks another process runs now). A stack dropped is rendered in full the
next time, which is correct, only slower.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from infra.engines.mockruntime import DesiredResource, Recording
from infra.programs import refusals
from infra.spec import NodePoolSpec, StackSpec

Renderer = Callable[[StackSpec, "Collection[str] | None"], Recording]
KEEP = 512     # stacks a worker holds: an AI lab's fleet has hundreds (one a region of each provider)


@dataclass(slots=True)
class _Pool:
    spec: NodePoolSpec
    resources: list[DesiredResource]
    output: Any                     # its entry in the ``pools`` output


@dataclass(slots=True)
class _Last:
    config: dict[str, str]
    base: dict[str, DesiredResource]        # the stack's own resources, by URN, in registration order
    outputs: dict[str, Any]                 # every output but ``pools`` and ``refused`` (_context_outputs)
    pools: dict[str, _Pool] = field(default_factory=dict)


@dataclass(slots=True)
class Split:
    base: dict[str, DesiredResource]
    pools: dict[str, list[DesiredResource]]


def split(rec: Recording, pools: Collection[str]) -> Split | None:
    """The recording's resources by owner: a pool (its component, a top-level resource named after it,
    and everything under it) or the stack itself. None when that cannot be told by URN: a pool's name
    is also another top-level resource's."""
    wanted = set(pools)
    owner: dict[str, str] = {}            # URN -> pool
    base: dict[str, DesiredResource] = {}
    by_pool: dict[str, list[DesiredResource]] = {p: [] for p in wanted}
    for urn, d in rec.resources.items():
        if not d.parent or d.parent not in rec.resources:      # top level: under the (unrecorded) Stack
            if d.name not in wanted:
                base[urn] = d
                continue
            if d.custom or by_pool[d.name]:
                return None
            owner[urn] = d.name
        elif d.parent in owner:
            owner[urn] = owner[d.parent]
        else:
            base[urn] = d
            continue
        by_pool[owner[urn]].append(d)
    return Split(base, by_pool)


class IncrementalRenderer:
    """The last recording of every stack this process rendered, and renders against it. ``run`` renders
    ``stack`` declaring only the pools named (None: all), as ``program_for(stack, only)`` does."""

    def __init__(self, run: Renderer, keep: int = KEEP) -> None:
        if keep < 1:
            raise ValueError(f"keep: must be at least 1, got {keep}")
        self._run = run
        self._keep = keep
        self._last: OrderedDict[str, _Last] = OrderedDict()      # least recently rendered first
        self._lock = threading.Lock()

    def held(self) -> list[str]:
        """The stacks whose last render is held, least recently rendered first."""
        with self._lock:
            return list(self._last)

    def forget(self, stack: str | None = None) -> None:
        with self._lock:
            if stack is None:
                self._last.clear()
            else:
                self._last.pop(stack, None)

    def render(self, stack: StackSpec) -> Recording:
        with self._lock:
            last = self._last.pop(stack.name, None)     # put back only once this render succeeds
        refused = refusals(stack)
        buildable = [p for p in stack.pools if p.pool not in refused]
        names = [p.pool for p in buildable]
        kept: dict[str, _Pool] = {}
        if last is not None and last.config == stack.config:
            kept = {p.pool: k for p in buildable if (k := last.pools.get(p.pool)) is not None and k.spec == p}
        fresh = [n for n in names if n not in kept]
        rec = self._run(stack, fresh if kept else None)
        parts = split(rec, fresh if kept else names)
        if kept and (parts is None or last is None or not _same_base(last, parts, rec)):
            kept = {}                                  # another stack's context: every pool again
            rec = self._run(stack, None)
            parts = split(rec, names)
        if parts is None:                              # pools not told apart by URN: no reuse, ever
            return rec
        out_pools = dict(rec.outputs.get("pools") or {})
        pools: dict[str, _Pool] = {}
        resources = dict(parts.base)
        for p in buildable:
            got = kept.get(p.pool) or _Pool(p, parts.pools.get(p.pool, []), out_pools.get(p.pool))
            pools[p.pool] = got
            resources.update((d.urn, d) for d in got.resources)
        outputs = dict(rec.outputs)
        if "pools" in outputs:
            outputs["pools"] = {n: pools[n].output for n in sorted(names)}
        rest = _context_outputs(rec)
        with self._lock:
            self._last[stack.name] = _Last(dict(stack.config), parts.base, rest, pools)   # the most recent: last
            while len(self._last) > self._keep:
                self._last.popitem(last=False)
        return Recording(resources=resources, outputs=outputs)


def _context_outputs(rec: Recording) -> dict[str, Any]:
    # ``pools`` is per pool, ``refused`` is of the specs alone (infra.programs.refusals): neither is context.
    return {k: v for k, v in rec.outputs.items() if k not in ("pools", "refused")}


def _same_base(last: _Last, parts: Split, rec: Recording) -> bool:
    return list(last.base.items()) == list(parts.base.items()) and last.outputs == _context_outputs(rec)
