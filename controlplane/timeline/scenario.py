"""A what-if scenario for ``awan simulate``: the window, the contracts and Capacity Blocks (dated reserved
capacity), which providers sell on-demand, and the demand trace (a file or the generator). Pydantic at the
edge, so a bad scenario is refused with the field named; plain dataclasses inside.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from controlplane.model.workload import parse_duration


class ScenarioError(ValueError):
    """A scenario that cannot be simulated; the message names the file and the field."""


def _when(v: object) -> object:
    if isinstance(v, date) and not isinstance(v, datetime):
        return datetime(v.year, v.month, v.day, tzinfo=UTC)
    if isinstance(v, datetime) and v.tzinfo is None:
        return v.replace(tzinfo=UTC)
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ContractDoc(_Strict):
    name: str
    provider: str
    gpu_model: str = Field(alias="gpuModel")
    gpus: int = Field(gt=0)
    start: datetime
    end: datetime
    price_per_gpu_hour: float = Field(alias="pricePerGpuHour", ge=0, allow_inf_nan=False)
    take_or_pay: bool = Field(default=True, alias="takeOrPay")
    region: str | None = None
    instance_type: str | None = Field(default=None, alias="instanceType")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _dates(cls, v: object) -> object:
        return _when(v)

    @model_validator(mode="after")
    def _order(self) -> ContractDoc:
        if self.end <= self.start:
            raise ValueError("end: must be after start")
        return self


class BlockDoc(_Strict):
    name: str
    provider: str
    region: str
    instance_type: str = Field(alias="instanceType")
    nodes: int = Field(gt=0)
    start: datetime
    end: datetime
    price_per_hour: float = Field(alias="pricePerHour", ge=0, allow_inf_nan=False)    # per node
    zone: str | None = None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _dates(cls, v: object) -> object:
        return _when(v)

    @model_validator(mode="after")
    def _order(self) -> BlockDoc:
        if self.end <= self.start:
            raise ValueError("end: must be after start")
        return self


class OnDemandDoc(_Strict):
    providers: list[str] = Field(default_factory=list)
    scale: float = Field(default=1.0, gt=0, le=1000)


class GenerateDoc(_Strict):
    workloads: int = Field(gt=0, le=5_000_000)
    seed: int = 1
    teams: list[str] = Field(default_factory=lambda: ["research", "product", "inference"])
    # GPU model -> share of workloads asking for it
    models: dict[str, float] = Field(default_factory=lambda: {"H100": 0.5, "GB200": 0.3, "H200": 0.2})
    # gang size in GPUs -> share
    sizes: dict[int, float] = Field(default_factory=lambda: {8: 0.55, 16: 0.2, 64: 0.15, 144: 0.07, 576: 0.03})
    mean_hours: float = Field(default=12.0, gt=0, alias="meanHours")
    max_wait_hours: float = Field(default=168.0, gt=0, alias="maxWaitHours")


class TraceDoc(_Strict):
    file: str | None = None
    generate: GenerateDoc | None = None

    @model_validator(mode="after")
    def _one(self) -> TraceDoc:
        if (self.file is None) == (self.generate is None):
            raise ValueError("give exactly one of file or generate")
        return self


class ScenarioDoc(_Strict):
    start: datetime
    end: datetime
    on_demand: OnDemandDoc = Field(default_factory=OnDemandDoc, alias="onDemand")
    contracts: list[ContractDoc] = Field(default_factory=list)
    blocks: list[BlockDoc] = Field(default_factory=list)
    trace: TraceDoc
    description: str = ""

    @field_validator("start", "end", mode="before")
    @classmethod
    def _dates(cls, v: object) -> object:
        return _when(v)

    @model_validator(mode="after")
    def _check(self) -> ScenarioDoc:
        if self.end <= self.start:
            raise ValueError("end: must be after start")
        names = [c.name for c in self.contracts] + [b.name for b in self.blocks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"contracts/blocks: name {dup[0]!r} is used twice")
        return self


@dataclass(frozen=True, slots=True)
class Scenario:
    doc: ScenarioDoc
    base_dir: Path          # a trace file is read relative to the scenario


def load_scenario(path: Path) -> Scenario:
    if not path.is_file():
        raise ScenarioError(f"{path}: no such file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ScenarioError(f"{path}: not YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping (start, end, contracts, blocks, onDemand, trace)")
    try:
        doc = ScenarioDoc.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ScenarioError(f"{path}: {where}: {err['msg']}") from None
    return Scenario(doc, path.parent)


_DELAY = re.compile(r"([a-z0-9-]+)=(.+)")


def parse_delay(text: str) -> tuple[str, timedelta]:
    """``aws=90d``: the provider's contracts and blocks start (and end) that much later."""
    m = _DELAY.fullmatch(text.strip())
    if m is None:
        raise ScenarioError(f"--delay {text!r}: expected PROVIDER=DURATION, e.g. aws=90d")
    try:
        d = parse_duration(m.group(2))
    except ValueError as e:
        raise ScenarioError(f"--delay {text!r}: {e}") from None
    if not isinstance(d, timedelta):
        raise ScenarioError(f"--delay {text!r}: expected a duration such as 90d or 36h")
    return m.group(1), d


def delayed(s: Scenario, delays: dict[str, timedelta]) -> Scenario:
    """The scenario with each delayed provider's contracts and blocks moved later (capacity arriving late)."""
    if not delays:
        return s
    doc = s.doc.model_copy(update={
        "contracts": [c.model_copy(update={"start": c.start + delays[c.provider], "end": c.end + delays[c.provider]})
                      if c.provider in delays else c for c in s.doc.contracts],
        "blocks": [b.model_copy(update={"start": b.start + delays[b.provider], "end": b.end + delays[b.provider]})
                   if b.provider in delays else b for b in s.doc.blocks]})
    return replace(s, doc=doc)
