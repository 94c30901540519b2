"""The policy document schema (pydantic, at the edge). ``load.py`` turns documents into a PolicySet."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from controlplane.model.workload import INT32_MAX
from providers.catalog import PROVIDERS, CapacityType


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _listify(v: object) -> object:
    return [v] if isinstance(v, str) else v


class AllowDenyDoc(_Strict):
    allow: list[str] | None = None
    deny: list[str] = Field(default_factory=list)

    _lists = field_validator("allow", "deny", mode="before")(classmethod(lambda cls, v: _listify(v)))


class ProvidersDoc(AllowDenyDoc):
    @field_validator("allow", "deny")
    @classmethod
    def _known(cls, v: list[str] | None) -> list[str] | None:
        for p in v or []:
            if p not in PROVIDERS:
                raise ValueError(f"unknown provider {p!r} (known: {', '.join(PROVIDERS)})")
        return v


class CapacityTypesDoc(AllowDenyDoc):
    @field_validator("allow", "deny")
    @classmethod
    def _known(cls, v: list[str] | None) -> list[str] | None:
        for c in v or []:
            CapacityType(c)  # ValueError names the value
        return v


class DataClassDoc(_Strict):
    geo: list[str] | None = None
    countries: list[str] | None = None

    _lists = field_validator("geo", "countries", mode="before")(classmethod(lambda cls, v: _listify(v)))


class RuleDoc(_Strict):
    name: str = Field(min_length=1)
    expr: str
    message: str = ""


class PreferencesDoc(_Strict):
    cost: float | None = Field(default=None, ge=0)
    committed: float | None = Field(default=None, ge=0)
    fewer_providers: float | None = Field(default=None, ge=0, alias="fewerProviders")
    spread: float | None = Field(default=None, ge=0)
    health: float | None = Field(default=None, ge=0)
    data_locality: float | None = Field(default=None, ge=0, alias="dataLocality")


class ProviderShareDoc(_Strict):
    max: float = Field(gt=0, le=1)
    min_fleet_gpus: int = Field(default=1024, ge=0, le=INT32_MAX, alias="minFleetGpus")
    # workloads only one provider can serve (see controlplane/policy/model.py ProviderShareCap)
    sole_provider: Literal["exempt", "capped"] = Field(default="exempt", alias="soleProvider")


class TeamBudgetDoc(_Strict):
    gpus: int | None = Field(default=None, ge=0, le=INT32_MAX)
    dollars_per_hour: float | None = Field(default=None, ge=0, alias="dollarsPerHour", allow_inf_nan=False)


class CapsDoc(_Strict):
    provider_share: ProviderShareDoc | None = Field(default=None, alias="providerShare")
    teams: dict[str, TeamBudgetDoc] = Field(default_factory=dict)


class CommitmentDoc(_Strict):
    name: str = Field(min_length=1)
    provider: Literal["aws", "gcp", "azure", "coreweave", "oci"]
    gpu_model: str = Field(alias="gpuModel")
    gpus: int | None = Field(default=None, gt=0, le=INT32_MAX)
    dollars_per_hour: float | None = Field(default=None, gt=0, alias="dollarsPerHour", allow_inf_nan=False)
    start: datetime | date
    end: datetime | date
    take_or_pay: bool = Field(default=True, alias="takeOrPay")
    regions: list[str] | None = None
    capacity_types: list[CapacityType] = Field(
        default_factory=lambda: [CapacityType.RESERVED, CapacityType.ON_DEMAND], alias="capacityTypes")
    price_per_gpu_hour: float | None = Field(default=None, ge=0, alias="pricePerGpuHour")

    _lists = field_validator("regions", "capacity_types", mode="before")(classmethod(lambda cls, v: _listify(v)))

    @model_validator(mode="after")
    def _amount_and_term(self) -> CommitmentDoc:
        if (self.gpus is None) == (self.dollars_per_hour is None):
            raise ValueError("give exactly one of gpus or dollarsPerHour")
        if _as_datetime(self.end) <= _as_datetime(self.start):
            raise ValueError("end must be after start")
        return self


def _as_datetime(v: datetime | date) -> datetime:
    from datetime import UTC, time
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    return datetime.combine(v, time.min, tzinfo=UTC)


class LifecycleDoc(_Strict):
    """What happens to capacity when a run ends: it is held this long (a follow-up run, a look at the
    nodes), then released."""

    idle_timeout_seconds: int = Field(alias="idleTimeoutSeconds", ge=0, le=2**31 - 1)


class TopologySpreadDoc(_Strict):
    max_skew: int = Field(ge=1, le=INT32_MAX, alias="maxSkew")


class PolicySpec(_Strict):
    providers: ProvidersDoc | None = None
    regions: AllowDenyDoc | None = None
    gpu_models: AllowDenyDoc | None = Field(default=None, alias="gpuModels")
    capacity_types: CapacityTypesDoc | None = Field(default=None, alias="capacityTypes")
    max_price_per_gpu_hour: float | None = Field(default=None, gt=0, alias="maxPricePerGpuHour", allow_inf_nan=False)
    data_classes: dict[str, DataClassDoc] = Field(default_factory=dict, alias="dataClasses")
    rules: list[RuleDoc] = Field(default_factory=list)
    preferences: PreferencesDoc | None = None
    caps: CapsDoc | None = None
    commitments: list[CommitmentDoc] = Field(default_factory=list)
    lifecycle: LifecycleDoc | None = None
    surplus_gpus: Literal["allow", "forbid"] | None = Field(default=None, alias="surplusGpus")
    topology_spread: TopologySpreadDoc | None = Field(default=None, alias="topologySpread")


class PolicyMetadata(_Strict):
    name: str = Field(min_length=1)
    description: str = ""


class PolicyDocument(_Strict):
    api_version: Literal["awan.dev/v1alpha1"] = Field(default="awan.dev/v1alpha1", alias="apiVersion")
    kind: Literal["PlacementPolicy"] = "PlacementPolicy"
    metadata: PolicyMetadata
    spec: PolicySpec


as_datetime = _as_datetime
