"""The QueuePolicy document (pydantic, at the edge). It sits in the same policy files as the
PlacementPolicy documents (``kind`` tells them apart); ``load.py`` turns it into a ``QueueConfig``.

```yaml
apiVersion: awan.dev/v1alpha1
kind: QueuePolicy
metadata: {name: shared-fleet}
spec:
  flavours:
    - {name: h100, gpuModel: H100}                       # optionally provider, capacityType
  queues:
    - name: research
      teams: [research]
      cohort: ml
      weight: 2
      quotas:
        - {flavour: h100, nominal: 64, borrowingLimit: 32, lendingLimit: 16}
      preemption: {withinQueue: LowerPriority, reclaimWithinCohort: Any}
  preemption:
    gracePeriodSeconds: 300
    protect: {runningLongerThanHours: 24, priorityAtLeast: 1000}
    fairSharing: {preemptionStrategies: [LessThanOrEqualToFinalShare, LessThanInitialShare]}
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from controlplane.model.workload import INT32_MAX, INT32_MIN, is_dns_label, known_gpu_models
from providers.catalog import PROVIDERS, CapacityType


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _dns(v: str) -> str:
    if not is_dns_label(v):
        raise ValueError("must be a DNS-1123 label: lower-case letters, digits and '-', at most 63")
    return v


class FlavourDoc(_Strict):
    name: str
    gpu_model: str = Field(alias="gpuModel")
    provider: str | None = None
    capacity_type: CapacityType | None = Field(default=None, alias="capacityType")

    _name = field_validator("name")(classmethod(lambda cls, v: _dns(v)))

    @field_validator("gpu_model")
    @classmethod
    def _model(cls, v: str) -> str:
        known = known_gpu_models()
        if v.upper() not in known:
            raise ValueError(f"unknown GPU model {v!r} (known: {', '.join(sorted(known.values()))})")
        return known[v.upper()]

    @field_validator("provider")
    @classmethod
    def _provider(cls, v: str | None) -> str | None:
        if v is not None and v not in PROVIDERS:
            raise ValueError(f"unknown provider {v!r} (known: {', '.join(PROVIDERS)})")
        return v


class QuotaDoc(_Strict):
    flavour: str
    nominal: int = Field(ge=0, le=INT32_MAX)
    borrowing_limit: int | None = Field(default=None, ge=0, le=INT32_MAX, alias="borrowingLimit")
    lending_limit: int | None = Field(default=None, ge=0, le=INT32_MAX, alias="lendingLimit")


class QueuePreemptionDoc(_Strict):
    within_queue: Literal["LowerPriority", "Never"] = Field(default="LowerPriority", alias="withinQueue")
    reclaim_within_cohort: Literal["Any", "LowerPriority", "Never"] = Field(default="Any",
                                                                            alias="reclaimWithinCohort")


class QueueDoc(_Strict):
    name: str
    teams: list[str] = Field(default_factory=list)
    cohort: str | None = None
    weight: float = Field(default=1.0, gt=0, le=1e6, allow_inf_nan=False)
    quotas: list[QuotaDoc] = Field(default_factory=list)
    preemption: QueuePreemptionDoc = Field(default_factory=QueuePreemptionDoc)

    _names = field_validator("name", "cohort")(classmethod(lambda cls, v: v if v is None else _dns(v)))

    @field_validator("teams", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @field_validator("teams")
    @classmethod
    def _teams(cls, v: list[str]) -> list[str]:
        for t in v:
            _dns(t)
        return v


class ProtectDoc(_Strict):
    running_longer_than_hours: float | None = Field(default=None, ge=0, alias="runningLongerThanHours",
                                                    allow_inf_nan=False)
    priority_at_least: int | None = Field(default=None, ge=INT32_MIN, le=INT32_MAX, alias="priorityAtLeast")


FairStrategyName = Literal["LessThanOrEqualToFinalShare", "LessThanInitialShare"]
# As Kueue's API allows: either strategy alone, or the final-share one first with the initial-share one as
# its fallback. Whatever the final-share rule allows the initial-share one allows too (a queue's share only
# drops when its workload goes), so the other order would never use its second.
_STRATEGY_ORDERS: tuple[list[FairStrategyName], ...] = (
    ["LessThanOrEqualToFinalShare"], ["LessThanInitialShare"], ["LessThanOrEqualToFinalShare", "LessThanInitialShare"])


class FairSharingDoc(_Strict):
    preemption_strategies: list[FairStrategyName] = Field(
        default_factory=lambda: list(_STRATEGY_ORDERS[2]),
        alias="preemptionStrategies")

    @field_validator("preemption_strategies")
    @classmethod
    def _order(cls, v: list[FairStrategyName]) -> list[FairStrategyName]:
        if v not in _STRATEGY_ORDERS:
            raise ValueError("must be [LessThanOrEqualToFinalShare], [LessThanInitialShare] or "
                             "[LessThanOrEqualToFinalShare, LessThanInitialShare]")
        return v


class PreemptionDoc(_Strict):
    grace_period_seconds: float = Field(default=0.0, ge=0, le=7 * 86400, alias="gracePeriodSeconds",
                                        allow_inf_nan=False)
    protect: ProtectDoc = Field(default_factory=ProtectDoc)
    # Present: a queue below its fair share may preempt borrowed workloads of a cohort peer above its share.
    fair_sharing: FairSharingDoc | None = Field(default=None, alias="fairSharing")


class QueueSpec(_Strict):
    flavours: list[FlavourDoc] = Field(default_factory=list)
    queues: list[QueueDoc] = Field(default_factory=list)
    preemption: PreemptionDoc | None = None


class QueueMetadata(_Strict):
    name: str = Field(min_length=1)
    description: str = ""


class QueuePolicyDocument(_Strict):
    api_version: Literal["awan.dev/v1alpha1"] = Field(default="awan.dev/v1alpha1", alias="apiVersion")
    kind: Literal["QueuePolicy"] = "QueuePolicy"
    metadata: QueueMetadata
    spec: QueueSpec
