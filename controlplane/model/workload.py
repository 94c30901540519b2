"""The GPUWorkload manifest (design.md, "Workload manifest"): Kubernetes-style, validated at the edge.

Pydantic lives here, at the edge; the placement core reads the validated object's plain fields.
Field names in YAML/JSON are camelCase (``perNode``); Python attributes are snake_case.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from functools import cache
from typing import Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from controlplane.model.template import Container, RestartPolicy, Run
from providers.catalog import CapacityType, default_catalog

API_VERSION: Final = "awan.dev/v1alpha1"     # Final: typed as the Literal the model's field accepts
# Checked with fullmatch: '$' alone also matches before a final newline, and 'nl\n' would pass as 'nl'.
DNS1123 = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# Kubernetes label keys: an optional DNS-subdomain prefix and '/', then a name of at most 63 characters.
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_LABEL_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# Values are Awan's (``data-region: gcp:europe-west4``), not copied to the clouds: printable, bounded.
_LABEL_VALUE = re.compile(r"[^\x00-\x1f\x7f]{0,253}")
# Every integer of a manifest lands in a 32-bit column (PostgreSQL INTEGER) and in cloud APIs that take
# int32 counts: bounded here, so a huge number is a 422 naming the field, never an OverflowError.
INT32_MAX: Final = 2**31 - 1
INT32_MIN: Final = -(2**31)


def is_dns_label(v: str) -> bool:
    return DNS1123.fullmatch(v) is not None


def label_key_error(k: str) -> str | None:
    """Why ``k`` is not a Kubernetes label key, or None."""
    prefix, slash, name = k.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _LABEL_PREFIX.fullmatch(prefix)):
        return f"label key {k!r}: the prefix must be a DNS subdomain"
    if not _LABEL_NAME.fullmatch(name):
        return (f"label key {k!r}: must be at most 63 letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit")
    return None


class WorkloadKind(StrEnum):
    TRAINING = "training"
    INFERENCE = "inference"
    BATCH = "batch"


class TopologyDomain(StrEnum):
    NVLINK = "nvlink"     # whole NVLink domains of domainSize GPUs, each in one pool
    CLUSTER = "cluster"   # one zone, one instance-type pool (one placement group)
    ZONE = "zone"         # one zone
    ANY = "any"           # any zones of one region


@cache
def known_gpu_models() -> dict[str, str]:
    """upper-cased name -> catalog spelling (so ``h100`` and ``tpu-v5p`` are accepted)."""
    return {m.upper(): m for m in default_catalog().gpu_models()}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Metadata(_Strict):
    name: str
    team: str = "default"
    # Bounded so that a CEL rule iterating over them has a known worst case (controlplane/policy/cel_rules.py).
    labels: dict[str, str] = Field(default_factory=dict, max_length=64)

    @field_validator("name", "team")
    @classmethod
    def _dns(cls, v: str) -> str:
        if not is_dns_label(v):
            raise ValueError("must be a DNS-1123 label: lower-case letters, digits and '-', at most 63")
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for k, val in v.items():
            if (why := label_key_error(k)) is not None:
                raise ValueError(why)
            if not _LABEL_VALUE.fullmatch(val):
                raise ValueError(f"label {k!r}: the value must be at most 253 printable characters")
        return v


class GPUs(_Strict):
    model: list[str] = Field(min_length=1)
    count: int = Field(gt=0, le=INT32_MAX)
    per_node: int | None = Field(default=None, alias="perNode", gt=0, le=INT32_MAX)
    # minimum memory per GPU in GiB ("80GB"); also implied by a model name that carries it (A100-80GB)
    memory: float | None = Field(default=None)

    @field_validator("model", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @field_validator("memory", mode="before")
    @classmethod
    def _size(cls, v: object) -> object:
        from providers.catalog.gpu_names import parse_memory
        return None if v is None else parse_memory(v)

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: object) -> object:
        """Names users know (A100-80GB, nvidia-h100-80gb) -> catalog models, the memory they carry to
        ``memory`` (one figure for the list, so every name must carry one, or none)."""
        if not isinstance(data, dict) or "model" not in data:
            return data
        from providers.catalog.gpu_names import resolve
        raw = data["model"]
        names = [raw] if isinstance(raw, str) else raw
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return data
        known = known_gpu_models().values()
        sizes = [got[1] for n in names if (got := resolve(n, known)) is not None]   # unknowns: see _known
        implied = [s for s in sizes if s is not None]
        if implied and len(implied) != len(sizes):
            raise ValueError("model: some names carry a memory size and some do not; list models of one "
                             "memory or set gpus.memory")
        if implied and data.get("memory") is None:
            return {**data, "memory": min(implied)}
        return data

    @field_validator("model")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        from providers.catalog.gpu_names import resolve
        known = known_gpu_models()
        out = []
        for n in v:
            got = resolve(n, known.values())
            if got is None:
                from difflib import get_close_matches
                close = get_close_matches(n.upper(), list(known), n=2)
                hint = f" (did you mean {' or '.join(repr(known[c]) for c in close)}?)" if close else ""
                raise ValueError(f"unknown GPU model {n!r}{hint} (known: {', '.join(sorted(known.values()))}; "
                                 "a memory size may follow, e.g. A100-80GB)")
            if got[0] not in out:
                out.append(got[0])
        return out

    @model_validator(mode="after")
    def _divides(self) -> GPUs:
        if self.per_node is not None and self.count % self.per_node:
            raise ValueError(f"perNode {self.per_node} does not divide count {self.count}")
        return self


class Topology(_Strict):
    domain: TopologyDomain = TopologyDomain.ANY
    domain_size: int | None = Field(default=None, alias="domainSize", gt=0, le=INT32_MAX)

    @model_validator(mode="after")
    def _size_only_for_nvlink(self) -> Topology:
        if self.domain_size is not None and self.domain != TopologyDomain.NVLINK:
            raise ValueError("domainSize is only meaningful with domain: nvlink")
        return self


class Location(_Strict):
    geo: list[str] | None = None
    regions: list[str] | None = None

    @field_validator("geo", "regions", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v


_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(v: object) -> object:
    """``2d4h``, ``36h``, ``90m`` (and what pydantic reads: seconds, ISO 8601 ``P2DT4H``) as a timedelta."""
    if isinstance(v, str) and v and v[0].isdigit():
        m = _DURATION.fullmatch(v.strip())
        if m is None or not any(m.groups()):
            raise ValueError(f"{v!r} is not a duration (e.g. 2d4h, 36h, 90m, P2DT4H)")
        d, h, mi, sec = (int(x or 0) for x in m.groups())
        return timedelta(days=d, hours=h, minutes=mi, seconds=sec)
    return v


class Schedule(_Strict):
    """When a workload may start and by when it must finish (issue 10). Placement may then wait for capacity
    that starts later (a Capacity Block, a reservation) when that is cheaper, never past ``maxWait`` or so
    late that ``duration`` no longer fits before ``deadline``."""

    not_before: AwareDatetime | None = Field(default=None, alias="notBefore")
    deadline: AwareDatetime | None = None
    max_wait: timedelta | None = Field(default=None, alias="maxWait")
    duration: timedelta | None = None

    @field_validator("max_wait", "duration", mode="before")
    @classmethod
    def _duration(cls, v: object) -> object:
        return parse_duration(v)

    @field_validator("max_wait", "duration")
    @classmethod
    def _positive(cls, v: timedelta | None) -> timedelta | None:
        if v is not None and (v.total_seconds() <= 0 or v > timedelta(days=3660)):
            raise ValueError("must be a positive duration of at most 3660 days")
        return v

    @model_validator(mode="after")
    def _fits(self) -> Schedule:
        if self.deadline is not None and self.duration is None:
            raise ValueError("duration: required with deadline (placement checks the run fits before it)")
        if self.deadline is not None and self.not_before is not None:
            assert self.duration is not None
            if self.not_before + self.duration > self.deadline:
                raise ValueError(f"deadline: {self.deadline.isoformat()} is earlier than notBefore + duration "
                                 f"({(self.not_before + self.duration).isoformat()})")
        return self


class Spec(_Strict):
    kind: WorkloadKind = WorkloadKind.TRAINING
    gpus: GPUs
    topology: Topology = Field(default_factory=Topology)
    capacity_type: list[CapacityType] = Field(
        default_factory=lambda: [CapacityType.RESERVED, CapacityType.ON_DEMAND], alias="capacityType", min_length=1)
    location: Location = Field(default_factory=Location)
    max_price_per_gpu_hour: float | None = Field(default=None, alias="maxPricePerGpuHour", gt=0,
                                                 allow_inf_nan=False)
    priority: int = Field(default=0, ge=INT32_MIN, le=INT32_MAX)
    replicas: int = Field(default=1, gt=0, le=INT32_MAX)
    schedule: Schedule | None = None
    # What runs on the capacity (None: a pure capacity reservation, nothing is dispatched) and how.
    template: Container | None = None
    run: Run = Field(default_factory=Run)
    queue: str | None = None   # the admission queue (controlplane/queues); None: the team's default queue

    @field_validator("queue")
    @classmethod
    def _queue_name(cls, v: str | None) -> str | None:
        if v is not None and not is_dns_label(v):
            raise ValueError("must be a DNS-1123 label: lower-case letters, digits and '-', at most 63")
        return v

    @field_validator("capacity_type", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _total_fits(self) -> Spec:
        if self.gpus.count * self.replicas > INT32_MAX:
            raise ValueError(f"gpus.count x replicas is {self.gpus.count * self.replicas}, over {INT32_MAX}")
        return self

    @model_validator(mode="after")
    def _run_fits(self) -> Spec:
        run, given = self.run, self.run.model_fields_set
        if self.template is None:
            if "run" in self.model_fields_set:
                raise ValueError("run: needs spec.template (a manifest without a template is a capacity "
                                 "reservation: nothing runs, so there is nothing to restart)")
            return self
        inference = self.kind == WorkloadKind.INFERENCE
        for attr, alias in (("readiness_probe", "readinessProbe"), ("service_port", "servicePort")):
            if attr in given and getattr(run, attr) is not None and not inference:
                raise ValueError(f"run.{alias}: only for kind: inference")
        if inference:
            if "restart_policy" in given and run.restart_policy != RestartPolicy.NEVER:
                raise ValueError("run.restartPolicy: an inference service always restarts its pods; leave it out")
            # null is "not set": the stored spec (a dump of this model) names every field
            if "active_deadline_seconds" in given and run.active_deadline_seconds is not None:
                raise ValueError("run.activeDeadlineSeconds: an inference service has no deadline")
            if not self.template.ports and run.service_port is None:
                raise ValueError("template.ports: an inference service needs a containerPort (or run.servicePort)")
        return self

    @property
    def runs_something(self) -> bool:
        return self.template is not None

    @model_validator(mode="after")
    def _topology_fits(self) -> Spec:
        size = self.topology.domain_size
        if size is None:
            return self
        if self.gpus.per_node is not None and size % self.gpus.per_node:
            raise ValueError(f"topology.domainSize {size} is not a multiple of gpus.perNode {self.gpus.per_node}")
        if self.gpus.count % size:
            raise ValueError(f"gpus.count {self.gpus.count} is not a multiple of topology.domainSize {size}")
        return self


class GPUWorkload(_Strict):
    api_version: Literal["awan.dev/v1alpha1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["GPUWorkload"] = "GPUWorkload"
    metadata: Metadata
    spec: Spec

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def team(self) -> str:
        return self.metadata.team

    @property
    def total_gpus(self) -> int:
        return self.spec.gpus.count * self.spec.replicas

    def to_manifest(self) -> dict[str, Any]:
        """The manifest as a user would write it (camelCase, no defaults dropped). A capacity reservation
        (no template) is stored without ``template``/``run``, and a workload in its team's default queue
        without ``queue``, as before they existed, so resubmitting a manifest stored by an earlier version is
        still "unchanged"."""
        if self.spec.template is None:
            out = self.model_dump(mode="json", by_alias=True, exclude={"spec": {"template", "run"}})
        else:
            out = self.model_dump(mode="json", by_alias=True, exclude_none=False)
        if out["spec"].get("queue") is None:
            out["spec"].pop("queue", None)
        return out
