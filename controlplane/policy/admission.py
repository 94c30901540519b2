"""Admission checks of a workload against the catalog and the policies in force: fail closed.

Residency is a compliance promise, so a value that means nothing (a ``data-class`` label no policy defines,
a region or geography the catalog does not know, a region glob that matches no region) is refused when the
workload is submitted (API 422) or planned (``awan plan`` exits non-zero) instead of being dropped or
ending as an unexplained "nothing matches". Each refusal names the field and suggests the closest valid
values (difflib), e.g. ``metadata.labels.data-class: 'eu-personel' is not a data class defined by the
policies in force (did you mean 'eu-personal'?)``.

Pure functions of (workload, catalog, policies): the API and the CLI call the same ones.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from controlplane.model.workload import GPUWorkload
from controlplane.policy.model import PolicySet
from providers.catalog import Catalog

DATA_CLASS_LABEL = "data-class"
DATA_REGION_LABEL = "data-region"


@dataclass(frozen=True, slots=True)
class AdmissionError:
    field: str          # e.g. spec.location.regions[1]
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _suggest(value: str, choices: Iterable[str], n: int = 3) -> str:
    pool = sorted(set(choices))
    close = difflib.get_close_matches(value, pool, n=n, cutoff=0.6)
    # short codes (geo ``eu``) are too short for a ratio to find from a long spelling (``europe``): a code
    # the value starts with is a suggestion too
    close += [c for c in pool if len(c) <= 4 and value.lower().startswith(c) and c not in close][:n - len(close)]
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def _glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def region_pattern_error(pattern: str, catalog: Catalog) -> str | None:
    """Why ``pattern`` (``provider:region``, a bare region name, or a glob of either) names no region of the
    catalog, or None when it matches at least one."""
    # Checked on every submit: the lists an error message needs are built only for an error.
    if ":" in pattern:
        prov, _, pat = pattern.partition(":")
        # A provider without a glob character matches only itself (fnmatchcase is then equality): the
        # common ``aws:*`` is a string comparison per region, not a match of the pattern.
        if _glob(prov):
            if any(fnmatchcase(p, prov) and fnmatchcase(r, pat) for p, r in catalog.regions):
                return None
        elif any(p == prov and (pat == "*" or fnmatchcase(r, pat)) for p, r in catalog.regions):
            return None
        providers = sorted({p for p, _ in catalog.regions})
        if not any(fnmatchcase(p, prov) for p in providers):
            return f"unknown provider {prov!r} in {pattern!r}{_suggest(prov, providers)}; known: {', '.join(providers)}"
        qualified = [f"{p}:{r}" for p, r in catalog.regions]
        what = "matches no region" if _glob(pat) else "is not a region"
        return f"{pattern!r} {what} of the catalog{_suggest(pattern, qualified)}"
    if any(fnmatchcase(r, pattern) for _, r in catalog.regions):
        return None
    what = "matches no region" if _glob(pattern) else "is not a region"
    names = [r for _, r in catalog.regions] + [f"{p}:{r}" for p, r in catalog.regions]
    return f"{pattern!r} {what} of any provider in the catalog{_suggest(pattern, names)}"


def geo_error(geo: str, catalog: Catalog) -> str | None:
    geos = sorted({r.geo for r in catalog.regions.values()})
    if geo in geos:
        return None
    return f"unknown geography {geo!r}{_suggest(geo, geos)}; known: {', '.join(geos)}"


def data_class_error(name: str, policies: PolicySet) -> str | None:
    known = sorted(d.name for d in policies.data_classes)
    if name in known:
        return None
    defined = ", ".join(known) if known else "none"
    return (f"{name!r} is not a data class defined by the policies in force{_suggest(name, known)}; "
            f"defined: {defined}")


def workload_errors(w: GPUWorkload, catalog: Catalog, policies: PolicySet,
                    seen: dict[str, str | None] | None = None) -> list[AdmissionError]:
    """Every value of ``w`` that would fail open, each naming its field. ``seen``: region patterns already
    checked against ``catalog`` (pattern -> why or None), shared by the workloads of one call."""
    seen = {} if seen is None else seen
    out: list[AdmissionError] = []
    labels = w.metadata.labels
    if DATA_CLASS_LABEL in labels:
        why = data_class_error(labels[DATA_CLASS_LABEL], policies)
        if why:
            out.append(AdmissionError(f"metadata.labels.{DATA_CLASS_LABEL}", why))
    if labels.get(DATA_REGION_LABEL):
        why = _region_error(labels[DATA_REGION_LABEL], catalog, seen)
        if why:
            out.append(AdmissionError(f"metadata.labels.{DATA_REGION_LABEL}", why))
    loc = w.spec.location
    for i, g in enumerate(loc.geo or ()):
        why = geo_error(g, catalog)
        if why:
            out.append(AdmissionError(f"spec.location.geo[{i}]", why))
    for i, r in enumerate(loc.regions or ()):
        why = _region_error(r, catalog, seen)
        if why:
            out.append(AdmissionError(f"spec.location.regions[{i}]", why))
    return out


def _region_error(pattern: str, catalog: Catalog, seen: dict[str, str | None]) -> str | None:
    if pattern not in seen:
        seen[pattern] = region_pattern_error(pattern, catalog)
    return seen[pattern]


def first_error(workloads: Sequence[GPUWorkload], catalog: Catalog, policies: PolicySet,
                where: Sequence[str] | None = None) -> str | None:
    """``<where>: <workload>: <field>: <why>`` for the first workload refused, or None when all pass.
    ``where`` gives each workload's source (file, ``doc N``) for the message."""
    # A body of many workloads names the same few region patterns: each is matched against the catalog once.
    seen: dict[str, str | None] = {}
    for i, w in enumerate(workloads):
        errs = workload_errors(w, catalog, policies, seen)
        if errs:
            prefix = f"{where[i]}: " if where is not None else ""
            more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
            return f"{prefix}workload {w.name!r}: {errs[0]}{more}"
    return None


def needs_policies(workloads: Iterable[GPUWorkload]) -> bool:
    """Whether checking ``workloads`` reads the policies (only a data-class label does)."""
    return any(DATA_CLASS_LABEL in w.metadata.labels for w in workloads)
