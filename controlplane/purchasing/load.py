"""PurchasingPolicy documents -> one PurchasingConfig (or None when the text has none). Other kinds in the
same text are skipped (and the placement and queue loaders skip this one), so one policy file or
``PUT /v1/policies`` body holds them all. One PurchasingPolicy at most: two budgets for the same money
would have no clear meaning."""

from __future__ import annotations

import threading
from collections.abc import Callable

from controlplane.model.manifest import documents_of_kind
from controlplane.purchasing import futures
from controlplane.purchasing.documents import PurchasingPolicyDocument
from controlplane.purchasing.model import OFF, Budget, FutureTarget, PurchasingConfig, Target
from providers.catalog import PROVIDERS, Catalog, default_catalog

KIND = "PurchasingPolicy"
# Providers whose Capacity Blocks Awan buys (spec.providers); GCP capacity is bought as future reservations,
# given in spec.futureReservations (SupportsFutureReservations).
BUYS = ("aws",)


class PurchasingError(ValueError):
    """A purchasing policy that cannot be used; the message names the document and the field."""


def parse_purchasing_text(text: str, source: str = "policy document",
                          catalog: Catalog | None = None) -> PurchasingConfig | None:
    found = documents_of_kind(PurchasingError, text, source, KIND, PurchasingPolicyDocument)
    if not found:
        return None
    if len(found) > 1:
        raise PurchasingError(f"{found[1][0]}: kind: only one PurchasingPolicy may be in force "
                              f"({found[0][1].metadata.name!r} is already)")
    return _config(*found[0], catalog or default_catalog())


def _config(where: str, doc: PurchasingPolicyDocument, cat: Catalog) -> PurchasingConfig:
    s = doc.spec
    if s.mode != OFF:   # what may be bought, at what price, within what budget: required unless nothing is
        blocks = [("providers", s.providers), ("regions", s.regions), ("instanceTypes", s.instance_types)]
        if s.future_reservations and not any(v for _, v in blocks):
            blocks = []         # only future reservations: no Capacity Blocks
        for name, value in (*blocks, ("maxPricePerGpuHour", s.max_price_per_gpu_hour), ("budget", s.budget)):
            if not value:
                raise PurchasingError(f"{where}: spec.{name}: required when mode is {s.mode} "
                                      "(a purchase spends money; mode: off buys nothing)"
                                      + (" or give only spec.futureReservations" if name in dict(blocks) else ""))
    for i, p in enumerate(s.providers):
        if p not in PROVIDERS:
            raise PurchasingError(f"{where}: spec.providers[{i}]: unknown provider {p!r} "
                                  f"(known: {', '.join(PROVIDERS)})")
        if p == "gcp":
            raise PurchasingError(f"{where}: spec.providers[{i}]: Google Cloud capacity is bought as future "
                                  "reservations: give it in spec.futureReservations (machineTypes, regions)")
        if p not in BUYS:
            raise PurchasingError(f"{where}: spec.providers[{i}]: Awan cannot buy capacity at {p!r} yet "
                                  f"(it buys at: {', '.join(BUYS)})")
    regions: list[tuple[str, str]] = []
    for i, r in enumerate(s.regions):
        owners = [p for p in s.providers if (p, r) in cat.regions]
        if not owners:
            raise PurchasingError(f"{where}: spec.regions[{i}]: {r!r} is not a region of "
                                  f"{', '.join(s.providers)} in the catalog")
        regions += [(p, r) for p in owners]
    targets: list[Target] = []
    for i, name in enumerate(s.instance_types):
        t = _target(name, s.providers, cat)
        if t is None:
            raise PurchasingError(f"{where}: spec.instanceTypes[{i}]: {name!r} is neither an instance type nor "
                                  f"an UltraServer type of {', '.join(s.providers)} in the catalog")
        targets.append(t)
    future = _futures(where, doc, cat)
    b = s.budget
    return PurchasingConfig(
        name=doc.metadata.name, mode=s.mode, providers=tuple(s.providers), regions=tuple(regions),
        targets=tuple(targets), max_price_per_gpu_hour=s.max_price_per_gpu_hour or 0.0,
        budget=Budget(b.total, b.per_period, b.period) if b is not None else Budget(total=0.0), lead_min=s.lead_time.min, lead_max=s.lead_time.max,
        hours=s.hours, move_before_end=s.move_before_end, source=f"{where} ({doc.metadata.name})",
        future=future)


def _futures(where: str, doc: PurchasingPolicyDocument, cat: Catalog) -> tuple[FutureTarget, ...]:
    """spec.futureReservations, checked against the catalog and GCP's calendar-mode rules (futures.py)."""
    s = doc.spec
    if not s.future_reservations:
        return ()
    zones = cat.zones("gcp")
    out: list[FutureTarget] = []
    for i, f in enumerate(s.future_reservations):
        at = f"{where}: spec.futureReservations[{i}]"
        for j, r in enumerate(f.regions):
            if ("gcp", r) not in cat.regions:
                raise PurchasingError(f"{at}.regions[{j}]: {r!r} is not a Google Cloud region in the catalog")
        for j, z in enumerate(f.zones):
            if zones.get(z) not in f.regions:
                raise PurchasingError(f"{at}.zones[{j}]: {z!r} is not a zone of "
                                      f"{', '.join(f.regions)} in the catalog")
        for j, name in enumerate(f.machine_types):
            it = cat.find_instance_type("gcp", name)
            if it is None or it.gpu_model.upper().startswith("TPU") or it.gpus < 1:
                raise PurchasingError(f"{at}.machineTypes[{j}]: {name!r} is not a Google Cloud GPU machine type "
                                      "in the catalog")
            t = FutureTarget(it.name, it.gpu_model, it.gpus, tuple(f.regions), tuple(f.zones))
            if not any(futures.zones_for(t, r, cat) for r in f.regions):
                raise PurchasingError(f"{at}.machineTypes[{j}]: {name!r} has no on-demand price in "
                                      f"{', '.join(f.zones or f.regions)} in the catalog (a future reservation "
                                      "is priced at it)")
            out.append(t)
    lead = s.lead_time
    if lead.max < futures.MIN_LEAD:
        raise PurchasingError(f"{where}: spec.leadTime.max: {lead.max} is sooner than any future reservation can "
                              f"start: GCP accepts GPU requests at least {futures.MIN_LEAD} (87h) ahead")
    if lead.min > futures.MAX_LEAD:
        raise PurchasingError(f"{where}: spec.leadTime.min: {lead.min} is further ahead than GCP takes future "
                              f"reservation requests ({futures.MAX_LEAD.days} days)")
    if s.hours > futures.MAX_HOURS:
        raise PurchasingError(f"{where}: spec.hours: {s.hours} is longer than a future reservation in calendar "
                              f"mode may last ({futures.MAX_HOURS}h, 90 days)")
    return tuple(out)


def _target(name: str, providers: list[str], cat: Catalog) -> Target | None:
    for p in providers:
        it = cat.find_instance_type(p, name)
        if it is None:   # an UltraServer type names the unit its instance type is sold in
            it = next((x for (q, _), x in sorted(cat.instance_types.items()) if q == p and x.ultraserver == name),
                      None)
        if it is not None:
            return Target(p, it.name, it.gpu_model, it.gpus, it.ultraserver, it.nodes_per_domain)
    return None


class PurchasingSource:
    """The PurchasingConfig in force, from the same policy text as placement (parsed once per distinct text)."""

    def __init__(self, document: Callable[[], tuple[str, str]]) -> None:
        self._document = document
        self._cached: tuple[str, PurchasingConfig | None] | None = None
        self._lock = threading.Lock()

    def current(self) -> PurchasingConfig | None:
        text, _ = self._document()
        with self._lock:
            if self._cached and self._cached[0] == text:
                return self._cached[1]
        cfg = parse_purchasing_text(text, "policy document") if text.strip() else None
        with self._lock:
            self._cached = (text, cfg)
        return cfg
