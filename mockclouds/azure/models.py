"""State of the fake ARM: virtual machines, Flexible scale sets and async operations, as plain records.

Rendering them as ARM JSON lives in ``responses.py``; changing them lives in ``backend.py``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any


class ArmError(Exception):
    """An error ARM answers with: HTTP status plus ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def arm_id(sub: str, rg: str, kind: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/{kind}/{name}"


def key(sub: str, rg: str, name: str) -> tuple[str, str, str]:
    """ARM names are case-insensitive: state is keyed by lower case, rendered with the original case."""
    return (sub.lower(), rg.lower(), name.lower())


# provisioningState values ARM uses
CREATING, SUCCEEDED, FAILED, DELETING = "Creating", "Succeeded", "Failed", "Deleting"


@dataclass
class VirtualMachine:
    sub: str
    resource_group: str
    name: str
    location: str
    zone: str | None                  # ARM zone ("1"), None for a regional VM
    size: str
    spot: bool
    eviction_policy: str              # Delete | Deallocate (Spot only)
    tags: dict[str, str]
    properties: dict[str, Any]        # what the client sent, echoed back (minus secrets)
    scale_set_id: str = ""            # set for members of a Flexible scale set
    provisioning_state: str = SUCCEEDED
    holds_capacity: bool = True       # False once Failed, evicted or deallocated
    evicted: bool = False             # Spot eviction with policy Deallocate leaves the VM, deallocated
    error: tuple[str, str] | None = None   # (code, message) of a failed allocation
    vm_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: float = field(default_factory=time.time)

    @property
    def id(self) -> str:
        return arm_id(self.sub, self.resource_group, "virtualMachines", self.name)

    @property
    def catalog_zone(self) -> str:
        return f"{self.location}-{self.zone or '1'}"


@dataclass
class ScaleSet:
    """A Flexible-orchestration scale set: its members are ordinary VMs that point back at it."""

    sub: str
    resource_group: str
    name: str
    location: str
    zone: str | None
    size: str
    capacity: int
    spot: bool
    eviction_policy: str
    tags: dict[str, str]
    properties: dict[str, Any]
    provisioning_state: str = SUCCEEDED
    unique_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def id(self) -> str:
        return arm_id(self.sub, self.resource_group, "virtualMachineScaleSets", self.name)

    @property
    def catalog_zone(self) -> str:
        return f"{self.location}-{self.zone or '1'}"


@dataclass
class AsyncOperation:
    """What an Azure-AsyncOperation URL reports. The first ``polls_left`` polls read InProgress, so the
    SDK's poller really polls; the next one settles it (running ``on_done``, e.g. VM -> Succeeded)."""

    id: str
    location: str
    outcome: str                                   # Succeeded | Failed once settled
    error: tuple[str, str] | None = None
    polls_left: int = 1
    started: float = field(default_factory=time.time)
    on_done: Any = None                            # Callable[[], None] | None
    settled: bool = False

    @property
    def status(self) -> str:
        return self.outcome if self.settled else "InProgress"
