"""Tables. Only the reconcile loop changes a workload's lifecycle state (the API only creates rows and
asks for deletion), as in dstack's server: rows are the work queue, claimed with lock tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from controlplane.model.identity import workload_key
from controlplane.store.coltypes import JSONType, UTCDateTime, utcnow


class WorkloadState(StrEnum):
    PENDING = "Pending"
    PLACED = "Placed"
    PROVISIONING = "Provisioning"
    STARTING = "Starting"     # nodes up, the workload's pods created, not all running yet
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"   # every pod exited 0; capacity is released after the policy's idle timeout
    FAILED = "Failed"
    DELETING = "Deleting"
    DELETED = "Deleted"


ACTIVE_STATES = (WorkloadState.PLACED, WorkloadState.PROVISIONING, WorkloadState.STARTING, WorkloadState.RUNNING)
# A finished run (Succeeded, or Failed by its pods) keeps its nodes until the idle timeout releases them.
FINISHED_STATES = (WorkloadState.SUCCEEDED, WorkloadState.FAILED)
# What a queue counts: waiting workloads (for positions) and those holding or starting capacity. A finished run
# gives its quota back at once (as Kueue does), though its nodes wait for the idle timeout.
QUEUED_STATES = (WorkloadState.PENDING.value, *(s.value for s in ACTIVE_STATES))


class Role(StrEnum):
    """What a token may do. ``admin`` is an admin of its own team (its workloads and tokens), like a
    Kubernetes namespace admin; ``cluster-admin`` is global (every team, policies, providers)."""

    CLUSTER_ADMIN = "cluster-admin"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONType}


class Team(Base):
    __tablename__ = "teams"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Token(Base):
    """A bearer token: ``awan_<id>_<secret>``; only a salted scrypt hash of the secret is kept."""

    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team: Mapped[str] = mapped_column(ForeignKey("teams.name"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    salt: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)       # None: never
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)     # to the minute (see auth)


class Workload(Base):
    __tablename__ = "workloads"
    # (team, id, state): a team's page in id order is a range scan, not a sort of all its rows, and the
    # default filter (not Deleted) and the page's bounded total read the index alone; (state, id) and
    # (team, state, id): likewise for a page filtered by state, with or without a team (migrations
    # 0006_api_indexes, 0013_list_indexes; SQLite's indexes end in the rowid anyway, PostgreSQL's do not).
    __table_args__ = (Index("ix_workloads_state_priority", "state", "priority"),
                      Index("ix_workloads_team_id_state", "team", "id", "state"),
                      Index("ix_workloads_state_id", "state", "id"),
                      Index("ix_workloads_team_state_id", "team", "state", "id"),
                      UniqueConstraint("team", "name", name="uq_workloads_team_name"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Unique per team (as Kubernetes names are per namespace); ``key`` is the cloud tag that finds its nodes.
    name: Mapped[str] = mapped_column(String(63), index=True)
    team: Mapped[str] = mapped_column(String(63))
    spec: Mapped[dict[str, Any]] = mapped_column()
    priority: Mapped[int] = mapped_column(default=0)
    gpus: Mapped[int] = mapped_column(default=0)
    state: Mapped[str] = mapped_column(String(16), default=WorkloadState.PENDING.value)
    message: Mapped[str] = mapped_column(Text, default="")
    generation: Mapped[int] = mapped_column(default=1)          # bumped on every accepted change of intent
    observed_generation: Mapped[int] = mapped_column(default=0)  # the generation the loop last acted on
    placement: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    explanation: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    placed_at: Mapped[datetime | None] = mapped_column(default=None)
    running_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    lock_token: Mapped[str | None] = mapped_column(String(64), default=None)
    lock_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    # The run (spec.template): ``restarts`` is also the incarnation whose Kubernetes objects are current;
    # ``dispatched_at`` is set once they were created (a restarted loop finds them by their labels).
    restarts: Mapped[int] = mapped_column(default=0, server_default="0")
    dispatched_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    released_at: Mapped[datetime | None] = mapped_column(default=None)
    exit_code: Mapped[int | None] = mapped_column(default=None)
    reason: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # Queues (controlplane/queues): the queue the workload waits in, the flavour it was admitted on (its
    # quota held from ``admitted_at``), why and where it waits, and a preemption in flight (the
    # preemptor's key, set and cleared in single transactions so a crash neither loses nor repeats one).
    queue: Mapped[str | None] = mapped_column(String(63), default=None, index=True)
    flavour: Mapped[str | None] = mapped_column(String(63), default=None)
    admitted_at: Mapped[datetime | None] = mapped_column(default=None)
    wait_reason: Mapped[str] = mapped_column(String(16), default="")
    queue_position: Mapped[int | None] = mapped_column(default=None)
    preempted_for: Mapped[str | None] = mapped_column(String(140), default=None)
    preempt_requested_at: Mapped[datetime | None] = mapped_column(default=None)
    preemptions: Mapped[int] = mapped_column(default=0)

    assignments: Mapped[list[Assignment]] = relationship(
        back_populates="workload", cascade="all, delete-orphan", order_by="Assignment.id")

    @property
    def key(self) -> str:
        """The cloud-facing identity (tags, Node.workload): unique across teams."""
        return workload_key(self.team, self.name)


class Assignment(Base):
    """One row of a placement: GPUs a workload holds in one (provider, region, zone, instance type)."""

    __tablename__ = "assignments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workload_id: Mapped[int] = mapped_column(ForeignKey("workloads.id", ondelete="CASCADE"), index=True)
    pool: Mapped[str] = mapped_column(String(63))
    provider: Mapped[str] = mapped_column(String(16), index=True)
    region: Mapped[str] = mapped_column(String(64))
    zone: Mapped[str] = mapped_column(String(64))
    instance_type: Mapped[str] = mapped_column(String(64))
    nodes: Mapped[int] = mapped_column()
    gpus: Mapped[int] = mapped_column()
    gpu_model: Mapped[str] = mapped_column(String(32))
    capacity_type: Mapped[str] = mapped_column(String(16))
    reservation: Mapped[str] = mapped_column(String(128), default="")
    price_per_hour: Mapped[float] = mapped_column(default=0.0)
    replica_group: Mapped[int] = mapped_column(default=0)

    workload: Mapped[Workload] = relationship(back_populates="assignments")


class RunLog(Base):
    """The tail of each pod's log, kept when the run finishes: its nodes (and with them the pods) go
    when the capacity is released, and `awan logs` still answers."""

    __tablename__ = "run_logs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workload_id: Mapped[int] = mapped_column(ForeignKey("workloads.id", ondelete="CASCADE"), index=True)
    incarnation: Mapped[int] = mapped_column()
    rank: Mapped[int] = mapped_column()
    pod: Mapped[str] = mapped_column(String(253))
    text: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    # Both end in id: a stream (a team's, a subject's) read after a cursor is a range scan in id order.
    __table_args__ = (Index("ix_audit_subject_id", "kind", "subject", "id"), Index("ix_audit_events_team_id", "team", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))        # token id, or "controller:<replica>"
    team: Mapped[str | None] = mapped_column(String(63), default=None)
    action: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Stack(Base):
    """One (provider, region) stack: what the loop last applied, and the engine's own state (the infra
    StackStateStore protocol writes only ``state``)."""

    __tablename__ = "stacks"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    spec: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    spec_hash: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="")     # ok | failed | ""
    message: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(default=0)
    applied_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WorkLease(Base):
    """A lease on one unit of work (``kind`` "stack": a stack run) that any replica may take: claimed with
    ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, held while the work runs, released after it (a
    later ``expires_at`` with no holder is a backoff: nobody claims it before). ``epoch`` grows on every
    claim: the fencing token the holder's writes check. Kind "block": a pool that failed, shared with the
    placer until ``expires_at``."""

    __tablename__ = "work_leases"
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128), default=None)
    epoch: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime] = mapped_column()


class Observed(Base):
    """One scope's live nodes as last listed by the replica holding its observe lease (work_leases kind
    "observe"), written fenced by that lease's ``epoch``; the leader applies them (controlplane/reconcile/
    observing). ``provider`` is the scope, the lease's key: a provider listed whole ("lambda") or one region
    of one ("gcp/us-central1"); the column kept its name and type (the keys fit, "/" is in no provider name,
    and rows of the other kind are ignored and age out), so no migration. ``error``: the list call failed at
    ``observed_at`` (the scope is "unknown" then). Freshness
    is judged by ``published_at``: a list call may take longer than the freshness bound (many regions, each
    answering slowly), and its answer is still the newest there is."""

    __tablename__ = "observations"
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    nodes: Mapped[dict[str, Any]] = mapped_column()
    error: Mapped[str | None] = mapped_column(String(255), default=None)
    observed_at: Mapped[datetime] = mapped_column()       # when the list call started: the data's age
    published_at: Mapped[datetime] = mapped_column()      # when it was written: whether anyone still lists
    holder: Mapped[str] = mapped_column(String(128))
    epoch: Mapped[int] = mapped_column(default=0)


class CapacityEstimate(Base):
    """What one pool (provider|zone|type|capacity type|reservation) is believed to hold for us, learned from
    a stock-out where the cloud publishes no free capacity (controlplane/reconcile/capacity_estimates).
    ``nodes``: the nodes we held there when it last ran out; ``stock_outs``: stock-outs in a row (each doubles
    how long the cap holds before probing back up)."""

    __tablename__ = "capacity_estimates"
    pool: Mapped[str] = mapped_column(String(255), primary_key=True)
    nodes: Mapped[int] = mapped_column(default=0)
    stock_outs: Mapped[int] = mapped_column(default=1)
    stocked_out_at: Mapped[datetime] = mapped_column()


class ReconcileClock(Base):
    """One clock the leader's observation keeps over passes, kept here so that a restarted controller (or
    another replica taking the lead) continues it instead of starting it again (controlplane/store/clocks).
    ``kind`` "short": a Provisioning workload short of nodes, ``key`` its workload key; "unobserved": a place
    without a list answer, ``key`` its scope key ("gcp/us-central1", or "lambda" for a provider listed
    whole). ``since``: when the condition began, wall-clock UTC. A row lives while its condition does (the
    workload is short, the place unanswered), written in the observation's own fenced transaction."""

    __tablename__ = "reconcile_clocks"
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    since: Mapped[datetime] = mapped_column()


class Lease(Base):
    """Leader lease: one row per lease name; ``epoch`` grows on every change of holder (a fencing token)."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    epoch: Mapped[int] = mapped_column(default=1)
    expires_at: Mapped[datetime] = mapped_column()
    renewed_at: Mapped[datetime] = mapped_column(default=utcnow)


class PolicyDocument(Base):
    __tablename__ = "policies"
    __table_args__ = (UniqueConstraint("name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    document: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(128), default="")


class PurchaseState(StrEnum):
    """A purchase's life (controlplane/purchasing). Each move is written before the cloud is asked
    (``buying``) or after it answered (``bought``/``failed``), so a controller killed in between finds the
    row in ``buying`` and looks the purchase up by its token instead of buying again."""

    PROPOSED = "proposed"      # found, waits for a person (approve mode)
    APPROVED = "approved"      # a person (or the policy, in auto mode) said yes
    BUYING = "buying"          # the cloud is being (or was) asked
    BOUGHT = "bought"
    FAILED = "failed"
    REJECTED = "rejected"


class Purchase(Base):
    """A proposal to buy capacity, with the offering found, its price, why, and the demand it serves."""

    __tablename__ = "purchases"
    __table_args__ = (Index("ix_purchases_state", "state"), UniqueConstraint("token", name="uq_purchases_token"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token: Mapped[str] = mapped_column(String(64))              # the cloud-side idempotency tag, from the id
    state: Mapped[str] = mapped_column(String(16), default=PurchaseState.PROPOSED.value)
    mode: Mapped[str] = mapped_column(String(16))               # the policy's mode when proposed
    policy: Mapped[str] = mapped_column(String(128), default="")
    provider: Mapped[str] = mapped_column(String(16))
    region: Mapped[str] = mapped_column(String(64))
    zone: Mapped[str] = mapped_column(String(64), default="")
    instance_type: Mapped[str] = mapped_column(String(64))
    ultraserver_type: Mapped[str] = mapped_column(String(64), default="")
    ultraserver_count: Mapped[int] = mapped_column(default=0)
    instance_count: Mapped[int] = mapped_column()
    gpus: Mapped[int] = mapped_column()
    offering_id: Mapped[str] = mapped_column(String(128))
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    hours: Mapped[int] = mapped_column()
    price: Mapped[float] = mapped_column()                      # the upfront fee, dollars
    price_per_gpu_hour: Mapped[float] = mapped_column()
    reason: Mapped[str] = mapped_column(Text, default="")
    demand: Mapped[dict[str, Any]] = mapped_column(default=dict)   # {"workloads": [keys], "gpus": n}
    reservation_id: Mapped[str] = mapped_column(String(128), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str] = mapped_column(String(128), default="")
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    bought_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChangeRecord(Base):
    """The change feed (controlplane/store/changes): one row per workload, stack or policy written, in the
    same transaction as the write, so the loop's passes read what changed since their cursor instead of
    scanning every row. ``ref``: the workload's id (None for a row inserted in bulk, or another kind)."""

    __tablename__ = "changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(16))        # workload | stack | policy
    ref: Mapped[int | None] = mapped_column(default=None)
    key: Mapped[str] = mapped_column(String(255), default="")
