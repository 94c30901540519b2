"""Pure planning for the local engine: what to create, update and delete (by URN and inputs), and in
which order (dependencies first; deletes in reverse)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from infra.engines.base import ChangeSet, ResourceChange
from infra.engines.mockruntime import DesiredResource

# Stored statuses. "created"/"virtual"/"component" are settled; the others mean "do it (again)".
SETTLED = ("created", "virtual", "component")
RETRY = ("pending-create", "missing", "not-applied", "failed")


@dataclass(slots=True)
class Plan:
    creates: list[DesiredResource] = field(default_factory=list)
    updates: list[tuple[DesiredResource, list[str]]] = field(default_factory=list)   # with changed keys
    deletes: list[str] = field(default_factory=list)                                  # URNs in state
    sames: list[DesiredResource] = field(default_factory=list)

    def change_set(self, stored: dict[str, dict[str, Any]]) -> ChangeSet:
        cs = ChangeSet()
        for d in self.creates:
            prior = stored.get(d.urn, {}).get("status")
            cs.creates.append(ResourceChange(d.urn, d.type, d.name, "create",
                                             f"was {prior}" if prior else ""))
        for d, keys in self.updates:
            cs.updates.append(ResourceChange(d.urn, d.type, d.name, "update", "changed: " + ", ".join(keys)))
        for urn in self.deletes:
            s = stored[urn]
            cs.deletes.append(ResourceChange(urn, s["type"], s["name"], "delete"))
        cs.sames.extend(ResourceChange(d.urn, d.type, d.name, "same") for d in self.sames)
        return cs


def changed_keys(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def diff(desired: dict[str, DesiredResource], stored: dict[str, dict[str, Any]]) -> Plan:
    plan = Plan()
    for urn, d in desired.items():
        s = stored.get(urn)
        if s is None or s.get("status") in RETRY:
            plan.creates.append(d)
        elif s.get("type") != d.type:
            plan.updates.append((d, ["type"]))
        elif keys := changed_keys(s.get("inputs") or {}, d.inputs):
            plan.updates.append((d, keys))
        else:
            plan.sames.append(d)
    plan.deletes = [urn for urn in stored if urn not in desired]
    plan.creates = order(plan.creates, desired)
    plan.updates = _order_pairs(plan.updates, desired)
    plan.deletes = list(reversed(order_urns(plan.deletes, {u: _edges(s) for u, s in stored.items()})))
    return plan


def _order_pairs(pairs: list[tuple[DesiredResource, list[str]]],
                 desired: dict[str, DesiredResource]) -> list[tuple[DesiredResource, list[str]]]:
    keys = {d.urn: k for d, k in pairs}
    return [(d, keys[d.urn]) for d in order([d for d, _ in pairs], desired)]


def _edges(s: dict[str, Any]) -> list[str]:
    return [*(s.get("deps") or []), *([s["parent"]] if s.get("parent") else [])]


def order(items: list[DesiredResource], universe: dict[str, DesiredResource]) -> list[DesiredResource]:
    by_urn = {d.urn: d for d in items}
    urns = order_urns(list(by_urn), {u: [*d.deps, *([d.parent] if d.parent else [])] for u, d in universe.items()})
    return [by_urn[u] for u in urns]


def order_urns(urns: Iterable[str], edges: dict[str, list[str]]) -> list[str]:
    """Topological order of ``urns`` (dependencies and parents first), stable otherwise."""
    wanted = list(urns)
    want = set(wanted)
    out: list[str] = []
    seen: set[str] = set()

    def visit(u: str, trail: frozenset[str]) -> None:
        if u in seen or u in trail:
            return
        for dep in edges.get(u, ()):
            visit(dep, trail | {u})
        seen.add(u)
        if u in want:
            out.append(u)

    for u in wanted:
        visit(u, frozenset())
    return out
