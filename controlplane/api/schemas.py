"""Response models: the OpenAPI document is complete, and schemathesis checks responses against it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    detail: str


class AssignmentOut(BaseModel):
    pool: str
    provider: str
    region: str
    zone: str
    instanceType: str
    nodes: int
    gpus: int
    gpuModel: str
    capacityType: str
    reservation: str
    pricePerHour: float


class WorkloadOut(BaseModel):
    name: str
    team: str
    state: str
    message: str
    gpus: int
    priority: int
    generation: int
    createdAt: datetime
    updatedAt: datetime
    placedAt: datetime | None = None
    runningAt: datetime | None = None
    spec: dict[str, Any]
    assignments: list[AssignmentOut] = Field(default_factory=list)
    # The run (spec.template). ``capacityOnly``: no template, so nothing is dispatched; the nodes are held.
    capacityOnly: bool = False
    restarts: int = Field(default=0, description="the run's incarnation: runs started after the first, for any reason")
    retries: int = Field(default=0, description="restarts counted against spec.run.maxRetries (lost or failed runs)")
    preemptions: int = Field(default=0, description="restarts the control plane chose (a queue's preemption, a planned "
                                            "move off an ending Capacity Block): not retries")
    exitCode: int | None = None
    reason: str = ""
    finishedAt: datetime | None = None
    releasedAt: datetime | None = None


class WorkloadList(BaseModel):
    items: list[WorkloadOut]
    total: int = Field(description="workloads matching the filters, over every page: exact up to 1,000, an "
                                   "estimate above (see totalExact), so that a page's cost does not grow with the "
                                   "store")
    totalExact: bool = Field(True, description="false when total is an estimate: more than 1,000 workloads match, "
                                               "and their density over the first 1,001 is extrapolated to the last")
    nextCursor: str | None = Field(None, description="pass as ?cursor= for the next page; null on the last")


class SubmitResult(BaseModel):
    items: list[WorkloadOut]
    created: list[str]
    unchanged: list[str]
    # Submitted without spec.template: capacity reservations, nothing will run on them.
    capacityOnly: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class LogOut(BaseModel):
    """One pod's log (``live``: read from the cluster now; else the tail kept when the run finished)."""

    rank: int
    pod: str
    incarnation: int
    live: bool
    text: str


class LogList(BaseModel):
    name: str
    state: str
    items: list[LogOut]


class PlacementOut(BaseModel):
    name: str
    state: str
    placement: dict[str, Any] | None = None
    explanation: dict[str, Any] | None = None


class EventOut(BaseModel):
    id: int
    at: datetime
    actor: str
    team: str | None = None
    action: str
    kind: str
    subject: str
    details: dict[str, Any]


class EventList(BaseModel):
    items: list[EventOut]
    nextCursor: str | None = Field(None, description="pass as ?after= for the next page; null on the last")


class ProviderOut(BaseModel):
    name: str
    endpoint: str
    status: str
    latencyMs: float
    message: str
    regions: dict[str, str]


class ProviderList(BaseModel):
    items: list[ProviderOut]


class OfferingOut(BaseModel):
    provider: str
    region: str
    zone: str
    instanceType: str
    gpuModel: str
    gpusPerNode: int
    capacityType: str
    pricePerHour: float | None = None


class OfferingList(BaseModel):
    items: list[OfferingOut]


class PoolOut(BaseModel):
    provider: str
    region: str
    zone: str
    instanceType: str
    capacityType: str
    availableNodes: int
    reservationId: str
    capacityKnown: bool


class CapacityOut(BaseModel):
    pools: list[PoolOut]
    errors: dict[str, str]


class GpuCount(BaseModel):
    provider: str
    region: str
    state: str
    gpus: int


class CommitmentOut(BaseModel):
    name: str
    provider: str
    gpuModel: str
    committedGpus: int | None = None
    usedGpus: int
    start: datetime
    end: datetime


class SpendOut(BaseModel):
    team: str
    dollarsPerHour: float
    gpus: int


class SummaryOut(BaseModel):
    gpus: list[GpuCount]
    commitments: list[CommitmentOut]
    spend: list[SpendOut]
    workloads: dict[str, int]


class StackOut(BaseModel):
    name: str
    status: str
    message: str
    attempts: int
    pools: int
    appliedAt: datetime | None = None
    hasState: bool


class StackList(BaseModel):
    items: list[StackOut]


class PolicyOut(BaseModel):
    document: str
    updatedBy: str
    sources: list[str]


class Health(BaseModel):
    status: str
    leader: bool | None = None
    checks: dict[str, str] = Field(default_factory=dict)


class TokenOut(BaseModel):
    id: str
    team: str
    role: str
    description: str
    createdAt: datetime
    expiresAt: datetime | None = None
    lastUsedAt: datetime | None = None
    revokedAt: datetime | None = None


class TokenList(BaseModel):
    items: list[TokenOut]


class TokenCreate(BaseModel):
    model_config = {"extra": "forbid"}

    team: str = Field(max_length=63)
    role: str = Field(default="member", max_length=16)
    description: str = Field(default="", max_length=200)
    expires: str | None = Field(default=None, max_length=40, description="30d, 12h, 90m, 2w or an ISO date")


class TokenCreated(TokenOut):
    token: str = Field(description="the secret, shown this once")


class SpendPoint(BaseModel):
    at: datetime
    dollarsPerHour: float
    byTeam: dict[str, float]


class TeamSpend(BaseModel):
    team: str
    marginalDollarsPerHour: float
    listDollarsPerHour: float
    gpus: int
    workloads: dict[str, int]


class SpendReport(BaseModel):
    hours: int
    series: list[SpendPoint]
    teams: list[TeamSpend]
