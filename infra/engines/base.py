"""The one interface both engines implement, and what they return."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from infra.spec import StackSpec


class EngineError(RuntimeError):
    """An engine could not do what was asked; the message says what and where."""


class EngineUnavailable(EngineError):
    """This engine cannot run on this machine (e.g. no pulumi CLI)."""


class StackBusy(EngineError):
    """Another worker holds this stack's lock."""


@dataclass(frozen=True, slots=True)
class ResourceChange:
    urn: str
    type: str
    name: str
    op: str                 # create | update | replace | delete | same
    detail: str = ""        # which inputs changed, why not applied, ...


@dataclass(slots=True)
class ChangeSet:
    creates: list[ResourceChange] = field(default_factory=list)
    updates: list[ResourceChange] = field(default_factory=list)   # incl. replaces
    deletes: list[ResourceChange] = field(default_factory=list)
    sames: list[ResourceChange] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {"create": len(self.creates), "update": len(self.updates), "delete": len(self.deletes),
                "same": len(self.sames)}

    @property
    def changed(self) -> bool:
        return bool(self.creates or self.updates or self.deletes)

    def summary(self) -> str:
        """As Pulumi prints it: ``+ 3 to create, ~ 1 to update, - 2 to delete, 5 unchanged``."""
        c = self.counts
        parts = [f"+ {c['create']} to create", f"~ {c['update']} to update", f"- {c['delete']} to delete",
                 f"{c['same']} unchanged"]
        return ", ".join(parts)


@dataclass(slots=True)
class UpResult:
    stack: str
    changes: ChangeSet
    outputs: dict[str, Any]
    duration_s: float
    messages: list[str] = field(default_factory=list)
    not_applied: list[ResourceChange] = field(default_factory=list)   # recorded but not done, with why

    @property
    def counts(self) -> dict[str, int]:
        return self.changes.counts

    def summary(self) -> str:
        c = self.counts
        return (f"+ {c['create']} created, ~ {c['update']} updated, - {c['delete']} deleted, "
                f"{c['same']} unchanged")


@dataclass(frozen=True, slots=True)
class DriftItem:
    urn: str
    type: str
    kind: str               # missing | changed | unmanaged
    detail: str = ""
    cloud_id: str = ""


@dataclass(slots=True)
class DriftReport:
    stack: str
    missing: list[DriftItem] = field(default_factory=list)    # in state, gone from the cloud
    changed: list[DriftItem] = field(default_factory=list)    # present, but not as declared
    unmanaged: list[DriftItem] = field(default_factory=list)  # tagged with this stack, not in state
    messages: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.missing or self.changed or self.unmanaged)


@runtime_checkable
@runtime_checkable
class RecordsStackState(Protocol):
    """An engine that keeps each stack's resources itself (the local engine): after a failed run its record
    says which pools the run failed on, which the error text alone may not."""

    def recorded_state(self, stack_name: str) -> dict[str, Any] | None: ...


class Engine(Protocol):
    name: str

    def preview(self, stack: StackSpec) -> ChangeSet: ...
    def up(self, stack: StackSpec) -> UpResult: ...
    def destroy(self, stack_name: str) -> UpResult: ...
    def refresh(self, stack: StackSpec) -> DriftReport: ...
    def outputs(self, stack_name: str) -> dict[str, Any]: ...
    def list_stacks(self) -> list[str]: ...
