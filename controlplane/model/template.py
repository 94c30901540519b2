"""What a workload runs (``spec.template``: one container) and how (``spec.run``: retries, deadline,
checkpoint, and for inference the readiness probe and service port).

Field names follow the Kubernetes container spec where one exists, so a platform engineer's habits carry
over; Awan renders them into Jobs and Deployments (controlplane/dispatch). A manifest without a template
is a pure capacity reservation: its nodes are provisioned and held, nothing runs on them.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

INT32_MAX: Final = 2**31 - 1
# Kubernetes' env var name rule (C_IDENTIFIER relaxed to '-' and '.', as the apiserver accepts).
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
# A DNS-1123 subdomain: Secret names.
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# IANA_SVC_NAME: a port name.
_PORT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# An image reference: registry/path:tag@digest, no spaces or control characters.
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]*")
# A Kubernetes quantity in bytes: 64Gi, 512M, 1e9.
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|e[0-9]+)?")
# Set by Awan in every pod of a gang; a template that sets them would be silently overridden.
RESERVED_ENV: Final = frozenset({"RANK", "NODE_RANK", "WORLD_SIZE", "NNODES", "NPROC_PER_NODE", "MASTER_ADDR",
                                 "MASTER_PORT", "AWAN_WORKLOAD", "AWAN_INCARNATION", "AWAN_RESTARTS"})
DEFAULT_CHECKPOINT_ENV: Final = "AWAN_CHECKPOINT"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _env_name(v: str) -> str:
    if len(v) > 253 or not _ENV_NAME.fullmatch(v):
        raise ValueError(f"{v!r} is not a valid environment variable name: letters, digits, '_', '-' and '.', "
                         "not starting with a digit")
    return v


def _secret_name(v: str) -> str:
    if len(v) > 253 or not _SUBDOMAIN.fullmatch(v):
        raise ValueError(f"{v!r} is not a valid Secret name (a DNS-1123 subdomain)")
    return v


class SecretKeyRef(_Strict):
    name: str
    key: str = Field(min_length=1, max_length=253)

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        return _secret_name(v)


class EnvSource(_Strict):
    secret_key_ref: SecretKeyRef = Field(alias="secretKeyRef")


class EnvVar(_Strict):
    name: str
    value: str | None = Field(default=None, max_length=32_768)
    value_from: EnvSource | None = Field(default=None, alias="valueFrom")

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        return _env_name(v)

    @model_validator(mode="after")
    def _one_source(self) -> EnvVar:
        if self.value is not None and self.value_from is not None:
            raise ValueError("set value or valueFrom, not both")
        return self


class SecretRef(_Strict):
    name: str

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        return _secret_name(v)


class EnvFromSource(_Strict):
    """All keys of a Secret as environment variables (``envFrom: [{secretRef: {name: hf-token}}]``)."""

    secret_ref: SecretRef = Field(alias="secretRef")
    prefix: str = Field(default="", max_length=253)


class Protocol(StrEnum):
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class Port(_Strict):
    container_port: int = Field(alias="containerPort", ge=1, le=65535)
    name: str | None = Field(default=None, max_length=15)
    protocol: Protocol = Protocol.TCP

    @field_validator("name")
    @classmethod
    def _iana(cls, v: str | None) -> str | None:
        if v is not None and (not _PORT_NAME.fullmatch(v) or not re.search(r"[a-z]", v)):
            raise ValueError(f"{v!r} is not a valid port name: at most 15 lower-case letters, digits and '-'")
        return v


class Container(_Strict):
    image: str = Field(min_length=1, max_length=1024)
    command: list[str] = Field(default_factory=list, max_length=256)
    args: list[str] = Field(default_factory=list, max_length=4096)
    env: list[EnvVar] = Field(default_factory=list, max_length=512)
    env_from: list[EnvFromSource] = Field(default_factory=list, alias="envFrom", max_length=64)
    working_dir: str | None = Field(default=None, alias="workingDir", min_length=1, max_length=4096)
    ports: list[Port] = Field(default_factory=list, max_length=64)
    shm_size: str | None = Field(default=None, alias="shmSize", max_length=32)

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        if not _IMAGE.fullmatch(v):
            raise ValueError(f"{v!r} is not an image reference (registry/repository:tag)")
        return v

    @field_validator("working_dir")
    @classmethod
    def _absolute(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("/"):
            raise ValueError(f"{v!r} must be an absolute path")
        return v

    @field_validator("shm_size")
    @classmethod
    def _quantity(cls, v: str | None) -> str | None:
        if v is not None and not _QUANTITY.fullmatch(v):
            raise ValueError(f"{v!r} is not a size (a Kubernetes quantity such as 64Gi)")
        return v

    @field_validator("env")
    @classmethod
    def _unique_env(cls, v: list[EnvVar]) -> list[EnvVar]:
        seen: set[str] = set()
        for e in v:
            if e.name in RESERVED_ENV:
                raise ValueError(f"{e.name!r} is set by Awan in every pod (reserved: {', '.join(sorted(RESERVED_ENV))})")
            if e.name in seen:
                raise ValueError(f"{e.name!r} is set twice")
            seen.add(e.name)
        return v

    @field_validator("ports")
    @classmethod
    def _unique_ports(cls, v: list[Port]) -> list[Port]:
        seen: set[tuple[int, str]] = set()
        names: set[str] = set()
        for p in v:
            if (p.container_port, p.protocol.value) in seen:
                raise ValueError(f"containerPort {p.container_port}/{p.protocol.value} is listed twice")
            if p.name is not None and p.name in names:
                raise ValueError(f"port name {p.name!r} is used twice")
            seen.add((p.container_port, p.protocol.value))
            if p.name is not None:
                names.add(p.name)
        return v


class RestartPolicy(StrEnum):
    """What a run that fails by itself (non-zero exit) does. Infrastructure failures (preemption, a lost
    node or region) are always retried, up to ``maxRetries``, as SkyPilot managed jobs recover."""

    NEVER = "Never"           # the workload ends Failed with the exit code
    ON_FAILURE = "OnFailure"  # run again from the checkpoint, counted against maxRetries


class Checkpoint(_Strict):
    uri: str = Field(min_length=1, max_length=2048)
    env: str = DEFAULT_CHECKPOINT_ENV

    @field_validator("env")
    @classmethod
    def _check_env(cls, v: str) -> str:
        return _env_name(v)

    @field_validator("uri")
    @classmethod
    def _printable(cls, v: str) -> str:
        if any(ord(c) < 0x20 or c == "\x7f" for c in v) or v != v.strip():
            raise ValueError("must be printable, without surrounding spaces")
        return v


class HttpGet(_Strict):
    path: str = Field(default="/", max_length=2048, pattern=r"^/")
    port: int = Field(ge=1, le=65535)


class TcpSocket(_Strict):
    port: int = Field(ge=1, le=65535)


class ReadinessProbe(_Strict):
    http_get: HttpGet | None = Field(default=None, alias="httpGet")
    tcp_socket: TcpSocket | None = Field(default=None, alias="tcpSocket")
    initial_delay_seconds: int = Field(default=0, alias="initialDelaySeconds", ge=0, le=INT32_MAX)
    period_seconds: int = Field(default=10, alias="periodSeconds", ge=1, le=INT32_MAX)
    failure_threshold: int = Field(default=3, alias="failureThreshold", ge=1, le=INT32_MAX)

    @model_validator(mode="after")
    def _one_handler(self) -> ReadinessProbe:
        if (self.http_get is None) == (self.tcp_socket is None):
            raise ValueError("set exactly one of httpGet or tcpSocket")
        return self


class Run(_Strict):
    restart_policy: RestartPolicy = Field(default=RestartPolicy.NEVER, alias="restartPolicy")
    max_retries: int = Field(default=3, alias="maxRetries", ge=0, le=1000)
    active_deadline_seconds: int | None = Field(default=None, alias="activeDeadlineSeconds", gt=0, le=INT32_MAX)
    checkpoint: Checkpoint | None = None
    readiness_probe: ReadinessProbe | None = Field(default=None, alias="readinessProbe")
    service_port: int | None = Field(default=None, alias="servicePort", ge=1, le=65535)
