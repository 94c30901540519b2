"""Load policy files and merge them into one PolicySet. The only I/O in controlplane/policy.

Merge order (stated, deterministic): paths in the order given; a directory contributes its ``*.yaml`` and
``*.yml`` files sorted by name (like ``conf.d``); documents in file order. How documents combine:

- hard constraints only ever tighten: ``allow`` lists intersect, ``deny`` lists add up,
  ``maxPricePerGpuHour`` takes the lowest, a data class defined twice allows only what both allow;
- CEL rules and commitments add up (names must be unique);
- caps take the strictest value (lowest share, lowest team budget per field);
- preferences (weights) are set per key, the later document wins.

So adding a file can never loosen what an earlier file forbids.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import ValidationError

from controlplane.model.manifest import describe_validation_error, yaml_documents_or
from controlplane.policy.admission import region_pattern_error
from controlplane.policy.cel_rules import CelCompileError, CelRule, compile_rule
from controlplane.policy.documents import AllowDenyDoc, PolicyDocument, as_datetime
from controlplane.policy.model import (
    AllowDeny,
    Commitment,
    DataClassRule,
    PolicyError,
    PolicySet,
    ProviderShareCap,
    TeamBudget,
    Weights,
)
from providers.catalog import Catalog, default_catalog


def policy_files(paths: Path | Sequence[Path]) -> list[Path]:
    items = [paths] if isinstance(paths, Path | str) else list(paths)
    out: list[Path] = []
    for raw in items:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file()))
        elif p.is_file():
            out.append(p)
        else:
            raise PolicyError(f"{p}: no such policy file or directory")
    return out


def load_policies(paths: Path | Sequence[Path]) -> PolicySet:
    docs: list[tuple[str, PolicyDocument]] = []
    for f in policy_files(paths):
        docs.extend(parse_policy_text(f.read_text(), str(f)))
    return merge(docs)


def parse_policy_text(text: str, source: str) -> list[tuple[str, PolicyDocument]]:
    raw = yaml_documents_or(PolicyError, text, source)
    out = []
    for i, d in enumerate(raw, start=1):
        where = f"{source} doc {i}" if len(raw) > 1 else source
        if not isinstance(d, dict):
            raise PolicyError(f"{where}: expected a mapping (a PlacementPolicy)")
        if d.get("kind") in ("QueuePolicy", "PurchasingPolicy"):   # read by controlplane/queues, /purchasing
            continue
        try:
            out.append((where, PolicyDocument.model_validate(d)))
        except ValidationError as e:
            raise PolicyError(f"{where}: {describe_validation_error(e)}") from None
    return out


def _intersect(a: tuple[str, ...] | None, b: Iterable[str] | None) -> tuple[str, ...] | None:
    if b is None:
        return a
    b = tuple(b)
    return b if a is None else tuple(x for x in a if x in b)


def _merge_allow_deny(cur: AllowDeny, doc: AllowDenyDoc | None) -> AllowDeny:
    if doc is None:
        return cur
    deny = cur.deny + tuple(x for x in doc.deny if x not in cur.deny)
    return AllowDeny(allow=_intersect(cur.allow, doc.allow), deny=deny)


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _check_regions(where: str, doc: AllowDenyDoc | None, catalog: Catalog) -> None:
    """Fail closed on region entries the catalog does not know: a typo in a deny list would otherwise
    deny nothing, and one in an allow list would silently empty it."""
    if doc is None:
        return
    for field_name, entries in (("allow", doc.allow or []), ("deny", doc.deny)):
        for j, pattern in enumerate(entries):
            why = region_pattern_error(pattern, catalog)
            if why is not None:
                raise PolicyError(f"{where}: spec.regions.{field_name}[{j}]: {why}")


def merge(docs: Sequence[tuple[str, PolicyDocument]], catalog: Catalog | None = None) -> PolicySet:
    """Merge parsed documents (``catalog``: what region entries are checked against; default: the
    shipped catalog)."""
    cat = catalog or default_catalog()
    ps = PolicySet()
    weights = Weights()
    data_classes: dict[str, DataClassRule] = {}
    rules: list[CelRule] = []
    commitments: list[Commitment] = []
    sources: list[str] = []
    budgets: dict[str, TeamBudget] = {}
    share: ProviderShareCap | None = None
    for where, doc in docs:
        s = doc.spec
        _check_regions(f"{where} ({doc.metadata.name})", s.regions, cat)
        sources.append(f"{where} ({doc.metadata.name})")
        ps = dataclasses.replace(
            ps,
            providers=_merge_allow_deny(ps.providers, s.providers),
            regions=_merge_allow_deny(ps.regions, s.regions),
            gpu_models=_merge_allow_deny(ps.gpu_models, s.gpu_models),
            capacity_types=_merge_allow_deny(ps.capacity_types, s.capacity_types),
            max_price_per_gpu_hour=_min(ps.max_price_per_gpu_hour, s.max_price_per_gpu_hour),
            # hard constraints only tighten: forbid wins, the smallest skew wins
            surplus_gpus="forbid" if "forbid" in (ps.surplus_gpus, s.surplus_gpus) else "allow",
            spread_max_skew=ps.spread_max_skew if s.topology_spread is None else
            int(_min(ps.spread_max_skew, s.topology_spread.max_skew) or s.topology_spread.max_skew),
        )
        if s.lifecycle is not None:
            ps = dataclasses.replace(ps, idle_timeout_s=float(s.lifecycle.idle_timeout_seconds))
        for name, dc in sorted(s.data_classes.items()):
            old = data_classes.get(name)
            geo, countries = tuple(dc.geo) if dc.geo is not None else None, \
                tuple(dc.countries) if dc.countries is not None else None
            if old is not None:
                geo, countries = _intersect(old.geo, geo), _intersect(old.countries, countries)
            data_classes[name] = DataClassRule(name, geo, countries, source=where)
        for i, r in enumerate(s.rules):
            if any(x.name == r.name for x in rules):
                raise PolicyError(f"{where}: spec.rules[{i}].name: rule {r.name!r} is defined twice")
            try:
                rules.append(compile_rule(r.name, r.expr, r.message, source=where))
            except CelCompileError as e:
                raise PolicyError(f"{where}: spec.rules[{i}] ({r.name}): CEL {e}") from None
        if s.preferences is not None:
            given = {k: v for k, v in s.preferences.model_dump().items() if v is not None}
            weights = dataclasses.replace(weights, **given)
        if s.caps is not None:
            if s.caps.provider_share is not None:
                ds = s.caps.provider_share
                # strictest wins: the lowest share, and "capped" over "exempt" for sole-provider work
                sole = "capped" if ds.sole_provider == "capped" or (share and share.sole_provider == "capped") \
                    else "exempt"
                if share is None or ds.max < share.max_share:
                    share = ProviderShareCap(ds.max, ds.min_fleet_gpus, source=where, sole_provider=sole)
                else:
                    share = dataclasses.replace(share, sole_provider=sole)
            for team, tb in sorted(s.caps.teams.items()):
                old_b = budgets.get(team)
                gpus = tb.gpus if old_b is None else _min(old_b.gpus, tb.gpus)
                dollars = tb.dollars_per_hour if old_b is None else _min(old_b.dollars_per_hour, tb.dollars_per_hour)
                budgets[team] = TeamBudget(team, None if gpus is None else int(gpus), dollars, source=where)
        for i, c in enumerate(s.commitments):
            if any(x.name == c.name for x in commitments):
                raise PolicyError(f"{where}: spec.commitments[{i}].name: commitment {c.name!r} is defined twice")
            commitments.append(Commitment(
                name=c.name, provider=c.provider, gpu_model=_gpu_model(c.gpu_model, where, i),
                start=as_datetime(c.start), end=as_datetime(c.end), gpus=c.gpus,
                dollars_per_hour=c.dollars_per_hour, take_or_pay=c.take_or_pay,
                regions=tuple(c.regions) if c.regions is not None else None,
                capacity_types=tuple(str(t) for t in c.capacity_types),
                price_per_gpu_hour=c.price_per_gpu_hour, source=where))
    return dataclasses.replace(
        ps, data_classes=tuple(data_classes[k] for k in sorted(data_classes)), rules=tuple(rules),
        weights=weights, provider_share=share, team_budgets=tuple(budgets[k] for k in sorted(budgets)),
        commitments=tuple(commitments), sources=tuple(sources))


def _gpu_model(name: str, where: str, i: int) -> str:
    from controlplane.model.workload import known_gpu_models
    known = known_gpu_models()
    if name.upper() not in known:
        raise PolicyError(f"{where}: spec.commitments[{i}].gpuModel: unknown GPU model {name!r}")
    return known[name.upper()]
