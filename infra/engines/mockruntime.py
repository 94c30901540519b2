"""Run a Pulumi program in-process under Pulumi's mock runtime and record what it declares.

No CLI, no plugins, no gRPC server: ``pulumi.runtime.set_mocks`` with a monitor that records every
registered resource (type token, name, URN, inputs, parent, dependencies) and answers with
deterministic ids. The ids are *logical* (derived from the URN), never cloud ids, so the same program
records the same inputs on every run and a diff against the stack state is stable; the engine maps
logical ids to cloud ids when it applies.

The Pulumi runtime keeps global settings, so programs run one at a time per process (a lock).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.settings import SETTINGS, get_root_resource, set_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

PROJECT = "awan-infra"
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

    @property
    def logical_id(self) -> str:
        return logical_id(self.urn)


@dataclass(slots=True)
class Recording:
    resources: dict[str, DesiredResource]      # by URN, in registration order
    outputs: dict[str, Any]


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        raise AssertionError("unused: _RecordingMonitor answers RegisterResource itself")

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        return {}, None


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self) -> None:
        super().__init__(_Mocks())
        self.recorded: dict[str, DesiredResource] = {}
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        _ensure_event_loop()
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
                parent=request.parent or "", deps=sorted(set(request.dependencies)))
        obj = _sync_await(rpc.serialize_properties(outs, {}))
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, lid, outs)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=lid if request.custom else "", object=obj)


def run_program(program: Any, stack: str, project: str = PROJECT) -> Recording:
    """Run ``program`` (a function of no arguments) and return what it declared and exported."""
    with _RUNTIME_LOCK:
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

        try:
            _sync_await(run_pulumi_func(body))
        finally:
            set_root_resource(None)  # type: ignore[arg-type]
        return Recording(resources=dict(monitor.recorded), outputs=normalise(exported))
