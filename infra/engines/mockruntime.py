"""Run a Pulumi program in-process under Pulumi's mock runtime and record what it declares.

No CLI, no plugins, no gRPC server: ``pulumi.runtime.set_mocks`` with a monitor that records every
registered resource (type token, name, URN, inputs, parent, dependencies) and answers with
deterministic ids. The ids are *logical* (derived from the URN), never cloud ids, so the same program
records the same inputs on every run and a diff against the stack state is stable; the engine maps
logical ids to cloud ids when it applies.

The Pulumi runtime keeps global settings, so programs run one at a time per process (a lock). Because
of those globals and the paused collector below, ``run_program`` belongs in a process that does
nothing else: the local engine calls it through ``infra.engines.mockruntime_worker`` (a spawned worker
process), never in the API service's own process. Tests and benchmarks call it directly.

Cost (the engine runs a stack's program on every up): the SDK makes several futures and tasks per
resource property, so a stack of a few hundred pools allocates millions of short-lived objects. Three
things keep that linear and small: the monitor answers on the loop's own thread (``_InlineExecutor``:
the SDK otherwise hands every RegisterResource to a thread pool and back), the answer is built as a
protobuf Struct directly instead of through a nested event-loop pass, and the cyclic garbage
collector is paused while the program runs and then collects the run's young objects once
(``infra.gcpause``). Left on, its full collections rescan every object the run keeps alive (all of a
stack's resources and outputs) again and again as the run allocates: that, not the SDK's own work,
made registration grow faster than linearly with the pools of a stack and doubled its cost. Paused,
a stack's run holds its cyclic garbage until it ends (about 100 MB for 320 Azure pools).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.settings import SETTINGS, get_root_resource, set_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.gcpause import collector_paused

PROJECT = "awan-infra"
SECRET = "[secret]"
_RUNTIME_LOCK = threading.Lock()


def logical_id(urn: str) -> str:
    return "lid-" + hashlib.sha256(urn.encode()).hexdigest()[:16]


def normalise(value: Any) -> Any:
    """Plain JSON (what the state stores), so recorded inputs compare equal to stored ones. Pulumi's
    wire format carries every number as a double; whole numbers come back as ints (counts, sizes)."""
    return _ints(json.loads(json.dumps(value, sort_keys=True, default=str)))


def _ints(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, list):
        return [_ints(x) for x in v]
    if isinstance(v, dict):
        return {k: _ints(x) for k, x in v.items()}
    return v


@dataclass(slots=True)
class DesiredResource:
    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool
    parent: str = ""
    deps: list[str] = field(default_factory=list)
    provider: str = ""          # the explicit provider reference ("<urn>::<id>"), when one was given

    @property
    def logical_id(self) -> str:
        return logical_id(self.urn)


@dataclass(slots=True)
class Recording:
    resources: dict[str, DesiredResource]      # by URN, in registration order
    outputs: dict[str, Any]


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        raise AssertionError("unused: _RecordingMonitor answers RegisterResource itself")

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any] | None]:
        # No invoke has an answer here (the program falls back); [] not None: Pulumi iterates the failures.
        return {}, []


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self) -> None:
        super().__init__(_Mocks())
        self.recorded: dict[str, DesiredResource] = {}
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        inputs = normalise(rpc.deserialize_properties(request.object))
        lid = logical_id(urn)
        # Echo the inputs as outputs and fill the computed outputs programs read (id, name, self_link).
        outs = dict(inputs)
        outs.setdefault("name", request.name)
        outs.setdefault("selfLink", lid)
        outs.setdefault("arn", lid)
        with self._lock:
            self.recorded[urn] = DesiredResource(
                urn=urn, type=request.type, name=request.name, inputs=inputs, custom=bool(request.custom),
                parent=request.parent or "", deps=sorted(set(request.dependencies)),
                provider=request.provider or "")
        obj = to_struct(outs)
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, lid, outs)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=lid if request.custom else "", object=obj)


def to_struct(props: dict[str, Any]) -> struct_pb2.Struct:
    """What ``rpc.serialize_properties`` makes of plain JSON properties (None at the top level is left
    out), without an event-loop pass: the monitor runs inside the loop that is registering."""
    out = struct_pb2.Struct()
    out.update({k: v for k, v in props.items() if v is not None})
    return out


class _InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs what the SDK hands to ``run_in_executor`` (the monitor's RPCs) at once, on the loop's thread:
    the mock monitor answers from memory, so a thread hop per resource is pure overhead."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine, as a pool would
            fut.set_exception(e)
        return fut


@contextlib.contextmanager
def _own_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop for one run (with the inline executor), installed as this thread's loop while
    the run lasts: nothing a previous run left pending can run in this one."""
    try:
        with warnings.catch_warnings():     # 3.12+ warns where no loop is set yet; None is the answer then
            warnings.simplefilter("ignore", DeprecationWarning)
            before: asyncio.AbstractEventLoop | None = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        before = None
    loop = asyncio.new_event_loop()
    loop.set_default_executor(_InlineExecutor())
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        asyncio.set_event_loop(before)
        loop.close()


def run_program(program: Any, stack: str, project: str = PROJECT) -> Recording:
    """Run ``program`` (a function of no arguments) and return what it declared and exported."""
    with _RUNTIME_LOCK, collector_paused(collect_young=True), _own_loop():
        monitor = _RecordingMonitor()
        set_root_resource(None)  # type: ignore[arg-type]  # a fresh root Stack for this run
        pulumi.runtime.set_mocks(_Mocks(), project=project, stack=stack, preview=False, monitor=monitor)
        SETTINGS.rpc_manager.clear()
        SETTINGS.outputs.clear()
        exported: dict[str, Any] = {}

        def body() -> None:
            program()
            root = get_root_resource()
            outs = dict(getattr(root, "outputs", {}) or {})
            resolved: dict[str, Any] | None = _sync_await(pulumi.Output.from_input(outs).future())
            exported.update(resolved or {})
            # A secret output (a kubeconfig with a token) is never kept in plain text: the Pulumi engine keeps
            # it encrypted in its state; this recording (and the local engine's state) holds a marker.
            for k, v in outs.items():
                if isinstance(v, pulumi.Output) and _sync_await(v.is_secret()):
                    exported[k] = SECRET

        try:
            _sync_await(run_pulumi_func(body))
        finally:
            set_root_resource(None)  # type: ignore[arg-type]
        return Recording(resources=dict(monitor.recorded), outputs=normalise(exported))
