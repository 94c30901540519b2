"""The PurchasingPolicy document (pydantic, at the edge). It sits in the same policy text as the
PlacementPolicy and QueuePolicy documents (``kind`` tells them apart); ``load.py`` turns it into a
``PurchasingConfig``.

```yaml
apiVersion: awan.dev/v1alpha1
kind: PurchasingPolicy
metadata: {name: blocks}
spec:
  mode: approve                 # approve: propose, a person approves; auto: buy within the budget;
                                # off: buy nothing (only moveBeforeEnd applies; the fields below may go)
  providers: [aws]              # AWS Capacity Blocks for ML of these types in these regions
  regions: [us-east-1]
  instanceTypes: [p5.48xlarge, u-p6e-gb200x72]   # instance types or UltraServer types
  futureReservations:           # Google Cloud future reservations (calendar mode) of these machine types
  - {machineTypes: [a3-highgpu-8g], regions: [us-central1], zones: [us-central1-a]}   # zones: optional
  maxPricePerGpuHour: 4.0
  budget: {total: 100000, perPeriod: 25000, period: 30d}
  leadTime: {min: 0h, max: 14d} # how soon and how far ahead a block may start
  hours: 24                     # block length for demand that gives no spec.schedule.duration
  moveBeforeEnd: 2h             # move a running workload off a block this long before the block ends
```
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from controlplane.model.workload import parse_duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _span(v: timedelta | None, *, zero_ok: bool) -> timedelta | None:
    if v is None:
        return v
    if v.total_seconds() < 0 or (not zero_ok and v.total_seconds() == 0) or v > timedelta(days=3660):
        raise ValueError("must be a " + ("non-negative" if zero_ok else "positive") + " duration of at most 3660 days")
    return v


class BudgetDoc(_Strict):
    total: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    per_period: float | None = Field(default=None, ge=0, alias="perPeriod", allow_inf_nan=False)
    period: timedelta | None = None

    @field_validator("period", mode="before")
    @classmethod
    def _duration(cls, v: object) -> object:
        return parse_duration(v)

    @field_validator("period")
    @classmethod
    def _positive(cls, v: timedelta | None) -> timedelta | None:
        return _span(v, zero_ok=False)

    @model_validator(mode="after")
    def _complete(self) -> BudgetDoc:
        if self.per_period is not None and self.period is None:
            raise ValueError("period: required with perPeriod (e.g. 30d)")
        if self.total is None and self.per_period is None:
            raise ValueError("total: give total, perPeriod or both (a purchase spends money)")
        return self


class LeadTimeDoc(_Strict):
    min: timedelta = timedelta(0)
    max: timedelta = timedelta(days=14)

    @field_validator("min", "max", mode="before")
    @classmethod
    def _duration(cls, v: object) -> object:
        return parse_duration(v)

    @field_validator("min", "max")
    @classmethod
    def _non_negative(cls, v: timedelta) -> timedelta:
        out = _span(v, zero_ok=True)
        assert out is not None
        return out

    @model_validator(mode="after")
    def _ordered(self) -> LeadTimeDoc:
        if self.max < self.min:
            raise ValueError("max: must not be less than min")
        return self


class FutureReservationsDoc(_Strict):
    """What GCP future reservations may be requested: machine types in regions (in these zones only, if
    given). Priced from the catalog's on-demand price: a future reservation is billed for every VM it
    holds over its whole window, used or not."""

    machine_types: list[str] = Field(min_length=1, alias="machineTypes")
    regions: list[str] = Field(min_length=1)
    zones: list[str] = Field(default_factory=list)

    @field_validator("machine_types", "regions", "zones", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v


class PurchasingSpec(_Strict):
    mode: Literal["approve", "auto", "off"] = "approve"
    providers: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    instance_types: list[str] = Field(default_factory=list, alias="instanceTypes")
    future_reservations: list[FutureReservationsDoc] = Field(default_factory=list, alias="futureReservations")
    max_price_per_gpu_hour: float | None = Field(default=None, alias="maxPricePerGpuHour", gt=0, allow_inf_nan=False)
    budget: BudgetDoc | None = None
    lead_time: LeadTimeDoc = Field(default_factory=LeadTimeDoc, alias="leadTime")
    hours: int = Field(default=24, ge=1, le=182 * 24)
    move_before_end: timedelta | None = Field(default=None, alias="moveBeforeEnd")

    @field_validator("move_before_end", mode="before")
    @classmethod
    def _duration(cls, v: object) -> object:
        return parse_duration(v)

    @field_validator("move_before_end")
    @classmethod
    def _positive(cls, v: timedelta | None) -> timedelta | None:
        return _span(v, zero_ok=False)

    @field_validator("mode", mode="before")
    @classmethod
    def _off(cls, v: object) -> object:
        return "off" if v is False else v      # YAML 1.1 reads a bare `off` as false

    @field_validator("providers", "regions", "instance_types", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v


class PurchasingMetadata(_Strict):
    name: str = Field(min_length=1, max_length=63)
    description: str = ""


class PurchasingPolicyDocument(_Strict):
    api_version: Literal["awan.dev/v1alpha1"] = Field(default="awan.dev/v1alpha1", alias="apiVersion")
    kind: Literal["PurchasingPolicy"] = "PurchasingPolicy"
    metadata: PurchasingMetadata
    spec: PurchasingSpec
